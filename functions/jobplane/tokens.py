"""Per-run callback tokens: HMAC-SHA256 of the run id under the plane's callback key.

A Job gets its own run's token; the status function recomputes it, so no token is stored,
and one run's token is useless for another run.
"""

from __future__ import annotations

import hashlib
import hmac


def callback_token(key: bytes, run_id: str) -> str:
    if not key:
        raise ValueError("callback key is empty; set JOBPLANE_CALLBACK_KEY")
    return hmac.new(key, f"jobplane-run:{run_id}".encode(), hashlib.sha256).hexdigest()


def verify_token(key: bytes, run_id: str, token: str | None) -> bool:
    if not token or not key:
        return False
    return hmac.compare_digest(callback_token(key, run_id), token)
