"""The embedded object store: a directory that behaves like a GCS bucket.

Objects are plain files under ``root`` (so ``runs/{id}/run.json`` can be read with ``cat``).
A file is never changed in place: a write stages a temporary file (data, fsync), stamps the
object's generation on it as its modification time (microseconds), and ``os.replace``-s it
over the key's path, so a crash leaves the old object or the new one, never half of one,
and a reader that opened a file gets its bytes and its generation from the same inode,
without a lock.

Writers serialise per key on one of ``LOCK_STRIPES`` lock files under ``root/.jobplane/``
(``fcntl.flock``: safe across threads and processes, released if a process dies), where the
precondition is checked and the generation chosen. Each stripe file keeps the highest
generation it ever issued, so generations increase strictly per key, also across delete and
recreate and when the clock steps back.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Final, ParamSpec, TypeVar

from ..errors import NotFoundError, PermanentError, PreconditionFailedError, UnavailableError
from .base import Blob, DataTooLargeError
from .keys import RESERVED_PREFIX, check_key

META_DIR: Final = RESERVED_PREFIX
"""Top-level directory for lock and temporary files; ``check_key`` keeps keys out of it."""
LOCK_STRIPES: Final = 256
"""Lock files keys hash onto: bounded, however many objects there are."""
FILE_MODE: Final = 0o600
"""Objects are readable by the plane's user only (dead letters, run records, models)."""
DIR_MODE: Final = 0o700
_GEN_WIDTH: Final = 20
_TMP_SEQ: Final = itertools.count()
"""Temporary file names: pid and sequence, no random bytes (a syscall) per write."""


P = ParamSpec("P")
R = TypeVar("R")


def _io(method: Callable[P, R]) -> Callable[P, R]:
    """An I/O failure the method does not map itself (disk full, permission denied, EIO, a
    vanished mount) is ``UnavailableError``: the store may come back, so a retry can help
    (503 with Retry-After, or the broker's backoff). The message names no path."""

    @wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except OSError as e:
            raise UnavailableError(f"the object store failed: {e.strerror or type(e).__name__}") from e

    return call


class FileStore:
    """``ObjectStore`` on a local directory (``file:///abs/dir``)."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self.url = self.root.as_uri()
        self._fsync = fsync
        self._locks = self.root / META_DIR / "locks"
        self._tmp = self.root / META_DIR / "tmp"
        self._thread_locks = [threading.Lock() for _ in range(LOCK_STRIPES)]
        self._stamps_checked = False

    def __repr__(self) -> str:
        return f"FileStore({str(self.root)!r})"

    # --- reads ------------------------------------------------------------------------------
    @_io
    def read(self, key: str) -> Blob:
        try:
            with open(self._path(key), "rb") as f:
                generation = os.fstat(f.fileno()).st_mtime_ns // 1000
                return Blob(key=key, data=f.read(), generation=generation)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFoundError(f"no object {key!r}") from None

    def read_limited(self, key: str, limit: int) -> Blob:
        """At most ``limit`` bytes of the object (``DataTooLargeError`` beyond), a regular file
        only (a symlink to ``/dev/zero`` or a FIFO is refused, never read)."""
        try:
            fd = os.open(self._path(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFoundError(f"no object {key!r}") from None
        except OSError:  # ELOOP: the key's file is a symbolic link, which the store never makes
            raise PermanentError(f"object {key!r} is not a plain object") from None
        with open(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise PermanentError(f"object {key!r} is not a plain object")
            data = f.read(limit + 1)
        if len(data) > limit:
            raise DataTooLargeError(f"object {key!r} is larger than the limit of {limit} bytes")
        return Blob(key=key, data=data, generation=st.st_mtime_ns // 1000)

    @_io
    def list(self, prefix: str, *, start_after: str = "", limit: int | None = None) -> Iterator[str]:
        keys = sorted(k for k in self._walk(prefix) if k.startswith(prefix) and k > start_after)
        return iter(keys if limit is None else keys[:limit])

    @_io
    def download_file(self, key: str, path: Path) -> None:
        try:
            source = open(self._path(key), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFoundError(f"no object {key!r}") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        try:
            with source, open(tmp, "wb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    # --- writes -----------------------------------------------------------------------------
    @_io
    def write(
        self,
        key: str,
        data: bytes,
        *,
        if_generation_match: int | None = None,
        content_type: str = "application/json",
        durable: bool = True,
    ) -> int:
        path = self._path(key)
        if if_generation_match == 0 and path.is_file():  # fail fast before staging
            raise _precondition(key, 0, _generation_of(path))
        return self._place(key, path, self._stage(data, durable=durable), if_generation_match=if_generation_match)

    @_io
    def sync(self, key: str) -> None:
        try:
            self._sync(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            pass  # nothing written (or deleted since): nothing to make durable

    @_io
    def upload_file(self, key: str, path: Path, *, content_type: str = "application/octet-stream") -> int:
        target = self._path(key)
        tmp = self._new_tmp()
        fd = _open_creating_dir(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)  # not the source's mode
        with open(path, "rb") as source, open(fd, "wb") as out:
            shutil.copyfileobj(source, out, 1024 * 1024)
        self._sync(tmp)
        return self._place(key, target, tmp, if_generation_match=None)

    @_io
    def delete(self, key: str, *, if_generation_match: int | None = None) -> None:
        path = self._path(key)
        with self._locked(key):
            current = _generation_of(path)
            if current == 0:
                raise NotFoundError(f"no object {key!r}")
            _check(key, current, if_generation_match)
            path.unlink()

    # --- internals --------------------------------------------------------------------------
    def _place(self, key: str, path: Path, tmp: Path, *, if_generation_match: int | None) -> int:
        """Check the precondition, stamp the next generation on ``tmp`` and move it in."""
        landed = False
        try:
            with self._locked(key) as lock_fd:
                current = _generation_of(path)
                _check(key, current, if_generation_match)
                generation = max(time.time_ns() // 1000, _read_counter(lock_fd) + 1, current + 1)
                _stamp(tmp, generation)
                if not self._stamps_checked:  # a property of the filesystem: once per store
                    _check_stamp(tmp, generation)
                    self._stamps_checked = True
                self._land(tmp, path, key)
                landed = True
                _write_counter(lock_fd, generation)
                return generation
        finally:
            if not landed:
                tmp.unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key))

    @contextmanager
    def _locked(self, key: str) -> Iterator[int]:
        """Exclusive per-stripe lock: a thread lock (flock is per open file, not per thread)
        and an ``flock`` for other processes. Yields the stripe file's descriptor."""
        stripe = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest()) % LOCK_STRIPES
        with self._thread_locks[stripe]:
            try:
                fd = _open_creating_dir(self._locks / f"{stripe:03d}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as e:
                raise UnavailableError(f"the object store cannot open a lock file: {e.strerror}") from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield fd
            finally:
                os.close(fd)  # closing releases the flock

    def _new_tmp(self) -> Path:
        return self._tmp / uuid.uuid4().hex

    def _stage(self, data: bytes, *, durable: bool = True) -> Path:
        tmp = self._tmp / f"{os.getpid()}-{next(_TMP_SEQ)}"
        try:
            fd = _open_creating_dir(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:  # left by a crashed process that had this pid
            tmp = self._tmp / uuid.uuid4().hex
            fd = _open_creating_dir(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            if self._fsync and durable:
                os.fsync(f.fileno())
        return tmp

    def _sync(self, path: Path) -> None:
        if self._fsync:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _land(self, tmp: Path, path: Path, key: str) -> None:
        try:
            try:
                os.replace(tmp, path)
            except FileNotFoundError:  # the key's first object in its directory
                _make_dirs(path.parent)
                os.replace(tmp, path)
        except (NotADirectoryError, IsADirectoryError, FileExistsError) as e:
            raise PermanentError(f"object key {key!r} clashes with another key's path") from e

    def _walk(self, prefix: str) -> Iterator[str]:
        """Keys that may start with ``prefix``: only directories that can hold one are read."""
        base = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            rel = "" if rel == "." else rel + "/"
            dirnames[:] = [d for d in dirnames if _may_hold(rel + d + "/", prefix) and rel + d != META_DIR]
            for name in filenames:
                yield rel + name


def _open_creating_dir(path: Path, flags: int, mode: int) -> int:
    """``os.open`` that creates the parent directory when missing: a write's directories
    exist almost always, and probing them first costs more than the write (mkdir per call)."""
    try:
        return os.open(path, flags, mode)
    except FileNotFoundError:
        _make_dirs(path.parent)
        return os.open(path, flags, mode)


def _make_dirs(directory: Path) -> None:
    """``mkdir -p`` with every directory it creates ``DIR_MODE`` (``Path.mkdir`` gives the
    parents it creates the default mode)."""
    if directory.is_dir():
        return
    _make_dirs(directory.parent)
    try:
        directory.mkdir(mode=DIR_MODE)
    except FileExistsError:
        pass


def _may_hold(directory: str, prefix: str) -> bool:
    """Whether keys under ``directory`` (ending in ``/``) can start with ``prefix``."""
    return directory.startswith(prefix) or prefix.startswith(directory)


def _stamp(tmp: Path, generation: int) -> None:
    """Record ``generation`` as the file's modification time."""
    os.utime(tmp, ns=(generation * 1000, generation * 1000))


def _check_stamp(tmp: Path, generation: int) -> None:
    """Check the filesystem kept ``generation`` as the modification time to the microsecond."""
    if os.stat(tmp).st_mtime_ns != generation * 1000:
        raise UnavailableError("the object store's filesystem does not keep microsecond modification times")


def _generation_of(path: Path) -> int:
    """The generation of the object at ``path``; 0 when there is none."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    return 0 if stat.S_ISDIR(st.st_mode) else st.st_mtime_ns // 1000


def _check(key: str, current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise _precondition(key, expected, current)


def _precondition(key: str, expected: int, current: int) -> PreconditionFailedError:
    return PreconditionFailedError(f"precondition failed for {key!r}: expected generation {expected}, found {current}")


def _read_counter(fd: int) -> int:
    raw = os.pread(fd, _GEN_WIDTH, 0)
    try:
        return int(raw.decode("ascii").strip() or 0)
    except ValueError:
        return 0


def _write_counter(fd: int, generation: int) -> None:
    os.pwrite(fd, str(generation).rjust(_GEN_WIDTH).encode("ascii"), 0)
