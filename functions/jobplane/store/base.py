"""The object-store port: what the plane needs from GCS, and what the filesystem mimics.

Semantics follow GCS: every object has a generation (a positive integer that changes on
every write); writes may be conditional on the current generation (``0`` = must not exist);
listing is lexicographic by key. Adapters raise ``NotFoundError``,
``PreconditionFailedError`` and ``UnavailableError`` from ``jobplane.errors``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..errors import PermanentError


@dataclass(frozen=True)
class Blob:
    """An object's bytes and the generation they were read at."""

    key: str
    data: bytes
    generation: int


class DataTooLargeError(PermanentError):
    """An object is larger than the reader's limit; it was not read beyond it."""

    code = "too_large"


@runtime_checkable
class LimitedReader(Protocol):
    """A store that can read an object without reading more than a limit."""

    def read_limited(self, key: str, limit: int) -> Blob:
        """At most ``limit`` bytes; ``DataTooLargeError`` when the object is larger."""
        ...


def read_capped(store: ObjectStore, key: str, limit: int) -> Blob:
    """``key``'s object, never reading more than ``limit`` bytes where the store can stop early
    (both adapters can); ``DataTooLargeError`` when it is larger."""
    if isinstance(store, LimitedReader):
        return store.read_limited(key, limit)
    blob = store.read(key)
    if len(blob.data) > limit:
        raise DataTooLargeError(f"object {key!r} is larger than the limit of {limit} bytes")
    return blob


@runtime_checkable
class ObjectStore(Protocol):
    """Port implemented by ``files.FileStore`` (embedded) and ``gcs.GcsStore`` (cloud)."""

    url: str
    """Where this store lives: ``file:///abs/dir`` or ``gs://bucket/prefix``."""

    def read(self, key: str) -> Blob:
        """The object at ``key``; ``NotFoundError`` if there is none."""
        ...

    def write(
        self,
        key: str,
        data: bytes,
        *,
        if_generation_match: int | None = None,
        content_type: str = "application/json",
        durable: bool = True,
    ) -> int:
        """Write and return the new generation. With ``if_generation_match`` the write
        happens only if the current generation equals it (``0``: the object must not exist),
        else ``PreconditionFailedError``. ``durable=False``: the object is there for every
        reader at once, but a crash of the machine may lose it until ``sync(key)`` (a caller
        that acknowledges nothing before the sync loses nothing it promised); stores whose
        every write is durable (GCS) ignore it."""
        ...

    def sync(self, key: str) -> None:
        """Make the latest write of ``key`` durable (a no-op where every write is)."""
        ...

    def delete(self, key: str, *, if_generation_match: int | None = None) -> None:
        """Delete; ``NotFoundError`` if absent."""
        ...

    def list(self, prefix: str, *, start_after: str = "", limit: int | None = None) -> Iterator[str]:
        """Keys under ``prefix`` in lexicographic order, after ``start_after``."""
        ...

    def upload_file(self, key: str, path: Path, *, content_type: str = "application/octet-stream") -> int:
        """Copy a local file into the store (resumable on GCS for large files)."""
        ...

    def download_file(self, key: str, path: Path) -> None:
        """Copy an object to a local file."""
        ...

    def uri(self, key: str) -> str:
        """A URI naming the object, e.g. ``gs://bucket/prefix/key`` or ``file:///dir/key``."""
        ...
