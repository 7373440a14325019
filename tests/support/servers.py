"""Real HTTP servers on 127.0.0.1 in a thread, for testing WSGI apps over real sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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
