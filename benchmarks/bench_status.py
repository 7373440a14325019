"""How many progress callbacks one status function process ingests per second, and how often
it writes any one object, on the filesystem store and on a GCS emulator (fake-gcs-server).

Printed beside two baselines measured in the same run, on the same machine and server stack
(werkzeug's threaded server around functions-framework's app, in a separate process, driven
by keep-alive HTTP clients): the rate of an empty functions-framework handler, and the bare
cost of one object write on each store. Target: at least half the empty handler's rate on the
filesystem store, with every run's ``run.json`` written about once a second or less.

    .venv/bin/python benchmarks/bench_status.py [--events 3000] [--clients 8] [--runs 20]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # support.gcs starts the emulator

KEY = b"bench-key-" * 4
EMPTY_SOURCE = "import functions_framework\n\n@functions_framework.http\ndef empty(request):\n    return ('', 204)\n"


# --- the server process --------------------------------------------------------------------


def serve(kind: str, store_url: str, workdir: str, conn: Connection) -> None:
    """Child process: serve ``kind`` (``empty`` or ``status``) until told to stop, then
    report the store writes it made."""
    import logging

    from werkzeug.serving import make_server

    logging.disable(logging.WARNING)
    app, store = _app(kind, store_url, Path(workdir))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    conn.send(server.server_port)
    conn.recv()  # "stop"
    stats: dict[str, list[float]] = {}
    if store is not None:
        from jobplane import progress

        progress.coalescer_for(store).close()
        stats = dict(store.writes)
    server.shutdown()
    conn.send(stats)


def _app(kind: str, store_url: str, workdir: Path) -> tuple[Any, Any]:
    from jobplane.app import create_function_app

    if kind == "empty":
        source = workdir / "empty_main.py"
        source.write_text(EMPTY_SOURCE)
        return create_function_app("empty", source=source), None
    from jobplane import runtime
    from jobplane.settings import Settings
    from jobplane.store import open_store
    from support.stores import CountingStore

    store = CountingStore(open_store(store_url))
    settings = Settings(store_url=store_url, callback_key=KEY)
    runtime.install(runtime.Runtime(settings=settings, store=store, launcher_factory=lambda: None,  # type: ignore[arg-type,return-value]
                                    send=lambda e: None))
    return create_function_app("status"), store


class Server:
    """A server process of one kind; ``stop`` returns its write log (key → write times)."""

    def __init__(self, kind: str, store_url: str, workdir: Path) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=serve, args=(kind, store_url, str(workdir), child), daemon=True)
        self._proc.start()
        self.port: int = self._conn.recv()

    def stop(self) -> dict[str, list[float]]:
        self._conn.send("stop")
        stats: dict[str, list[float]] = self._conn.recv()
        self._proc.join(10)
        return stats


# --- the client ----------------------------------------------------------------------------


def load(port: int, requests_per_client: list[list[tuple[dict[str, str], bytes]]]) -> float:
    """Send every client's requests over its own keep-alive connection; seconds taken."""
    errors: list[int] = []

    def client(batch: list[tuple[dict[str, str], bytes]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for headers, body in batch:
            conn.request("POST", "/", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status >= 300:
                errors.append(response.status)
        conn.close()

    threads = [threading.Thread(target=client, args=(b,)) for b in requests_per_client]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. HTTP {errors[0]}")
    return elapsed


def progress_requests(run_ids: list[str], *, events: int, clients: int, first_seq: int) -> list[list[tuple[dict[str, str], bytes]]]:
    """Each client reports for its own runs in seq order, as trainers do."""
    from jobplane import conventions as c
    from jobplane import events as ev
    from jobplane import tokens

    per_client: list[list[tuple[dict[str, str], bytes]]] = [[] for _ in range(clients)]
    per_run = max(1, events // len(run_ids))
    for step in range(per_run):
        seq = first_seq + step
        for n, run_id in enumerate(run_ids):
            event = ev.new_event(ev.RUN_PROGRESS, source=f"/jobplane/trainer/{run_id}", subject=run_id,
                                 data={"seq": seq, "progress": min(100, seq // 10), "phase": "training",
                                       "message": f"step {seq}", "metrics": {"loss": 1.0 / seq}},
                                 extensions={c.TOKEN_EXTENSION: tokens.callback_token(KEY, run_id, expires=int(time.time()) + 86400)})
            per_client[n % clients].append(ev.to_http(event))
    return per_client


def empty_requests(*, events: int, clients: int) -> list[list[tuple[dict[str, str], bytes]]]:
    body = b'{"seq": 1, "progress": 1}'
    headers = {"Content-Type": "application/json", "ce-specversion": "1.0", "ce-type": "x", "ce-source": "/b", "ce-id": "1"}
    return [[(headers, body)] * (events // clients) for _ in range(clients)]


# --- measurements --------------------------------------------------------------------------


def bare_write_us(store_url: str, *, n: int = 300) -> float:
    """Median microseconds of one create-only write of a callback-sized object."""
    from jobplane.store import open_store

    store = open_store(store_url)
    body = b"x" * 420
    times = []
    for i in range(n):
        started = time.perf_counter()
        store.write(f"bench/bare/{i:08d}", body, if_generation_match=0)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def make_runs(store_url: str, count: int) -> list[str]:
    from jobplane import runs
    from jobplane.store import open_store

    store = open_store(store_url)
    ids = []
    for n in range(count):
        spec = {"id": f"bench-{n}", "type": "training", "params": {"botId": f"bot-{n}"}}
        trigger = {"type": "bench", "source": "/bench", "id": str(n), "subject": None}
        run, _ = runs.create_run(store, runs.new_run(spec=spec, trigger=trigger, requested_by="bench", now=datetime.now(UTC)))
        ids.append(str(run["id"]))
    return ids


def measure_status(store_url: str, workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    run_ids = make_runs(store_url, args.runs)
    server = Server("status", store_url, workdir)
    try:
        load(server.port, progress_requests(run_ids, events=args.clients * 20, clients=args.clients, first_seq=1))
        window_start = time.monotonic()
        elapsed = load(server.port, progress_requests(run_ids, events=args.events, clients=args.clients, first_seq=100))
        window_end = time.monotonic()
    finally:
        writes = server.stop()
    run_writes = [sum(window_start <= t <= window_end for t in writes.get(f"runs/{r}/run.json", [])) for r in run_ids]
    total = sum(1 for stamps in writes.values() for t in stamps if window_start <= t <= window_end)
    sent = (args.events // args.runs) * args.runs
    return {"rate": sent / elapsed, "writes_per_event": total / sent,
            "run_json_per_s": max(run_writes) / (window_end - window_start)}


def measure_empty(workdir: Path, args: argparse.Namespace) -> float:
    server = Server("empty", "", workdir)
    try:
        load(server.port, empty_requests(events=args.clients * 20, clients=args.clients))
        elapsed = load(server.port, empty_requests(events=args.events, clients=args.clients))
    finally:
        server.stop()
    sent: int = (args.events // args.clients) * args.clients
    return sent / elapsed


def with_gcs(workdir: Path, fn: Callable[[str], Any]) -> Any:
    from support.gcs import binary_path, start_server

    if binary_path() is None:
        return None
    server = start_server(workdir)
    os.environ["STORAGE_EMULATOR_HOST"] = server.url  # the spawned server process inherits it
    try:
        return fn(f"gs://{server.create_bucket()}/bench")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        empty_before = measure_empty(work, args)
        results = {}
        for name, query in (("files", ""), ("files, no fsync", "?fsync=false")):
            url, bare = (work / name.replace(" ", "")).as_uri(), (work / f"bare-{len(query)}").as_uri()
            results[name] = (measure_status(url + query, work, args), bare_write_us(bare + query))
        gcs = with_gcs(work, lambda url: (measure_status(url, work, args), bare_write_us(url.replace("/bench", "/bare"))))
        if gcs is not None:
            results["gcs-emulator"] = gcs
        empty = (empty_before + measure_empty(work, args)) / 2  # before and after: the machine is shared
    report(empty, results, args)


def report(empty: float, results: dict[str, tuple[dict[str, float], float]], args: argparse.Namespace) -> None:
    print(f"status function: {args.events} progress events, {args.runs} runs, {args.clients} keep-alive clients, "
          f"one server process ({os.cpu_count()} CPUs)")
    print(f"{'store':<16}{'events/s':>10}{'vs empty':>10}{'writes/event':>14}{'run.json writes/s':>19}{'bare write':>12}")
    print(f"{'(empty handler)':<16}{empty:>10.0f}{'100%':>10}{'-':>14}{'-':>19}{'-':>12}")
    for name, (status, bare_us) in results.items():
        print(f"{name:<16}{status['rate']:>10.0f}{status['rate'] / empty:>10.0%}{status['writes_per_event']:>14.2f}"
              f"{status['run_json_per_s']:>19.2f}{bare_us:>10.0f}µs")
    print("empty handler: mean of a run before and after the others; "
          "run.json writes/s: the most any one run's record was written per second during the load "
          "(GCS sustains ~1); writes/event: all store writes (log entries + records) per event")


if __name__ == "__main__":
    main()
