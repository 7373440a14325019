"""The embedded object store: a directory that behaves like a GCS bucket.

Objects are plain files under ``root`` (so ``runs/{id}/run.json`` can be read with ``cat``);
what GCS keeps beside an object lives under ``root/.jobplane/``: one lock file per key that
also holds the key's last generation. Writers take an exclusive ``flock`` on it, readers a
shared one, so compare-and-swap is safe across threads and processes, and a reader never
pairs new bytes with an old generation. Data lands by write-temp + fsync + ``os.replace``,
so a crash leaves the old object or the new one, never half of one.

Generations are microsecond timestamps forced past the key's last generation, which the
lock file keeps after a delete: strictly increasing per key, also across delete + recreate.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import NotFoundError, PermanentError, PreconditionFailedError, UnavailableError
from .base import Blob

META_DIR = ".jobplane"
"""Reserved top-level directory for lock files and temporary files; never a key."""
_GEN_WIDTH = 20


class FileStore:
    """``ObjectStore`` on a local directory (``file:///abs/dir``)."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self.url = self.root.as_uri()
        self._fsync = fsync
        self._locks = self.root / META_DIR / "locks"
        self._tmp = self.root / META_DIR / "tmp"

    def __repr__(self) -> str:
        return f"FileStore({str(self.root)!r})"

    # --- reads ------------------------------------------------------------------------------
    def read(self, key: str) -> Blob:
        path = self._path(key)
        with self._locked(key, exclusive=False) as lock_fd:
            try:
                data = path.read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                raise NotFoundError(f"no object {key!r} in {self.url}") from None
            return Blob(key=key, data=data, generation=_current_generation(lock_fd, exists=True))

    def list(self, prefix: str, *, start_after: str = "", limit: int | None = None) -> Iterator[str]:
        keys = sorted(k for k in self._walk(prefix) if k.startswith(prefix) and k > start_after)
        return iter(keys if limit is None else keys[:limit])

    def download_file(self, key: str, path: Path) -> None:
        blob = self.read(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        tmp.write_bytes(blob.data)
        os.replace(tmp, path)

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    # --- writes -----------------------------------------------------------------------------
    def write(
        self,
        key: str,
        data: bytes,
        *,
        if_generation_match: int | None = None,
        content_type: str = "application/json",
    ) -> int:
        path = self._path(key)
        with self._locked(key, exclusive=True) as lock_fd:
            last = _read_generation(lock_fd)
            current = _current_generation(lock_fd, exists=path.is_file())
            _check_precondition(key, current, if_generation_match)
            tmp = self._stage(data)
            self._land(tmp, path, key)
            generation = max(last + 1, time.time_ns() // 1000)
            _write_generation(lock_fd, generation)
            return generation

    def upload_file(self, key: str, path: Path, *, content_type: str = "application/octet-stream") -> int:
        target = self._path(key)
        self._tmp.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / uuid.uuid4().hex
        shutil.copyfile(path, tmp)
        self._sync_file(tmp)
        with self._locked(key, exclusive=True) as lock_fd:
            self._land(tmp, target, key)
            generation = max(_read_generation(lock_fd) + 1, time.time_ns() // 1000)
            _write_generation(lock_fd, generation)
            return generation

    def delete(self, key: str, *, if_generation_match: int | None = None) -> None:
        path = self._path(key)
        with self._locked(key, exclusive=True) as lock_fd:
            current = _current_generation(lock_fd, exists=path.is_file())
            if current == 0:
                raise NotFoundError(f"no object {key!r} in {self.url}")
            _check_precondition(key, current, if_generation_match)
            path.unlink()

    # --- internals --------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == META_DIR:
            raise PermanentError(f"invalid object key {key!r}: expected a relative path without empty, '.' or '..' parts")
        return self.root.joinpath(*parts)

    @contextmanager
    def _locked(self, key: str, *, exclusive: bool) -> Iterator[int]:
        lock_path = self._locks.joinpath(*key.split("/")).with_name(key.rsplit("/", 1)[-1] + ".lock")
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise UnavailableError(f"cannot open lock for {key!r} in {self.url}: {e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield fd
        finally:
            os.close(fd)  # closing releases the flock

    def _stage(self, data: bytes) -> Path:
        self._tmp.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / uuid.uuid4().hex
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())
        return tmp

    def _sync_file(self, path: Path) -> None:
        if self._fsync:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _land(self, tmp: Path, path: Path, key: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
        except (NotADirectoryError, IsADirectoryError, FileExistsError) as e:
            tmp.unlink(missing_ok=True)
            raise PermanentError(f"object key {key!r} clashes with another key's path in {self.url}") from e

    def _walk(self, prefix: str) -> Iterator[str]:
        base = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            rel = os.path.relpath(dirpath, self.root)
            if rel == ".":
                dirnames[:] = [d for d in dirnames if d != META_DIR]
                rel = ""
            for name in filenames:
                yield f"{rel}/{name}".lstrip("/").replace(os.sep, "/")


def _check_precondition(key: str, current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise PreconditionFailedError(
            f"precondition failed for {key!r}: expected generation {expected}, found {current}"
        )


def _current_generation(fd: int, *, exists: bool) -> int:
    """The generation of an object that exists (at least 1, even if its lock file was lost)."""
    return max(_read_generation(fd), 1) if exists else 0


def _read_generation(fd: int) -> int:
    raw = os.pread(fd, _GEN_WIDTH, 0)
    try:
        return int(raw.decode("ascii").strip() or 0)
    except ValueError:
        return 0


def _write_generation(fd: int, generation: int) -> None:
    os.pwrite(fd, str(generation).rjust(_GEN_WIDTH).encode("ascii"), 0)
