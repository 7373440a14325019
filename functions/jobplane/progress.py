"""Callbacks from Jobs into run records, without losing one and without hammering an object.

GCS sustains about one write per second to any one object, while a trainer may report
progress many times a second and the broker may deliver in parallel, twice, or out of order.
So each callback is first made durable on its own: an append-only log entry
``runs/{runId}/events/{seq:016d}-{eventId}`` written create-only (a redelivery finds it there
and is a duplicate). The run record is then compacted from those updates by a per-process
``Coalescer`` that writes each run's ``run.json`` at most once per ``FLUSH_INTERVAL_S``,
applying a whole batch in one compare-and-swap. A terminal callback is merged synchronously,
with everything still pending and anything in the log the record missed, before the
function answers: the final state is always written.

Callbacks carry the run's token in the ``jobplanetoken`` extension (``tokens.py``); one
without a valid, unexpired token changes nothing and is counted (``Rejections``: one tally
object per run, ``runs/{runId}/rejected.json``, never one object per forged callback).
"""

from __future__ import annotations

import atexit
import hashlib
import heapq
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from . import conventions as c
from . import events as ev
from . import runs, schemas, tokens
from .errors import (
    ForbiddenError,
    JobplaneError,
    NotFoundError,
    PermanentError,
    PreconditionFailedError,
    Problem,
    UnavailableError,
    ValidationError,
)
from .store.base import ObjectStore

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S: Final = 1.0
"""Least time between two writes of one run's record by one process (GCS: ~1 write/s/object)."""
CALLBACK_TYPES: Final = frozenset({ev.RUN_PROGRESS, ev.RUN_SUCCEEDED, ev.RUN_FAILED})
TERMINAL_TYPES: Final = frozenset({ev.RUN_SUCCEEDED, ev.RUN_FAILED})
CATCH_UP_LIMIT: Final = 500
"""Most log entries a terminal merge reads back (only those this process never saw)."""
RECORD_WAIT: Final = timedelta(minutes=1)
"""How long updates for a run with no record yet are kept and retried: the launch writes the
record right after the Job's create, so a callback can (in principle) arrive first."""
_FLUSH_WORKERS: Final = 4
_RETRY_BACKOFF_S: Final = 2.0
_FORGET_AFTER_RUNS: Final = 10_000
_BUSY_RETRY_S: Final = 0.005
_REJECT_CAS_ATTEMPTS: Final = 10
_RUN_ID: Final = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.-]")
SEQ_DIGITS: Final = 16
MAX_SEQ: Final = 10**SEQ_DIGITS - 1
"""Sequence numbers fit the log keys' sixteen digits, so the keys sort by seq. The trainer's
are milliseconds since the epoch (13 digits), so a retried attempt's continue past the last."""
FINAL_PREFIX: Final = "final-"
"""Log entries of terminal callbacks sort after every numbered progress entry."""


@dataclass(frozen=True)
class Update:
    """One accepted callback, as the record merge needs it."""

    type: str
    data: Mapping[str, Any]
    received: datetime

    @property
    def seq(self) -> int:
        return int(self.data.get("seq", 0)) if self.type == ev.RUN_PROGRESS else 0


# --- callbacks: identity, token, shape -----------------------------------------------------


def run_id_of(event: ev.Event) -> str:
    """The run a callback is about: its ``subject`` (a DNS-1123 label)."""
    run_id = event.subject or ""
    if not _RUN_ID.match(run_id):
        raise PermanentError(f"{event.type} needs subject = the run id (a DNS-1123 label), got {run_id!r}")
    return run_id


def authorize(event: ev.Event, run_id: str, *, key: bytes, store: ObjectStore, now: datetime) -> None:
    """Raise ``ForbiddenError`` (403) unless the event carries ``run_id``'s unexpired token;
    the rejection is counted (``rejections``) and nothing else changes."""
    token = event.extensions.get(c.TOKEN_EXTENSION)
    if tokens.verify_token(key, run_id, token, now=now):
        return
    reason = "missing callback token" if not token else "callback token is not the run's or has expired"
    rejections.count(event, run_id, reason=reason, store=store, now=now)
    raise ForbiddenError(f"{event.type} for run {run_id}: {reason}")


def rejected_key(run_id: str) -> str:
    return f"runs/{run_id}/rejected.json"


class Rejections:
    """Callbacks refused for their token, counted: a process-wide total, and per existing run
    one object ``runs/{runId}/rejected.json`` (``count``, the last one's reason, type, source,
    time) rewritten at most once per ``interval`` per run. Forged input costs a bounded number
    of objects and writes however much of it arrives, and never leaves its token anywhere."""

    def __init__(self, *, interval: float = FLUSH_INTERVAL_S, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.total = 0
        self._mono = monotonic
        self._pending: dict[tuple[str, str], int] = {}
        self._written: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def count(self, event: ev.Event, run_id: str, *, reason: str, store: ObjectStore, now: datetime) -> None:
        with self._lock:
            self.total += 1
            if len(self._written) > _FORGET_AFTER_RUNS:
                self._written.clear()
            where = (store.url, run_id)
            self._pending[where] = self._pending.get(where, 0) + 1
            if self._mono() - self._written.get(where, float("-inf")) < self.interval:
                return  # counted; the next write after the interval adds it
            self._written[where] = self._mono()
            pending = self._pending.pop(where)
        last = {"reason": reason, "type": event.type, "source": event.source[:200], "at": runs.rfc3339(now)}
        try:
            _add_rejections(store, run_id, pending, last=last)
        except NotFoundError:
            log.warning("rejected %s for unknown run %s: %s", event.type, run_id, reason)
            return
        except JobplaneError as e:
            log.warning("could not count %d rejected callback(s) for run %s: %s", pending, run_id, e)
            return
        log.warning("rejected %s for run %s: %s (%d since the last count)", event.type, run_id, reason, pending)


def _add_rejections(store: ObjectStore, run_id: str, count: int, *, last: Mapping[str, str]) -> None:
    """Add ``count`` to the run's rejection tally (compare-and-swap; only for a run that exists)."""
    store.read(c.run_key(run_id))  # NotFoundError: forged callbacks for no run write nothing
    key = rejected_key(run_id)
    for _ in range(_REJECT_CAS_ATTEMPTS):
        try:
            blob = store.read(key)
            tally, generation = json.loads(blob.data), blob.generation
        except NotFoundError:
            tally, generation = {"count": 0}, 0
        tally = {**tally, "count": int(tally.get("count", 0)) + count, "last": dict(last)}
        try:
            store.write(key, _dump(tally), if_generation_match=generation)
            return
        except PreconditionFailedError:
            continue
    raise UnavailableError(f"run {run_id}: too many concurrent rejection counts")


rejections = Rejections()
"""The process's tally of refused callbacks."""


def validate_callback(event: ev.Event) -> Mapping[str, Any]:
    """The callback's data, checked against its type's schema (``RunProgressData``…);
    ``ValidationError`` listing every problem."""
    data = event.data if event.data is not None else {}
    if not isinstance(data, Mapping):
        raise ValidationError([Problem("data", f"must be a JSON object, got {type(data).__name__}")], what="callback")
    problems = schemas.problems(data, schemas.EVENT_DATA[event.type], "data")
    if problems:
        raise ValidationError(problems, what=f"{event.type} data")
    return data


# --- the append-only log -------------------------------------------------------------------


def log_key(run_id: str, event: ev.Event, data: Mapping[str, Any]) -> str:
    """``runs/{runId}/events/{seq:016d}-{eventId}`` (terminal callbacks: ``final-{eventId}``)."""
    stem = f"{int(data['seq']):0{SEQ_DIGITS}d}-" if event.type == ev.RUN_PROGRESS else FINAL_PREFIX
    return f"{c.run_events_prefix(run_id)}{stem}{_safe_event_id(event)}"


def append_log(store: ObjectStore, run_id: str, event: ev.Event, data: Mapping[str, Any], *, now: datetime) -> bool:
    """Write the callback's log entry create-only; ``False`` when it is already there."""
    entry = {"type": event.type, "source": event.source, "id": event.id, "time": event.time,
             "receivedAt": runs.rfc3339(now), "data": dict(data)}
    try:
        store.write(log_key(run_id, event, data), _dump(entry), if_generation_match=0)
        return True
    except PreconditionFailedError:
        return False


def _safe_event_id(event: ev.Event) -> str:
    digest = hashlib.sha256(f"{event.source}\n{event.id}".encode()).hexdigest()[:10]
    return f"{_UNSAFE.sub('_', event.id)[:40]}-{digest}"


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


# --- merging -------------------------------------------------------------------------------


def merge(run: runs.Run, updates: Iterable[Update]) -> runs.Run | None:
    """Apply updates in causal order (progress by ``seq``, then terminal ones); ``None`` when
    nothing changes. Pure: the order they arrived in does not matter."""
    ordered = sorted(updates, key=lambda u: (u.type in TERMINAL_TYPES, u.seq, u.received))
    current, changed = run, False
    for update in ordered:
        new = runs.apply_event(current, type=update.type, data=update.data, now=update.received)
        if new is not None and new != current:
            current, changed = new, True
    return current if changed else None


def _catch_up(store: ObjectStore, run: Mapping[str, Any], *, known: set[int]) -> list[Update]:
    """Progress in the log past the record's ``seq`` that this process never saw (another
    replica's, or one lost in a crash before its flush)."""
    prefix = c.run_events_prefix(str(run["id"]))
    keys = [k for k in store.list(prefix, start_after=f"{prefix}{int(run.get('seq', 0)):0{SEQ_DIGITS}d}~")
            if k[len(prefix):][:1].isdigit() and int(k[len(prefix):].split("-", 1)[0]) not in known]
    found: list[Update] = []
    for key in keys[-CATCH_UP_LIMIT:]:
        try:
            entry = json.loads(store.read(key).data)
        except (NotFoundError, ValueError):
            continue
        received = runs.parse_rfc3339(str(entry["receivedAt"]))
        found.append(Update(type=ev.RUN_PROGRESS, data=entry["data"], received=received))
    return found


# --- the coalescer -------------------------------------------------------------------------


class Coalescer:
    """Batches pending progress per run and writes each run's record at most once per
    ``interval`` (per process), in background threads; ``finish`` merges a terminal callback
    synchronously. One per store per process: ``coalescer_for``."""

    def __init__(self, store: ObjectStore, *, interval: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.interval = FLUSH_INTERVAL_S if interval is None else interval
        self._mono = monotonic
        self._pending: dict[str, list[Update]] = {}
        self._due: list[tuple[float, str]] = []
        self._last: dict[str, float] = {}
        self._busy: set[str] = set()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, run_id: str, update: Update) -> None:
        """Queue a progress update; it reaches the record within about ``interval``."""
        with self._cond:
            if self._closed:
                raise RuntimeError("coalescer is closed")
            if len(self._last) > _FORGET_AFTER_RUNS:
                self._forget_idle()
            batch = self._pending.setdefault(run_id, [])
            batch.append(update)
            if len(batch) == 1:
                due = max(self._mono(), self._last.get(run_id, float("-inf")) + self.interval)
                heapq.heappush(self._due, (due, run_id))
                self._start_threads()
                self._cond.notify()

    def finish(self, run_id: str, update: Update) -> runs.Run:
        """Merge a terminal update with everything pending for the run and write it now."""
        with self._cond:
            while run_id in self._busy:
                self._cond.wait()
            batch = self._pending.pop(run_id, [])
            self._last[run_id] = self._mono()
            self._busy.add(run_id)
        try:
            known = {u.seq for u in batch}
            try:
                stored = runs.get_run(self.store, run_id)
            except NotFoundError:  # the token says it was launched: its record is on its way
                raise UnavailableError(f"run {run_id} has no record yet; retry") from None
            extra = _catch_up(self.store, stored, known=known)
            return runs.update_run(self.store, run_id, lambda r: merge(r, [*batch, *extra, update]))
        except BaseException:
            self._requeue(run_id, batch)
            raise
        finally:
            self._release(run_id)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is pending or being written; ``False`` on timeout."""
        deadline = self._mono() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = deadline - self._mono()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write everything still pending now (ignoring the interval), then stop."""
        with self._cond:
            self._closed = True
            self._due = [(float("-inf"), run_id) for run_id in self._pending]
            heapq.heapify(self._due)
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def _forget_idle(self) -> None:
        """Drop the last-write times that no longer hold anything back (bounded memory)."""
        horizon = self._mono() - self.interval
        self._last = {r: t for r, t in self._last.items() if t > horizon or r in self._pending}

    def _start_threads(self) -> None:
        if not self._threads:
            for n in range(_FLUSH_WORKERS):
                thread = threading.Thread(target=self._work, name=f"jobplane-coalescer-{n}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        while True:
            with self._cond:
                run_id = self._next_due()
                if run_id is None:
                    return
                batch = self._pending.pop(run_id, [])
                if not batch:
                    continue  # a stale entry: finish() took the batch
                self._last[run_id] = self._mono()
                self._busy.add(run_id)
            try:
                self._flush(run_id, batch)
            finally:
                self._release(run_id)

    def _next_due(self) -> str | None:
        """The next run whose flush is due (waiting for it); ``None`` once closed and idle.
        A run still being written, or written by ``finish`` since it was queued, goes back
        into the queue at the time it may be written again, so it holds no other run up."""
        while True:
            now = self._mono()
            if self._due and self._due[0][0] <= now:
                run_id = heapq.heappop(self._due)[1]
                allowed = self._last.get(run_id, float("-inf")) + self.interval
                if run_id not in self._busy and (self._closed or allowed <= now):
                    return run_id
                retry = now + _BUSY_RETRY_S if self._closed else max(allowed, now + _BUSY_RETRY_S)
                heapq.heappush(self._due, (retry, run_id))
                continue
            if self._closed and not self._pending:
                return None
            self._cond.wait(max(self._due[0][0] - now, _BUSY_RETRY_S) if self._due else None)

    def _flush(self, run_id: str, batch: list[Update]) -> None:
        try:
            runs.update_run(self.store, run_id, lambda r: merge(r, batch))
        except NotFoundError:
            if batch and datetime.now(UTC) - max(u.received for u in batch) < RECORD_WAIT:
                self._requeue(run_id, batch, delay=_RETRY_BACKOFF_S)  # its record is on its way
            else:
                log.warning("dropped %d progress update(s) for unknown run %s", len(batch), run_id)
        except JobplaneError as e:
            log.warning("could not write run %s (will retry): %s", run_id, e)
            self._requeue(run_id, batch, delay=_RETRY_BACKOFF_S)
        except Exception:
            log.exception("unexpected error writing run %s; %d update(s) kept in its log", run_id, len(batch))

    def _requeue(self, run_id: str, batch: list[Update], *, delay: float = 0.0) -> None:
        if not batch:
            return
        with self._cond:
            if self._closed and delay:
                log.warning("gave up on %d update(s) for run %s at shutdown; they stay in its log", len(batch), run_id)
                return
            pending = self._pending.setdefault(run_id, [])
            if not pending:
                heapq.heappush(self._due, (self._mono() + max(delay, self.interval), run_id))
            pending[:0] = batch
            self._cond.notify()

    def _release(self, run_id: str) -> None:
        with self._cond:
            self._busy.discard(run_id)
            self._cond.notify_all()


_coalescers: dict[int, Coalescer] = {}
_coalescers_lock = threading.Lock()


def coalescer_for(store: ObjectStore) -> Coalescer:
    """The process's coalescer for ``store`` (created on first use, flushed at exit)."""
    with _coalescers_lock:
        found = _coalescers.get(id(store))
        if found is None or found.store is not store or found.closed:
            found = _coalescers[id(store)] = Coalescer(store)
        return found


def close_coalescer(store: ObjectStore, *, timeout: float = 10.0) -> None:
    """Write what is pending for ``store`` now and stop its coalescer (a plane shutting down)."""
    with _coalescers_lock:
        found = _coalescers.pop(id(store), None)
    if found is not None and found.store is store:
        found.close(timeout=timeout)


@atexit.register
def _close_all() -> None:
    with _coalescers_lock:
        pending = list(_coalescers.values())
    for coalescer in pending:
        coalescer.close(timeout=5.0)


# --- one callback, end to end --------------------------------------------------------------


def ingest(event: ev.Event, run_id: str, *, store: ObjectStore, now: datetime) -> runs.Run | None:
    """Log an authorized callback and merge it: progress through the coalescer (returns
    ``None``), a terminal callback synchronously (returns the final record)."""
    data = validate_callback(event)
    fresh = append_log(store, run_id, event, data, now=now)
    update = Update(type=event.type, data=data, received=now)
    if event.type in TERMINAL_TYPES:
        return coalescer_for(store).finish(run_id, update)  # duplicates too: merging is idempotent
    if fresh:
        coalescer_for(store).submit(run_id, update)
    return None
