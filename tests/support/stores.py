"""Store wrappers for tests: count and time every write, and count every read, per key."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

from jobplane.store.base import Blob, ObjectStore


class CountingStore:
    """Delegates to ``inner``; records when each successful write per key was started
    (monotonic seconds), and how often each key was read."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.url = inner.url
        self.writes: dict[str, list[float]] = defaultdict(list)
        self.reads: Counter[str] = Counter()
        self._lock = threading.Lock()

    def read(self, key: str) -> Blob:
        with self._lock:
            self.reads[key] += 1
        return self.inner.read(key)

    def write(self, key: str, data: bytes, *, if_generation_match: int | None = None,
              content_type: str = "application/json", durable: bool = True) -> int:
        started = time.monotonic()
        generation = self.inner.write(key, data, if_generation_match=if_generation_match, content_type=content_type,
                                      durable=durable)
        self._count(key, started)
        return generation

    def sync(self, key: str) -> None:
        self.inner.sync(key)

    def delete(self, key: str, *, if_generation_match: int | None = None) -> None:
        started = time.monotonic()
        self.inner.delete(key, if_generation_match=if_generation_match)
        self._count(key, started)

    def list(self, prefix: str, *, start_after: str = "", limit: int | None = None) -> Iterator[str]:
        return self.inner.list(prefix, start_after=start_after, limit=limit)

    def upload_file(self, key: str, path: Path, *, content_type: str = "application/octet-stream") -> int:
        started = time.monotonic()
        generation = self.inner.upload_file(key, path, content_type=content_type)
        self._count(key, started)
        return generation

    def download_file(self, key: str, path: Path) -> None:
        self.inner.download_file(key, path)

    def uri(self, key: str) -> str:
        return self.inner.uri(key)

    def _count(self, key: str, started: float) -> None:
        with self._lock:
            self.writes[key].append(started)
