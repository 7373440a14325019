"""Run records: their identity, their lifecycle rules, and how they live in the object store.

A run's id is derived from (spec id, trigger source + id), so a redelivered trigger names the
same run — and the same Job — and creating it again is a no-op. Records change only through
compare-and-swap on the object's generation, so concurrent writers never lose an update.
``run.json`` is the one durable fact; the index entries (listings by spec and bot, the active
marker) are created beside it, and rewritten by a redelivery, so a crash between the writes
heals.

    requested → launched → [queued →] running → succeeded | failed | cancelled   (+ skipped, superseded)

``queued`` while Kueue (or the embedded plane's quota) holds the Job; a preempted run goes back
from ``running`` to ``queued`` (``requeue``), the one way back, and keeps its progress.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from . import conventions as c
from . import metrics, workers
from .errors import NotFoundError, PreconditionFailedError, Problem, UnavailableError, ValidationError
from .store.base import ObjectStore

Run = dict[str, Any]

TERMINAL: Final = frozenset({"succeeded", "failed", "cancelled", "skipped", "superseded"})
STATES: Final = ("requested", "launched", "queued", "running", *sorted(TERMINAL))
_RANK: Final = {"requested": 0, "launched": 1, "queued": 2, "running": 3}
_INVERT_BASE: Final = 10**13
_CAS_ATTEMPTS: Final = 25
NO_BOT: Final = "_"
"""The bot segment of the active marker of a run that names no bot."""


def run_id_for(spec_id: str, *, source: str, event_id: str) -> str:
    """Deterministic run id (and Job name): a DNS-1123 label of at most 63 characters."""
    digest = hashlib.sha256(f"{source}\n{event_id}".encode()).hexdigest()[:12]
    return f"{spec_id[:50].rstrip('-')}-{digest}"


def rfc3339(now: datetime) -> str:
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(stamp: str) -> datetime:
    """The time a record's ``...At`` field (``rfc3339``) names, timezone-aware."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def new_run(
    *, spec: Mapping[str, Any], trigger: Mapping[str, Any], requested_by: str, now: datetime
) -> Run:
    """A fresh run record in state ``requested`` (pure)."""
    params = spec.get("params") or {}
    return {
        "id": run_id_for(spec["id"], source=str(trigger["source"]), event_id=str(trigger["id"])),
        "specId": spec["id"],
        "botId": params.get("botId"),
        "type": spec["type"],
        "state": "requested",
        "reason": None,
        "progress": 0,
        "phase": "requested",
        "message": None,
        "seq": 0,
        "trigger": {k: trigger.get(k) for k in ("type", "source", "id", "subject")},
        "requestedBy": requested_by,
        "createdAt": rfc3339(now),
        "updatedAt": rfc3339(now),
        "startedAt": None,
        "finishedAt": None,
        "job": None,
        "metrics": None,
        "artifacts": {},
    }


def is_terminal(run: Mapping[str, Any]) -> bool:
    return run.get("state") in TERMINAL


def transition(run: Run, state: str, *, reason: str | None = None, now: datetime) -> Run:
    """The run moved to ``state``; terminal states are sticky and no state goes backwards."""
    if state not in STATES:
        raise ValueError(f"unknown run state {state!r}")
    if is_terminal(run):
        return run
    if state not in TERMINAL and _RANK[state] <= _RANK[run["state"]]:
        return run
    new = copy.deepcopy(run)
    new["state"] = state
    new["updatedAt"] = rfc3339(now)
    if reason is not None:
        new["reason"] = reason
    elif run["state"] == "queued":
        new.pop("reason", None)  # why it waited (WaitingForQuota, …) is over; ``queue`` keeps the wait
    if state == "running" and not new.get("startedAt"):
        new["startedAt"] = rfc3339(now)
    if state in TERMINAL:
        new["finishedAt"] = rfc3339(now)
        new["phase"] = state
        if state == "succeeded":
            new["progress"] = 100
    return new


def requeue(run: Run, *, reason: str, now: datetime) -> Run:
    """A running run's Job was evicted (preempted) and waits again: back to ``queued`` with
    ``reason``; its progress stays, and the eviction is no failed attempt (``preemptions``
    counts it). Terminal runs and runs not running are returned unchanged."""
    if run.get("state") != "running":
        return run
    new = copy.deepcopy(run)
    new["state"], new["reason"], new["updatedAt"] = "queued", reason, rfc3339(now)
    new["preemptions"] = int(run.get("preemptions") or 0) + 1
    return new


def apply_event(run: Run, *, type: str, data: Mapping[str, Any], now: datetime) -> Run | None:
    """Merge one callback event into the record (pure). ``None`` means nothing changes:
    the run is already terminal, or the event is a duplicate or out of order."""
    from . import events as ev

    if is_terminal(run):
        return None
    if type == ev.RUN_PROGRESS:
        return _merge_progress(run, data, now=now)
    if type == ev.RUN_SUCCEEDED:
        new = transition(run, "succeeded", now=now)
        new["metrics"] = data.get("metrics") or new.get("metrics")
        new["artifacts"] = dict(data.get("artifacts") or {})
        return new  # promoted/modelUri: only the status function's promotion sets them
    if type == ev.RUN_FAILED:
        reason = str(data.get("reason") or "Failed")
        new = transition(run, "failed", reason=reason, now=now)
        new["message"] = data.get("message")
        if isinstance(data.get("metrics"), Mapping):  # a failed bot test keeps its figures
            new["metrics"] = dict(data["metrics"])
        if isinstance(data.get("artifacts"), Mapping):
            new["artifacts"] = dict(data["artifacts"])
        return new
    if type == ev.RUN_LAUNCHED:
        return None if _RANK.get(run["state"], len(_RANK)) >= 1 else transition(run, "launched", now=now)
    return None


def _merge_progress(run: Run, data: Mapping[str, Any], *, now: datetime) -> Run | None:
    seq = int(data.get("seq", 0))
    if seq <= int(run.get("seq", 0)):
        return None
    new = transition(run, "running", now=now) if run["state"] != "running" else copy.deepcopy(run)
    new["seq"] = seq
    new["progress"] = max(int(run.get("progress", 0)), min(100, max(0, int(data.get("progress", 0)))))
    new["updatedAt"] = rfc3339(now)
    for key in ("phase", "message", "eta"):
        if data.get(key) is not None:
            new[key] = data[key]
    if isinstance(data.get("metrics"), Mapping):
        new["metrics"] = {**(new.get("metrics") or {}), **data["metrics"]}
    return new


# --- the store -------------------------------------------------------------------------------


def _inverted(created_at: str) -> str:
    millis = int(parse_rfc3339(created_at).timestamp() * 1000)
    return f"{_INVERT_BASE - millis:013d}"


CREATED_PREFIX: Final = "index/created/"
"""Every run, oldest first: ``{millis since the epoch, 13 digits}-{runId}`` (the retention sweep's walk)."""


def listing_keys(run: Mapping[str, Any]) -> list[str]:
    """The run's entries in the spec's and the bot's newest-first listings, and in the
    oldest-first one of every run (``created_key``)."""
    stamp = f"{_inverted(run['createdAt'])}-{run['id']}"
    keys = [f"index/specs/{run['specId']}/{stamp}"]
    if run.get("botId"):
        keys.append(f"index/bots/{run['botId']}/{stamp}")
    keys.append(created_key(run["createdAt"], str(run["id"])))
    return keys


def created_key(created_at: str | int, run_id: str) -> str:
    """``index/created/{millis}-{runId}`` for a creation time (RFC 3339, or epoch millis)."""
    millis = created_at if isinstance(created_at, int) else int(parse_rfc3339(created_at).timestamp() * 1000)
    return f"{CREATED_PREFIX}{millis:013d}-{run_id}"


def from_created_key(key: str) -> tuple[int, str]:
    """``(millis, runId)`` of an ``index/created/`` key."""
    millis, _, run_id = key[len(CREATED_PREFIX):].partition("-")
    return int(millis), run_id


def from_listing_key(key: str) -> tuple[int, str]:
    """``(createdAt millis, runId)`` of an ``index/specs/…`` or ``index/bots/…`` entry."""
    inverted, _, run_id = key.rsplit("/", 1)[1].partition("-")
    return _INVERT_BASE - int(inverted), run_id


def inverted_millis(millis: int) -> str:
    """The inverted-time segment of listing entries for ``millis`` (newer sorts first)."""
    return f"{_INVERT_BASE - millis:013d}"


def active_key(run: Mapping[str, Any]) -> str:
    """The run's marker under ``index/active/{specId}/{botId}/``, there while the run is not
    terminal. The bot is in the key so one bot's active runs of a spec shared by every bot (a
    fan-out's, such as the nightly tests) list without the others' (``list_active``)."""
    return f"index/active/{run['specId']}/{run.get('botId') or NO_BOT}/{run['id']}"


def _legacy_active_key(run: Mapping[str, Any]) -> str:
    """Where markers were before they named the bot (still listed, and removed at the end)."""
    return f"index/active/{run['specId']}/{run['id']}"


def index_keys(run: Mapping[str, Any]) -> list[str]:
    """Every index entry the run should have: its listings, and its active marker unless terminal."""
    return listing_keys(run) + ([] if is_terminal(run) else [active_key(run)])


@dataclass(frozen=True)
class Stored:
    """A run record as the store holds it."""

    run: Run
    generation: int
    """The generation ``run`` was written or read at (for a compare-and-swap without a read)."""
    created: bool
    """False when a run of that id was there already (a redelivered trigger)."""


def create_record(store: ObjectStore, run: Run) -> Stored:
    """Store ``runs/{id}/run.json`` create-only, and nothing else: the one durable fact that
    makes a redelivery find its run. A run of that id already there is read and returned."""
    try:
        generation = store.write(c.run_key(run["id"]), _dump(run), if_generation_match=0)
        metrics.run_written(None, run)
        return Stored(run, generation, created=True)
    except PreconditionFailedError:
        blob = store.read(c.run_key(run["id"]))
        return Stored(json.loads(blob.data), blob.generation, created=False)


def create_run(store: ObjectStore, run: Run) -> tuple[Run, bool]:
    """Store a new run create-only, with its index entries. A run of that id already there is
    returned with ``False`` (a redelivered trigger). Index entries are (re)written either way,
    so a crash between the writes heals on redelivery."""
    stored = create_record(store, run)
    write_index(store, index_keys(stored.run))
    return stored.run, stored.created


def write_index(store: ObjectStore, keys: Iterable[str]) -> None:
    """Create the (empty) index entries ``keys`` concurrently (the first in this thread); ones
    already there are fine."""
    first, *rest = list(keys) or [""]
    writes = start_index(store, rest)
    try:
        if first:
            _create_quietly(store, first, b"")
    finally:
        workers.wait_for(writes)


def start_index(store: ObjectStore, keys: Iterable[str]) -> list[Future[None]]:
    """Begin creating the index entries ``keys`` on the process's workers; the caller waits on the
    futures (``Future.result`` raises what a write raised)."""
    return [workers.submit(_create_quietly, store, key, b"") for key in keys]


def _create_quietly(store: ObjectStore, key: str, data: bytes) -> None:
    try:
        store.write(key, data, if_generation_match=0)
    except PreconditionFailedError:
        pass


def get_run(store: ObjectStore, run_id: str) -> Run:
    return read_record(store, run_id).run


def read_record(store: ObjectStore, run_id: str) -> Stored:
    """The stored record with its generation (``NotFoundError`` when there is none)."""
    blob = store.read(c.run_key(run_id))
    return Stored(json.loads(blob.data), blob.generation, created=False)


def update_run(
    store: ObjectStore, run_id: str, mutate: Callable[[Run], Run | None], *, known: Stored | None = None
) -> Run:
    """Read, mutate, compare-and-swap; retried when another writer got there first.
    ``mutate`` gets a private copy and returns the new record, or ``None`` for no change.
    ``known`` is the record as this process last wrote or read it: the first attempt swaps
    against it without reading (a stale one just costs the read it saved)."""
    for attempt in range(_CAS_ATTEMPTS):
        trusting = attempt == 0 and known is not None
        if trusting and known is not None:
            current, generation = known.run, known.generation
        else:
            blob = store.read(c.run_key(run_id))
            current, generation = json.loads(blob.data), blob.generation
        new = mutate(copy.deepcopy(current))
        if new is None or new == current:
            if trusting:
                continue  # no change to what this process knew: check what is stored
            return current
        try:
            store.write(c.run_key(run_id), _dump(new), if_generation_match=generation)
        except PreconditionFailedError:
            if not trusting:  # a stale ``known`` is no contention: read at once
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
            continue
        metrics.run_written(current, new)
        if is_terminal(new):
            forget_active(store, new)
        return new
    raise UnavailableError(f"run {run_id}: too many concurrent updates; retry")


def forget_active(store: ObjectStore, run: Mapping[str, Any]) -> None:
    """Remove the run's active marker (gone already is fine)."""
    try:
        store.delete(active_key(run))
    except NotFoundError:
        try:
            store.delete(_legacy_active_key(run))
        except NotFoundError:
            pass


FILTER_SCAN: Final = 1000
"""Most listing entries read for one page (a listing filtered by job type may find fewer
than its limit in them: its page token goes on from the last entry read)."""
_PAGE_TOKEN: Final = re.compile(r"^\d{13}-[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    next_token: str | None
    """The last listing entry read (``{invertedTime}-{runId}``) when there may be more."""


def list_runs(
    store: ObjectStore, *, spec_id: str | None = None, bot_id: str | None = None, limit: int = 10,
    job_type: str | None = None,
) -> list[Run]:
    """Runs newest first, by a spec's or a bot's index (the first page of ``page_runs``)."""
    return page_runs(store, spec_id=spec_id, bot_id=bot_id, limit=limit, job_type=job_type).runs


def page_runs(
    store: ObjectStore, *, spec_id: str | None = None, bot_id: str | None = None, limit: int = 10,
    job_type: str | None = None, token: str = "",
) -> RunPage:
    """One page of runs, newest first, after ``token`` (a previous page's ``next_token``;
    ``ValidationError`` at field ``pageToken`` for anything else); ``job_type``: only runs of
    that type among the next ``FILTER_SCAN`` entries."""
    if (spec_id is None) == (bot_id is None):
        raise ValueError("give exactly one of spec_id or bot_id")
    if token and not _PAGE_TOKEN.match(token):
        raise ValidationError([Problem("pageToken", "must be a nextPageToken of this listing")], what="query")
    prefix = f"index/specs/{spec_id}/" if spec_id else f"index/bots/{bot_id}/"
    found: list[Run] = []
    last, more = "", False
    for n, key in enumerate(store.list(prefix, start_after=prefix + token if token else "", limit=FILTER_SCAN + 1)):
        if len(found) >= limit or n >= FILTER_SCAN:
            more = True
            break
        last = key
        try:
            run = get_run(store, key[len(prefix):].split("-", 1)[1])
        except NotFoundError:
            continue
        if job_type is None or run.get("type") == job_type:
            found.append(run)
    return RunPage(found, last[len(prefix):] if more and last else None)


def list_active(store: ObjectStore, *, spec_id: str | None = None, bot_id: str | None = None) -> list[str]:
    """Ids of runs not yet terminal: all, one spec's, or one spec's for one bot (``bot_id``:
    ``""`` for runs of no bot). One bot's listing costs what that bot has active, not what the
    spec has, plus the markers from before they named the bot (their key's last segment
    starts with the spec id: ``{specId}-{hash}``)."""
    if bot_id is None:
        prefix = f"index/active/{spec_id}/" if spec_id else "index/active/"
        return [key.rsplit("/", 1)[1] for key in store.list(prefix)]
    if not spec_id:
        raise ValueError("bot_id needs spec_id")
    found = [key.rsplit("/", 1)[1] for key in store.list(f"index/active/{spec_id}/{bot_id or NO_BOT}/")]
    legacy = f"index/active/{spec_id}/{spec_id}-"
    return found + [key.rsplit("/", 1)[1] for key in store.list(legacy) if "/" not in key[len(legacy):]]


def _dump(run: Mapping[str, Any]) -> bytes:
    return json.dumps(run, sort_keys=True, separators=(",", ":")).encode()
