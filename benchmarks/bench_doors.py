"""Oversize uploads at the broker ingress: the plane's peak memory while eight clients each send
a 51 MB event at once, beside a door without a limit (a WSGI app on the same server that reads
each body whole, as the ingress did), in the same run. Each server is its own process, so its
peak resident set (``VmHWM``) is its own. Target: every upload answered 413, none accepted and
then lost, and the plane's peak below the unlimited door's. What the plane still holds is the
development server's: after the 413 it reads the unread rest of each body in 10 MB pieces and
drops it, so that the client sees the answer rather than a reset (about 20 MB per connection
while it lasts, however large the body).

    .venv/bin/python benchmarks/bench_doors.py [--clients 8] [--mb 51]
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

UNLIMITED = """
import sys
from werkzeug.serving import make_server

def app(environ, start_response):
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("202 Accepted", [("Content-Length", "0")])
    return [b""]

make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True).serve_forever()
"""
HEADERS = {"ce-specversion": "1.0", "ce-source": "/bench", "ce-type": "dev.jobplane.bot.changed",
           "Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def upload_all(url: str, *, clients: int, size: int) -> tuple[list[str], float]:
    body = b'{"blob":"' + b"x" * size + b'"}'
    statuses: list[str] = []

    def send(i: int) -> None:
        try:
            response = requests.post(url, data=body, headers={**HEADERS, "ce-id": f"big-{i}"}, timeout=300)
            statuses.append(str(response.status_code))
        except requests.RequestException as e:
            statuses.append(type(e).__name__)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(statuses), time.monotonic() - started


def measure(name: str, command: list[str], url: str, probe: str, *, clients: int, size: int) -> None:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(probe)
        before = memory_mib(proc.pid, "VmRSS:")
        statuses, took = upload_all(url, clients=clients, size=size)
        peak = memory_mib(proc.pid, "VmHWM:")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"{name:<34} answers {','.join(sorted(set(statuses)))} ({len(statuses)})  "
          f"RSS {before:5.0f} MiB -> peak {peak:5.0f} MiB (+{peak - before:.0f})  {took:5.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--mb", type=int, default=51)
    args = parser.parse_args()
    size = args.mb * 1024 * 1024
    print(f"{args.clients} clients at once, each one {args.mb} MB event (Content-Length), limit 10 MiB")
    port = free_port()
    measure("baseline: a door without a limit", [sys.executable, "-c", UNLIMITED, str(port)],
            f"http://127.0.0.1:{port}/default/default", f"http://127.0.0.1:{port}/",
            clients=args.clients, size=size)
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        measure("jobplane up: the broker ingress",
                [sys.executable, "-m", "jobplane.cli", "up", "--port", str(port), "--data-dir", data],
                f"http://127.0.0.1:{port}/default/default", f"http://127.0.0.1:{port}/healthz",
                clients=args.clients, size=size)


if __name__ == "__main__":
    main()
