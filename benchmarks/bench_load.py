"""Load with a crash: events into the embedded plane (a ``jobplane up`` subprocess, loopback
only), some posted twice, the plane SIGKILLed mid-way and started again on the same data dir.

It prints runs expected (one per distinct event) against runs made, how many were lost and
how many made twice, the ingress latency (p50/p99 of the 202s), the drain time (last 202 to
an idle broker with every run recorded) and the plane's peak memory (RSS, both processes).
A client whose POST got no answer (the plane was down) posts it again, as any producer must;
a 202 is the promise the benchmark checks.

    .venv/bin/python benchmarks/bench_load.py [--events 2000] [--duplicates 0.2] [--bots 200]
        [--clients 8] [--kill-at 0.5] [--timeout 600]

The Jobs run ``benchmarks/standin_job.py`` (stdlib only: it reports success and exits).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from jobplane import events as ev
from jobplane import runs

ROOT = Path(__file__).resolve().parent.parent
STANDIN = Path(__file__).with_name("standin_job.py")


@dataclass
class Plane:
    """``jobplane up`` on a fixed port and data dir; the peak RSS of each process it ran."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    peaks_kib: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "JOBPLANE_COMMAND": json.dumps([sys.executable, "-S", "-I", str(STANDIN)])}
        log = open(self.data_dir.parent / "up.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobplane.cli", "up", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        self.peaks_kib.append(0)
        deadline = time.monotonic() + 60
        while not self._healthy():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("jobplane up did not start; see up.log")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def sample_rss(self) -> None:
        """Record the process's peak RSS so far (VmHWM) while it lives."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text() if self.proc else ""
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.peaks_kib[-1] = max(self.peaks_kib[-1], int(line.split()[1]))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.sample_rss()
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def broker(self) -> dict[str, int]:
        return dict(requests.get(self.url + "/healthz", timeout=10).json()["broker"])


def make_events(n: int, duplicates: float, bots: int, seed: int = 7) -> tuple[list[ev.Event], list[ev.Event]]:
    """(the posts in order, the distinct events): ``duplicates`` of the posts repeat an earlier one."""
    rng = random.Random(seed)
    distinct = round(n * (1 - duplicates))
    unique = [
        ev.new_event(ev.BOT_CHANGED, source="/bench/platform", id=f"load-{i}", subject=f"bot-{i % bots}",
                     data={"botId": f"bot-{i % bots}", "revision": f"r{i}",
                           "trainingData": {"examples": [{"text": "hi there", "intent": "greet"},
                                                         {"text": "bye now", "intent": "bye"}]}})
        for i in range(distinct)
    ]
    posts = list(unique)
    for _ in range(n - distinct):
        at = rng.randrange(1, len(posts) + 1)
        posts.insert(at, rng.choice(posts[:at]))
    return posts, unique


class Client:
    """Posts events from a pool of keep-alive sessions; no answer → wait and post again."""

    def __init__(self, plane: Plane, clients: int) -> None:
        self.plane, self.clients = plane, clients
        self.latencies: list[float] = []
        self.reposts = 0
        self.accepted = 0
        self.last_accept = 0.0
        self.lock = threading.Lock()
        self.local = threading.local()

    def post(self, event: ev.Event) -> None:
        session = getattr(self.local, "s", None) or requests.Session()
        self.local.s = session
        headers, body = ev.to_http(event)
        while True:
            started = time.perf_counter()
            try:
                r = session.post(self.plane.url + "/default/default", data=body, headers=headers, timeout=30)
            except requests.RequestException:
                r = None
            took = time.perf_counter() - started
            if r is not None and r.status_code == 202:
                with self.lock:
                    self.latencies.append(took * 1000)
                    self.accepted += 1
                    self.last_accept = time.monotonic()
                return
            with self.lock:
                self.reposts += 1
            session.close()
            time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_ids(unique: list[ev.Event]) -> set[str]:
    return {runs.run_id_for(f"train-{e.subject}", source=e.source, event_id=e.id) for e in unique}


def recorded_runs(data_dir: Path) -> list[str]:
    return [p.parent.name for p in (data_dir / "store" / "runs").glob("*/run.json")]


def pending_rows(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "broker.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM deliveries WHERE state != 'dead'").fetchone()[0])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--duplicates", type=float, default=0.2)
    ap.add_argument("--bots", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--kill-at", type=float, default=0.5, help="SIGKILL after this share of the posts was accepted")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    posts, unique = make_events(args.events, args.duplicates, args.bots)
    expected = run_ids(unique)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        plane = Plane(Path(tmp) / "data", free_port())
        plane.start()
        client = Client(plane, args.clients)
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(0.2):
                plane.sample_rss()

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        kill_at = int(len(posts) * args.kill_at)
        kept_at_kill = 0
        started = time.monotonic()
        try:
            with ThreadPoolExecutor(args.clients) as pool:
                futures = [pool.submit(client.post, e) for e in posts]
                while client.accepted < kill_at:
                    time.sleep(0.01)
                plane.kill()
                killed_after = client.accepted
                kept_at_kill = pending_rows(plane.data_dir)
                plane.start()
                for f in futures:
                    f.result(timeout=args.timeout)
            drain_from = client.last_accept
            deadline = started + args.timeout
            while time.monotonic() < deadline:
                stats = plane.broker()
                made = set(recorded_runs(plane.data_dir))
                if stats["pending"] == 0 and stats["deadLettering"] == 0 and expected <= made:
                    break
                time.sleep(0.25)
            drained = time.monotonic() - drain_from
            stats = plane.broker()
        finally:
            stop_sampling.set()
            plane.sample_rss()
            plane.kill()
        made_list = recorded_runs(plane.data_dir)
    made = set(made_list)
    lost = len(expected - made)
    duplicated = len(made_list) - len(made) + len(made - expected)
    lat = sorted(client.latencies)
    p99 = lat[max(0, int(len(lat) * 0.99) - 1)]
    print(f"{args.events} posts ({len(unique)} distinct events, {args.events - len(unique)} duplicates), "
          f"{args.clients} clients, {args.bots} bots; SIGKILL after {killed_after} accepted "
          f"({kept_at_kill} deliveries kept in the journal at the kill), then restarted")
    print(f"runs expected {len(expected)}   made {len(made)}   lost {lost}   duplicated {duplicated}")
    print(f"ingress latency (202) p50 {statistics.median(lat):.1f} ms   p99 {p99:.1f} ms   "
          f"posts repeated by clients while the plane was down: {client.reposts}")
    print(f"drain time (last 202 → broker idle, every run recorded) {drained:.1f} s   "
          f"dead {stats['dead']}   unmatched {stats['unmatched'] or 0}")
    print(f"peak RSS of the plane: before the kill {plane.peaks_kib[0] / 1024:.0f} MiB, "
          f"after the restart {plane.peaks_kib[-1] / 1024:.0f} MiB")
    return 0 if lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
