"""Real HTTP servers on 127.0.0.1 in a thread, for testing WSGI apps over real sockets."""

from __future__ import annotations

import errno
import http.client
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from werkzeug.serving import make_server


def free_port() -> int:
    """A port that was free a moment ago (prefer port 0 where the server allows it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_wsgi(app: Callable[..., Any], *, port: int = 0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (threaded) and yield its base URL; shut down on exit."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-wsgi", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def raw_request(
    url: str, path: str, headers: dict[str, str], parts: Iterable[bytes], *, chunked: bool = False,
    declared: int | None = None, method: str = "POST",
) -> tuple[int, dict[str, str], bytes]:
    """Send a request whose body may never end, then read the answer (10 s at most)."""
    where = urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {where.netloc}", *(f"{k}: {v}" for k, v in headers.items())]
        lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {declared}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            for part in parts:
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
        except OSError as e:  # the server answered and closed while we were still sending
            assert e.errno in (errno.EPIPE, errno.ECONNRESET), e
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
