"""Which object keys are valid, the same for every adapter, so a key that works on the
filesystem never fails on GCS or the other way round."""

from __future__ import annotations

from typing import Final

from ..errors import PermanentError

RESERVED_PREFIX: Final = ".jobplane"
"""Top-level name the filesystem store keeps its lock and temporary files under."""
MAX_KEY_BYTES: Final = 900
"""GCS allows 1024 bytes per object name; leave room for a store's prefix."""


def check_key(key: str) -> list[str]:
    """The key's ``/``-separated parts; ``PermanentError`` for a key no store accepts:
    empty, absolute, with empty, ``.`` or ``..`` parts, control characters, too long, or
    under the reserved ``.jobplane/``."""
    parts = key.split("/")
    bad = (
        not key
        or any(p in ("", ".", "..") for p in parts)
        or parts[0] == RESERVED_PREFIX
        or any(ord(ch) < 0x20 or ch == "\x7f" for ch in key)
        or len(key.encode()) > MAX_KEY_BYTES
    )
    if bad:
        raise PermanentError(
            f"invalid object key {key[:100]!r}: expected a relative path of non-empty parts, none "
            f"'.' or '..', no control characters, at most {MAX_KEY_BYTES} bytes, not under {RESERVED_PREFIX}/"
        )
    return parts
