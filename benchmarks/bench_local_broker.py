"""What the embedded broker costs per event: throughput and publish→delivery latency through
``LocalBroker`` (HTTP ingress, filtering, a worker pool, binary-mode delivery), printed beside
a baseline measured in the same run: the same clients POSTing the same events straight to the
same subscriber server, with no broker in between. The broker keeps its journal on disk (a
SQLite file in a temporary dir), as the embedded plane does.

    .venv/bin/python benchmarks/bench_local_broker.py [--events 2000] [--clients 4] [--workers 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import requests  # noqa: E402
from support.servers import serve_wsgi  # noqa: E402

from jobplane.events import new_event, to_http  # noqa: E402
from jobplane.local.broker import LocalBroker, Trigger  # noqa: E402


class Sink:
    """Subscriber app: records when each event id arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self.lock:
            self.arrived[environ.get("HTTP_CE_ID", "")] = time.perf_counter()
        start_response("202 Accepted", [("Content-Length", "0")])
        return [b""]


def drive(url: str, n: int, clients: int, *, prefix: str) -> dict[str, float]:
    """POST ``n`` events from ``clients`` keep-alive clients; the send time of each id."""
    sent: dict[str, float] = {}
    lock = threading.Lock()
    local = threading.local()

    def post(i: int) -> None:
        session = getattr(local, "s", None) or requests.Session()
        local.s = session
        headers, body = to_http(new_event("bench.ping", source="/bench", data={"i": i}, id=f"{prefix}{i}"))
        t = time.perf_counter()
        session.post(url, data=body, headers=headers, timeout=30).raise_for_status()
        with lock:
            sent[f"{prefix}{i}"] = t

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, range(n)))
    return sent


def report(name: str, sink: Sink, sent: dict[str, float], start: float) -> tuple[float, float]:
    end = max(sink.arrived[i] for i in sent)
    lat = sorted((sink.arrived[i] - sent[i]) * 1000 for i in sent)
    rate = len(sent) / (end - start)
    p95 = lat[int(len(lat) * 0.95) - 1]
    print(f"{name:<28} {rate:8.0f} events/s   latency p50 {statistics.median(lat):6.1f} ms   p95 {p95:6.1f} ms")
    return rate, p95


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sink = Sink()
    with serve_wsgi(lambda e, s: sink(e, s)) as sink_url:
        trigger = Trigger(name="bench", subscriber={"ref": {"kind": "Service", "name": "sink"}}, attributes={"type": "bench.ping"})
        decoy = Trigger(name="decoy", subscriber={"uri": "http://127.0.0.1:1/"}, attributes={"type": "other"})
        tmp = tempfile.TemporaryDirectory()
        broker = LocalBroker([decoy, trigger], resolve=lambda d: sink_url + "/", workers=args.workers,
                             db=Path(tmp.name) / "broker.db")
        with serve_wsgi(broker) as broker_url:
            print(f"{args.events} events, {args.clients} clients, {args.workers} broker workers")
            start = time.perf_counter()
            sent = drive(sink_url + "/", args.events, args.clients, prefix="direct-")
            base_rate, _ = report("baseline (direct POST)", sink, sent, start)
            start = time.perf_counter()
            sent = drive(broker_url + "/default/default", args.events, args.clients, prefix="brokered-")
            assert broker.flush(timeout=120)
            rate, _ = report("through LocalBroker", sink, sent, start)
            print(f"broker/baseline throughput: {rate / base_rate:.2f}")
        broker.close()
        tmp.cleanup()


if __name__ == "__main__":
    main()
