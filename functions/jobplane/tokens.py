"""Per-run callback tokens: ``v2.{expires}.{HMAC-SHA256}`` of the run id and the expiry under
the plane's callback key.

A Job gets its own run's token; the status function recomputes it, so no token is stored,
one run's token is useless for another run, and a token stops working at its expiry (the run's
deadline plus a margin for the final event's retries), which the HMAC covers. Tokens of the
first format (the bare HMAC of the run id, no expiry) are refused: they never expired.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Final

VERSION: Final = "v2"
GRACE: Final = timedelta(hours=24)
"""How long after the run's deadline its token still works: the trainer's final event is
retried for longer than a plane restart, and a Kueue-held Job starts its deadline late."""


def callback_token(key: bytes, run_id: str, *, expires: int) -> str:
    """The token of ``run_id`` valid until ``expires`` (seconds since the epoch)."""
    if not key:
        raise ValueError("callback key is empty; set JOBPLANE_CALLBACK_KEY")
    return f"{VERSION}.{expires}.{_mac(key, run_id, expires)}"


def expiry_for(created_at: datetime, *, deadline_s: int) -> int:
    """When a run's token expires: its creation, plus its Job's deadline, plus ``GRACE``."""
    return int((created_at + timedelta(seconds=deadline_s) + GRACE).timestamp())


def verify_token(key: bytes, run_id: str, token: str | None, *, now: datetime) -> bool:
    """Whether ``token`` is ``run_id``'s, unexpired at ``now``."""
    if not token or not key:
        return False
    version, _, rest = token.partition(".")
    raw_expiry, _, mac = rest.partition(".")
    if version != VERSION or not raw_expiry.isdigit() or len(raw_expiry) > 12:
        return False
    expires = int(raw_expiry)
    return hmac.compare_digest(_mac(key, run_id, expires), mac) and now.timestamp() < expires


def _mac(key: bytes, run_id: str, expires: int) -> str:
    return hmac.new(key, f"jobplane-run:{run_id}:{expires}".encode(), hashlib.sha256).hexdigest()
