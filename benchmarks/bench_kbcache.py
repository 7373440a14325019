"""The kb-index cache key's cost at launch: ``cache.kb_index_key`` reads every article the Job
would read (a folder of N objects: one listing, N reads) before a lookup can answer ``CacheHit``.
Printed beside the baseline in the same process: ``cache.training_key`` over one training data
object of the same total size (one read). On the local file store, and on it with a simulated
GCS round trip of ``LATENCY_S`` per read (the folder's reads go ``kbkey.READERS`` at a time).

Run: ``.venv/bin/python benchmarks/bench_kbcache.py``.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from jobplane import cache
from jobplane.settings import Settings
from jobplane.store import open_store
from jobplane.store.base import ObjectStore

ARTICLE_BYTES = 2_000
SIZES = (10, 100, 1_000)
REPEATS = 3
LATENCY_S = 0.02


class Latent:
    """``store`` with ``LATENCY_S`` added to each read (a GCS round trip, simulated)."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def read(self, key: str) -> object:
        time.sleep(LATENCY_S)
        return self._store.read(key)


def timed(fn: Callable[[], object]) -> float:
    """Median seconds of ``REPEATS`` calls."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def seed(store: ObjectStore, bot: str, n: int) -> None:
    body = ("Branches open Monday to Friday from 9 am to 5 pm. " * 50)[:ARTICLE_BYTES].encode()
    for i in range(n):
        store.write(f"bots/{bot}/kb/article-{i:05d}.md", body)
    examples = [{"text": "x" * 60, "intent": f"i{i % 10}"} for i in range(n * ARTICLE_BYTES // 90)]
    store.write(f"bots/{bot}/data/r1.json", json.dumps({"examples": examples}).encode())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store((Path(tmp) / "store").as_uri())
        settings = Settings(store_url=store.url, sink="http://127.0.0.1:9/default/default", callback_key=b"k" * 32)
        latent: ObjectStore = Latent(store)  # type: ignore[assignment]
        print(f"milliseconds per key (median of {REPEATS}); baseline: training_key over one object of the same bytes")
        print(f"{'articles':>8}  {'kb file':>8}  {'base file':>9}  {'kb +20ms/read':>13}  {'base +20ms/read':>15}")
        for n in SIZES:
            bot = f"bot-{n}"
            seed(store, bot, n)
            kb = {"type": "kb-index", "params": {"botId": bot}}
            training = {"type": "training", "params": {"botId": bot, "trainingData": {"uri": store.uri(f"bots/{bot}/data/r1.json")}}}
            assert cache.key_for(kb, store, settings) and cache.key_for(training, store, settings)
            row = [timed(lambda s=s: cache.key_for(spec, s, settings)) * 1000  # type: ignore[misc]
                   for s in (store, latent) for spec in (kb, training)]
            print(f"{n:>8}  {row[0]:>8.1f}  {row[1]:>9.1f}  {row[2]:>13.1f}  {row[3]:>15.1f}")


if __name__ == "__main__":
    main()
