"""A store confined to some key prefixes: what a trainer gets in place of the whole store.

A Job's trainer writes only under its own run (``runs/{runId}/``) and reads only its inputs
(its run, its bot's ``bots/{botId}/``, the model it tests). Every other read or write raises
``ForbiddenError`` before it reaches the store, so a trainer cannot rewrite another run's
record or a bot's model pointer, whatever its code does. On GCS the same lines are drawn by
IAM Conditions on object-name prefixes (docs/deploy.md); this wrapper holds them everywhere,
the embedded plane included.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import ForbiddenError
from .base import Blob, ObjectStore, read_capped
from .keys import check_key


class ScopedStore:
    """``ObjectStore`` that forwards to ``inner`` only keys under its prefixes."""

    def __init__(self, inner: ObjectStore, *, writes: Iterable[str], reads: Iterable[str] = ()) -> None:
        self.inner = inner
        self.url = inner.url
        self.write_prefixes = tuple(writes)
        self.read_prefixes = (*self.write_prefixes, *reads)

    def __repr__(self) -> str:
        return f"ScopedStore(writes={self.write_prefixes!r}, reads={self.read_prefixes!r})"

    def allow_reads(self, prefix: str) -> None:
        """Let reads under ``prefix`` through too (an input found at run time: the tested model)."""
        self.read_prefixes = (*self.read_prefixes, prefix)

    def read(self, key: str) -> Blob:
        return self.inner.read(self._readable(key))

    def read_limited(self, key: str, limit: int) -> Blob:
        return read_capped(self.inner, self._readable(key), limit)

    def write(self, key: str, data: bytes, *, if_generation_match: int | None = None,
              content_type: str = "application/json", durable: bool = True) -> int:
        return self.inner.write(self._writable(key), data, if_generation_match=if_generation_match,
                                content_type=content_type, durable=durable)

    def sync(self, key: str) -> None:
        self.inner.sync(self._writable(key))

    def delete(self, key: str, *, if_generation_match: int | None = None) -> None:
        self.inner.delete(self._writable(key), if_generation_match=if_generation_match)

    def list(self, prefix: str, *, start_after: str = "", limit: int | None = None) -> Iterator[str]:
        if not _under(prefix, self.read_prefixes):
            raise ForbiddenError(f"this Job may not list {prefix!r}")
        return self.inner.list(prefix, start_after=start_after, limit=limit)

    def upload_file(self, key: str, path: Path, *, content_type: str = "application/octet-stream") -> int:
        return self.inner.upload_file(self._writable(key), path, content_type=content_type)

    def download_file(self, key: str, path: Path) -> None:
        self.inner.download_file(self._readable(key), path)

    def uri(self, key: str) -> str:
        return self.inner.uri(key)

    def _readable(self, key: str) -> str:
        check_key(key)
        if not _under(key, self.read_prefixes):
            raise ForbiddenError(f"this Job may not read {key!r}")
        return key

    def _writable(self, key: str) -> str:
        check_key(key)
        if not _under(key, self.write_prefixes):
            raise ForbiddenError(f"this Job may write only under {', '.join(self.write_prefixes)}, not {key!r}")
        return key


def _under(key: str, prefixes: Iterable[str]) -> bool:
    return any(key.startswith(prefix) for prefix in prefixes)


def for_run(inner: ObjectStore, *, run_id: str, bot_id: str) -> ScopedStore:
    """A trainer's store: writes under ``runs/{runId}/``; reads there and under ``bots/{botId}/``."""
    return ScopedStore(inner, writes=[f"runs/{run_id}/"], reads=[f"bots/{bot_id}/"] if bot_id else [])
