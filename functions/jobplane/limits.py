"""What every door of the plane refuses before it works on a request: bodies over a size limit
and JSON nested deeper than any input the plane reads.

The size limit is one setting (``JOBPLANE_MAX_EVENT_BYTES``, ``Settings.max_event_bytes``),
the same at the broker ingress and at every function, so the ingress never accepts an event
that a subscriber or the dead-letter sink would refuse. A body is read at most ``limit + 1``
bytes far, whether it declares a ``Content-Length`` or arrives chunked.

JSON depth is checked on the raw bytes before ``json.loads``: a deeply nested body costs one
regex scan, never a ``RecursionError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any, Final

from .errors import PayloadTooLargeError, PermanentError

DEFAULT_MAX_EVENT_BYTES: Final = 10 * 1024 * 1024
"""Largest request body by default (inline training data of a small bot fits well under it)."""
MAX_JSON_DEPTH: Final = 64
"""Deepest JSON nesting any door reads (specs and events nest fewer than ten levels)."""
READ_CHUNK: Final = 64 * 1024
BODY_LIMIT_KEY: Final = "jobplane.max_body_bytes"
"""The WSGI environ key the door (``app.guard_body``) leaves its limit under for ``read_body``."""
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPENERS: Final = frozenset(b"[{")
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")


def read_capped(stream: IO[bytes], limit: int, *, declared: int | None = None) -> bytes:
    """Read ``stream`` to its end (or ``declared`` bytes), never more than ``limit + 1`` bytes;
    ``PayloadTooLargeError`` when the body is over ``limit``."""
    if declared is not None and declared > limit:
        raise too_large(limit, declared)
    want = limit + 1 if declared is None else declared
    parts: list[bytes] = []
    got = 0
    while got < want:
        chunk = stream.read(min(READ_CHUNK, want - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    if got > limit:
        raise too_large(limit)
    return b"".join(parts)


class CappedInput:
    """A WSGI input stream that ends after ``cap`` bytes, however much the client sends: a
    reader that wants more than the limit sees ``limit + 1`` bytes and refuses, and nothing
    after it (a framework that drains the body, functions-framework does) reads further."""

    def __init__(self, stream: IO[bytes], cap: int) -> None:
        self._stream = stream
        self._left = cap

    def read(self, size: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = self._stream.read(want)
        self._left -= len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = self._stream.readline(want)
        self._left -= len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


def too_large(limit: int, length: int | None = None) -> PayloadTooLargeError:
    size = f"of {length} bytes " if length is not None else ""
    return PayloadTooLargeError(
        f"request body {size}exceeds the limit of {limit} bytes (JOBPLANE_MAX_EVENT_BYTES)"
    )


def too_deep(raw: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``raw`` nests arrays and objects deeper than ``limit`` (brackets inside strings
    do not count). Linear in the size of ``raw``; no recursion."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # cannot nest deeper than there are openers
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        depth += 1 if byte in _OPENERS else -1
        if depth > limit:
            return True
    return False


def check_depth(raw: bytes | str, what: str, *, limit: int = MAX_JSON_DEPTH) -> None:
    """``PermanentError`` (400) when ``raw`` nests deeper than ``limit``."""
    if too_deep(raw, limit):
        raise PermanentError(f"{what}: JSON nested deeper than {limit} levels")


def loads(raw: bytes | str, what: str) -> Any:
    """``json.loads`` behind the depth check; ``PermanentError`` says what is wrong."""
    check_depth(raw, what)
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PermanentError(f"{what}: not valid JSON ({e})") from e
