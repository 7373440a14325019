"""An in-memory object store with GCS's semantics (generations, preconditions, lexicographic
listing) that counts what the plane asks of it: reads, writes, lists, and the writes each
object takes within one simulated second (GCS allows about one per second per object)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from sortedcontainers import SortedList

from jobplane.errors import NotFoundError, PreconditionFailedError
from jobplane.store.base import Blob


class MemoryStore:
    url = "file:///sim-store"

    def __init__(self, *, second: Callable[[], int]) -> None:
        self._data: dict[str, tuple[bytes, int]] = {}
        self._keys: SortedList = SortedList()
        self._lock = threading.Lock()
        self._generation = 0
        self._second = second
        self.reads = 0
        self.writes = 0
        self.lists = 0
        self.list_keys = 0
        self.deletes = 0
        self.failed_preconditions = 0
        self._this_second = -1
        self._per_key: Counter[str] = Counter()
        self.hottest: tuple[int, str] = (0, "")
        """(writes within one simulated second, key) at the busiest object."""
        self.on_write: Callable[[str, bytes], None] | None = None

    def read(self, key: str) -> Blob:
        with self._lock:
            self.reads += 1
            found = self._data.get(key)
        if found is None:
            raise NotFoundError(f"no object {key}")
        return Blob(key=key, data=found[0], generation=found[1])

    def write(self, key: str, data: bytes, *, if_generation_match: int | None = None,
              content_type: str = "application/json", durable: bool = True) -> int:
        with self._lock:
            current = self._data.get(key)
            if if_generation_match is not None and (current[1] if current else 0) != if_generation_match:
                self.failed_preconditions += 1
                raise PreconditionFailedError(f"{key}: generation does not match")
            self._generation += 1
            if current is None:
                self._keys.add(key)
            self._data[key] = (bytes(data), self._generation)
            self.writes += 1
            self._count(key)
            generation = self._generation
        if self.on_write is not None:
            self.on_write(key, data)
        return generation

    def _count(self, key: str) -> None:
        second = self._second()
        if second != self._this_second:
            self._this_second, self._per_key = second, Counter()
        self._per_key[key] += 1
        if self._per_key[key] > self.hottest[0]:
            self.hottest = (self._per_key[key], key)

    def sync(self, key: str) -> None:
        return None

    def delete(self, key: str, *, if_generation_match: int | None = None) -> None:
        with self._lock:
            current = self._data.get(key)
            if current is None:
                raise NotFoundError(f"no object {key}")
            if if_generation_match is not None and current[1] != if_generation_match:
                raise PreconditionFailedError(f"{key}: generation does not match")
            del self._data[key]
            self._keys.remove(key)
            self.deletes += 1

    def list(self, prefix: str, *, start_after: str = "", limit: int | None = None) -> Iterator[str]:
        with self._lock:
            self.lists += 1
            start = max(prefix, start_after)
            index = self._keys.bisect_right(start) if start_after >= prefix and start_after else self._keys.bisect_left(start)
            found = []
            for key in self._keys.islice(index):
                if not key.startswith(prefix) or (limit is not None and len(found) >= limit):
                    break
                found.append(key)
            self.list_keys += len(found)
        return iter(found)

    def upload_file(self, key: str, path: Path, *, content_type: str = "application/octet-stream") -> int:
        return self.write(key, path.read_bytes(), content_type=content_type)

    def download_file(self, key: str, path: Path) -> None:
        path.write_bytes(self.read(key).data)

    def uri(self, key: str) -> str:
        return f"{self.url}/{key}"

    def count(self, prefix: str = "") -> int:
        with self._lock:
            return sum(1 for _ in self._keys.irange(prefix, prefix + "\uffff"))
