"""One small thread pool per process for the blocking calls a handler overlaps: index
entries written beside a run record, replaced runs superseded beside them.

Made on first use and again after a fork (a pool made before a fork has no threads in the
child). The calls are I/O (store writes, API calls), so threads overlap them despite the GIL.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final, TypeVar

T = TypeVar("T")

WORKERS: Final = 8
"""Threads per process: after its Job's create, a launch writes its record, three index
entries, its slot's sync and the supersession of replaced runs at once (each write is a round
trip to GCS, or an fsync on the filesystem; both release the GIL)."""


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="jobplane-worker")
                self._pid = os.getpid()
            return self._pool


_POOL: Final = _Pool()


def submit(fn: Callable[..., T], /, *args: object, **kwargs: object) -> Future[T]:
    """Start ``fn(*args, **kwargs)`` on the process's pool."""
    return _POOL.get().submit(fn, *args, **kwargs)


def wait_for(calls: Iterable[Future[Any]]) -> None:
    """Wait for every call; then raise the first failure, if any (none is left running)."""
    errors = [e for e in (f.exception() for f in list(calls)) if e is not None]
    if errors:
        raise errors[0]
