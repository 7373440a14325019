"""The audit trail: who created, changed, deleted, triggered or cancelled what, when, and how it went.

Append-only by construction: each entry is written create-only under keys no write ever
reuses (the entry's id, ``{invertedMicros}-{random}``), once under ``audit/all/`` and once under each of its
spec's, bot's and run's prefixes (``audit/specs/{id}/``, ``audit/bots/{id}/``,
``audit/runs/{id}/``), each object holding the whole entry. A filtered query so reads one
prefix, newest first, as run listings do (``runs.listing_keys``); the page token is the last
key's name. Entries come from the API (subject: the authenticated user) and from the launch
function's triggers (subject: the CloudEvent's ``source``); failed attempts are kept too, with
their error code as the outcome.

``entry`` is pure; ``record`` writes; ``query`` reads. Recording never fails the action it
records: the action has happened (or failed) already, so a store error is logged instead.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from . import checks, workers
from .errors import JobplaneError, NotFoundError, PreconditionFailedError, Problem, ValidationError
from .store.base import ObjectStore

log = logging.getLogger(__name__)

ACTIONS: Final = ("create", "update", "delete", "trigger", "cancel")
OK: Final = "ok"
PREFIX: Final = "audit/"
ALL: Final = "audit/all/"
_INVERT_BASE: Final = 10**16
_NAME: Final = re.compile(r"^\d{16}-[0-9a-f]{8}$")
FILTERS: Final = (("runId", "runs"), ("specId", "specs"), ("botId", "bots"))
"""Query parameter → index prefix, most selective first: a query reads the first one given."""
MAX_DETAIL: Final = 500
MAX_ID: Final = 63
CONTEXT_KEY: Final = "jobplane.audit"
"""Where a handler notes what its request is about (``note``), in the WSGI environ."""

Entry = dict[str, Any]


def entry(
    *, action: str, target: str, subject: str, outcome: str, now: datetime, spec_id: str | None = None,
    bot_id: str | None = None, run_id: str | None = None, detail: str | None = None,
) -> Entry:
    """One audit entry (pure but for a random id when none is given)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    found: Entry = {
        "id": new_id(now),
        "time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "subject": subject or "unknown",
        "action": action,
        "target": target,
        "outcome": outcome,
    }
    for key, value in (("specId", spec_id), ("botId", bot_id), ("runId", run_id)):
        if is_id(value):
            found[key] = str(value)  # only ids that can name a key: a refused request's may be anything
    if detail:
        found["detail"] = detail[:MAX_DETAIL]
    return found


_last_micros = 0
_id_lock = threading.Lock()


def new_id(now: datetime) -> str:
    """``{inverted microseconds}-{random}``: ids sort newest first, and within this process
    strictly (two entries in one microsecond still sort in the order they were made)."""
    global _last_micros
    micros = int(now.timestamp() * 1_000_000)
    with _id_lock:
        micros = _last_micros = max(micros, _last_micros + 1)
    return f"{_INVERT_BASE - micros:016d}-{uuid.uuid4().hex[:8]}"


def is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID and bool(checks.DNS_LABEL.match(value))


def note(environ: dict[str, Any], **fields: object) -> None:
    """Note what the request is about (``specId``, ``botId``, ``runId``) for its audit entry."""
    environ.setdefault(CONTEXT_KEY, {}).update({k: v for k, v in fields.items() if is_id(v)})


def noted(environ: Mapping[str, Any]) -> dict[str, str]:
    return dict(environ.get(CONTEXT_KEY) or {})


def outcome_of(err: BaseException | None) -> str:
    """``ok``, or the error's code (``not_found``, ``conflict``, ``invalid``…; ``internal`` else)."""
    if err is None:
        return OK
    return err.code if isinstance(err, JobplaneError) else "internal"


def keys(found: Mapping[str, Any]) -> list[str]:
    """Where the entry is written: ``audit/all/`` and its spec's, bot's and run's prefixes."""
    name = str(found["id"])
    if not _NAME.match(name):
        raise ValueError(f"audit entry id {name!r} is not one new_id made")
    prefixes = [ALL] + [f"{PREFIX}{where}/{found[field]}/" for field, where in FILTERS if found.get(field)]
    return [prefix + name for prefix in prefixes]


def record(store: ObjectStore, found: Mapping[str, Any]) -> None:
    """Write the entry create-only under each of its keys (at once); errors are logged, not raised."""
    body = json.dumps(found, sort_keys=True, separators=(",", ":")).encode()
    first, *rest = keys(found)
    writes = [workers.submit(_create, store, key, body) for key in rest]
    try:
        _create(store, first, body)
        workers.wait_for(writes)
    except Exception:  # noqa: BLE001 - the action stands; its audit entry is what was lost
        log.exception("audit entry %s (%s %s by %s) not recorded", found.get("id"), found.get("action"),
                      found.get("target"), found.get("subject"))


def _create(store: ObjectStore, key: str, body: bytes) -> None:
    try:
        store.write(key, body, if_generation_match=0)
    except PreconditionFailedError:
        pass  # the same entry written before (a retried write): append-only, never rewritten


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    next_token: str | None


def query(store: ObjectStore, *, filters: Mapping[str, str], limit: int, token: str = "") -> Page:
    """Entries newest first, matching every filter (``specId``, ``botId``, ``runId``); ``token``:
    a previous page's ``next_token``."""
    if token and not _NAME.match(token):
        raise ValidationError([Problem("pageToken", "not a token this listing gave")], what="query")
    prefix = next((f"{PREFIX}{where}/{filters[field]}/" for field, where in FILTERS if filters.get(field)), ALL)
    wanted = {k: v for k, v in filters.items() if v}
    scan = limit + 1 if len(wanted) <= 1 else None  # one filter: its prefix holds only matches
    found: list[Entry] = []
    last = ""
    for key in store.list(prefix, start_after=prefix + token if token else "", limit=scan):
        try:
            item = json.loads(store.read(key).data)
        except NotFoundError:
            continue
        if any(item.get(k) != v for k, v in wanted.items()):
            continue
        if len(found) == limit:
            return Page(found, last)
        found.append(item)
        last = key[len(prefix):]
    return Page(found, None)

