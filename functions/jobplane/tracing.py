"""W3C trace context (``traceparent``) carried from a trigger to its run, its Job and back.

A CloudEvent carries it in the distributed-tracing extension attribute ``traceparent``; an
HTTP request in the ``traceparent`` header. The plane keeps the trace id and derives each
hop's parent id from what that hop is (the run id for the Job), so the same trigger always
gives the same values: a redelivered event and a rebuilt Job manifest agree (manifests are
pure and deterministic). A trigger without a valid one gets a trace id derived from its
``source`` + ``id``, for the same reason. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from typing import Final

from . import conventions as c

_TRACEPARENT: Final = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE: Final = "0" * 32
_ZERO_SPAN: Final = "0" * 16
SAMPLED: Final = "01"


def parse(value: object) -> str | None:
    """``value`` when it is a valid version-00 ``traceparent`` (lower case, no all-zero ids), else None."""
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None or match.group(1) == _ZERO_TRACE or match.group(2) == _ZERO_SPAN:
        return None
    return value.strip()


def derived(seed: str) -> str:
    """A ``traceparent`` made from ``seed`` alone (same seed, same value)."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return _compose(digest[:32], digest[32:48])


def new() -> str:
    """A fresh random ``traceparent`` (an HTTP request that brought none)."""
    return _compose(secrets.token_hex(16), secrets.token_hex(8))


def of_event(source: str, event_id: str, extensions: Mapping[str, str]) -> str:
    """The event's own ``traceparent`` extension if valid, else one derived from source + id."""
    return parse(extensions.get(c.TRACE_EXTENSION)) or derived(f"{source}\n{event_id}")


def child(traceparent: str, *, seed: str) -> str:
    """The same trace, a parent id derived from ``seed`` (the next hop: a run's Job)."""
    parsed = parse(traceparent) or derived(traceparent)
    trace_id, _, flags = parsed[3:].split("-")
    span = hashlib.sha256(f"{trace_id}\n{seed}".encode()).hexdigest()[:16]
    return _compose(trace_id, span, flags)


def trace_id(traceparent: str) -> str:
    """The trace id part (what joins every hop's log lines)."""
    return traceparent.split("-")[1] if parse(traceparent) else ""


def _compose(trace: str, span: str, flags: str = SAMPLED) -> str:
    trace = trace if trace != _ZERO_TRACE else "1" + trace[1:]
    span = span if span != _ZERO_SPAN else "1" + span[1:]
    return f"00-{trace}-{span}-{flags}"

