"""What the dashboard's server-rendered pages cost to build from a store with a GCS-like read
latency: the overview (20 specs, their last 10 runs each) and a run's page (figures, heatmap,
300 progress events), reading ``READERS`` objects at a time, printed beside a baseline measured
in the same run that reads one object after another. The store is the filesystem store with
``--latency`` milliseconds added to every read and listing (a GCS read from a pod in the
bucket's region takes about 10–30 ms).

    .venv/bin/python benchmarks/bench_dashboard.py [--latency 15] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.dashboard import seed_figures, seed_run  # noqa: E402
from support.specs import make_spec  # noqa: E402

from jobplane import conventions as c  # noqa: E402
from jobplane import dashboard  # noqa: E402
from jobplane import events as ev  # noqa: E402
from jobplane.store.base import Blob  # noqa: E402
from jobplane.store.files import FileStore  # noqa: E402


class SlowStore:
    """The filesystem store with a fixed delay on every read and listing (writes as they are)."""

    def __init__(self, inner: FileStore, delay: float) -> None:
        self.inner, self.delay, self.url = inner, delay, inner.url

    def read(self, key: str) -> Blob:
        time.sleep(self.delay)
        return self.inner.read(key)

    def read_limited(self, key: str, limit: int) -> Blob:
        time.sleep(self.delay)
        return self.inner.read_limited(key, limit)

    def list(self, prefix: str, *, start_after: str = "", limit: int | None = None) -> Iterator[str]:
        time.sleep(self.delay)
        return self.inner.list(prefix, start_after=start_after, limit=limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def seed(store: FileStore) -> str:
    for s in range(dashboard.SPECS_PER_PAGE):
        spec = make_spec(id=f"train-bot-{s:02d}", params={"botId": f"bot-{s:02d}"}, schedule="0 3 * * *")
        store.write(c.spec_key(spec["id"]), json.dumps(spec).encode())
        for n in range(dashboard.RUNS_PER_SPEC):
            last = seed_run(store, spec, n=n, state="succeeded", progress=100, metrics={"accuracy": 0.9})
    seed_figures(store, last["id"])
    for i in range(dashboard.MAX_EVENTS):
        event = {"type": ev.RUN_PROGRESS, "time": "2026-12-01T09:00:00Z", "data": {"progress": i / 3, "phase": "intent"}}
        store.write(f"{c.run_events_prefix(last['id'])}{i + 10:016d}", json.dumps(event).encode())
    return str(last["id"])


def timed(fn: Callable[[], Any], rounds: int) -> float:
    took = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        took.append(time.perf_counter() - start)
    return statistics.median(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=15.0, help="milliseconds added to each read and listing")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = FileStore(Path(tmp) / "store", fsync=False)
        run_id = seed(files)
        store: Any = SlowStore(files, args.latency / 1000)
        now = datetime.now(UTC)
        pages: dict[str, Callable[[int], Any]] = {
            f"overview ({dashboard.SPECS_PER_PAGE} specs x {dashboard.RUNS_PER_SPEC} runs)":
                lambda r: dashboard.overview(store, now=now, readers=r),
            f"run page ({dashboard.MAX_EVENTS} events)": lambda r: dashboard.run_page(store, run_id, readers=r),
        }
        print(f"store read latency {args.latency:.0f} ms; median of {args.rounds} rounds")
        print(f"{'page':<40} {'one at a time':>14} {f'{dashboard.READERS} at a time':>14} {'speed-up':>9}")
        for name, build in pages.items():
            baseline, parallel = timed(lambda: build(1), args.rounds), timed(lambda: build(dashboard.READERS), args.rounds)
            print(f"{name:<40} {baseline * 1000:>11.0f} ms {parallel * 1000:>11.0f} ms {baseline / parallel:>8.1f}x")


if __name__ == "__main__":
    main()
