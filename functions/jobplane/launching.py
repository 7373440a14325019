"""Concurrency and the launch: a planned run takes its (spec, bot) slot (``Forbid``/``Replace``,
``jobplane.slots``) or ends ``skipped``/``superseded``, then its Job is created before its record
is written, so the trigger-to-Job path holds no other durable write. The answer is the
``dev.jobplane.run.launched`` reply, which the broker routes to status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from . import events as ev
from . import cache, concurrency, manifests, metrics, runs, slots, workers
from .errors import JobplaneError, NotFoundError, PreconditionFailedError, UnavailableError
from .launcher.base import JobStatus
from .runtime import Runtime

log = logging.getLogger(__name__)

SOURCE: Final = "/jobplane/launch"
SLOT_CAS_ATTEMPTS: Final = 10
SUMMARY_KEYS: Final = (
    "id", "specId", "botId", "type", "state", "reason", "trigger", "requestedBy", "createdAt", "job", "params",
)


@dataclass(frozen=True)
class Claimed:
    """The run holds its (spec, bot) slot; ``replaces``: the active runs it supersedes;
    ``created_at``: when the slot says the run was created (a redelivery keeps the first time)."""

    replaces: tuple[str, ...] = ()
    created_at: str | None = None


@dataclass(frozen=True)
class Ended:
    """The run does not launch: it ends in ``state`` (skipped, superseded) for ``reason``."""

    state: str
    reason: str


def start(spec: Mapping[str, Any], run: runs.Run, *, rt: Runtime, stored: runs.Stored | None = None) -> ev.Event | None:
    """Decide (``Forbid``/``Replace``: take the slot; ``Allow``: nothing to decide), then launch.
    ``stored``: the run's record when it has one already (a ``requested`` run's redelivery)."""
    policy = _policy(spec)
    run = _with_cache_key(spec, run, rt=rt)
    outcome = Claimed() if policy == "Allow" else _claim(policy, run, rt=rt)
    if isinstance(outcome, Ended):
        _store_ended(run, outcome, stored=stored, rt=rt)
        return None
    if stored is None and outcome.created_at:
        run = {**run, "createdAt": outcome.created_at}
    hit = None if run.get(cache.FORCE_FIELD) else cache.lookup(rt.store, str(run["type"]), str(run.get("cacheKey") or ""))
    if hit is not None:
        _reuse(run, hit, stored=stored, replaces=outcome.replaces, exclusive=policy != "Allow", rt=rt)
        return None
    return _launch(spec, run, stored=stored, replaces=outcome.replaces, exclusive=policy != "Allow", rt=rt)


def _with_cache_key(spec: Mapping[str, Any], run: runs.Run, *, rt: Runtime) -> runs.Run:
    """The run with the key of its inputs (``jobplane.cache``), when its type is cached."""
    key = cache.key_for(spec, rt.store, rt.settings)
    return {**run, "cacheKey": key} if key else run


def _reuse(run: runs.Run, hit: cache.Hit, *, stored: runs.Stored | None, replaces: Sequence[str], exclusive: bool,
           rt: Runtime) -> None:
    """A cache hit: the run ends ``skipped``/``CacheHit`` naming the run it reuses, with no
    Job; it replaces the slot's older runs as a launch would (their models are of older
    inputs), and the bot's model (index) pointer moves to the reused one if it was promoted."""
    final = cache.reused(run, hit, now=rt.clock())
    writes = [*runs.start_index(rt.store, runs.listing_keys(final)),
              *(workers.submit(_supersede, old, by=run, rt=rt) for old in replaces),
              *([workers.submit(rt.store.sync, slots.slot_key(run))] if exclusive else [])]
    record = _alongside(lambda: _store(final, stored, rt=rt), *writes)
    workers.wait_for(writes)
    cache.point_bot_at(rt.store, record, now=rt.clock())


def _claim(policy: str, run: runs.Run, *, rt: Runtime) -> Claimed | Ended:
    """Take the run's slot by compare-and-swap, unless a rival that stays wins: under
    ``Forbid`` any active one, under either policy a newer one (a late trigger never displaces
    a newer run). Of two launches racing, one takes the slot and the other reads it."""
    for _ in range(SLOT_CAS_ATTEMPTS):
        slot = slots.read(rt.store, run)
        if slot.holder is not None and slot.holder.run == run["id"]:
            return Claimed(slot.holder.replaces, slot.holder.created_at)  # taken before its delivery died
        rivals = _rivals(slot, run, rt=rt)
        newer = sorted(str(r["id"]) for r in rivals if not _before(r, run))
        if newer:
            state = "superseded" if policy == "Replace" else "skipped"
            return Ended(state, f"Concurrency{policy}: run {newer[0]} is newer and already launched")
        decision = concurrency.decide(policy, active=rivals, exclude=run["id"])
        if decision.action == "skip":
            return Ended("skipped", str(decision.reason))
        try:
            slots.take(rt.store, slot, run, replaces=decision.supersede, durable=False)  # synced by _launch
        except PreconditionFailedError:
            continue  # another launch took it meanwhile: look again
        return Claimed(tuple(decision.supersede))
    raise UnavailableError(f"run {run['id']}: too many launches racing for {slots.slot_key(run)}; retry")


def _rivals(slot: slots.Slot, run: Mapping[str, Any], *, rt: Runtime) -> list[runs.Run]:
    """The active runs the slot's holder stands for: its record unless terminal; a holder with
    no record yet is launching (within ``slots.IN_FLIGHT_GRACE``). No slot yet: the spec's
    active markers (a store from before slots)."""
    if slot.holder is None:
        return [r for r in _active_runs(rt, run=run) if concurrency.same_key(run, r)]
    try:
        holder = runs.get_run(rt.store, slot.holder.run)
    except NotFoundError:
        if not slots.in_flight(slot.holder, now=rt.clock()):
            return []
        return [{"id": slot.holder.run, "createdAt": slot.holder.created_at, "state": "launched"}]
    return [] if runs.is_terminal(holder) else [holder]


def _before(other: Mapping[str, Any], run: Mapping[str, Any]) -> bool:
    return (str(other.get("createdAt")), str(other["id"])) < (str(run.get("createdAt")), str(run["id"]))


def _active_runs(rt: Runtime, *, run: Mapping[str, Any]) -> list[runs.Run]:
    """The active runs of ``run``'s spec and bot but ``run`` itself (one bot's markers: a
    fan-out spec's N bots never read each other's runs, which made a nightly sweep N²)."""
    found: list[runs.Run] = []
    for run_id in runs.list_active(rt.store, spec_id=str(run["specId"]), bot_id=str(run.get("botId") or "")):
        if run_id == run["id"]:
            continue
        try:
            found.append(runs.get_run(rt.store, run_id))
        except NotFoundError:
            continue
    return [r for r in found if not runs.is_terminal(r)]


def _store_ended(run: runs.Run, ended: Ended, *, stored: runs.Stored | None, rt: Runtime) -> None:
    """Record a run that does not launch, with its listing entries (it is in the history)."""
    final = runs.transition(run, ended.state, reason=ended.reason, now=rt.clock())
    listings = runs.start_index(rt.store, runs.listing_keys(final))
    _alongside(lambda: _store(final, stored, rt=rt), *listings)
    workers.wait_for(listings)


def _launch(spec: Mapping[str, Any], run: runs.Run, *, stored: runs.Stored | None, replaces: Sequence[str],
            exclusive: bool, rt: Runtime) -> ev.Event:
    """Create the Job first, in this thread: nothing else has to land before it (the run id,
    and so the Job's name, derive from the trigger; a redelivery's create answers 409). Then,
    at the same time: the record, already ``launched`` and naming the Job; its index entries;
    the runs it replaces superseded and their Jobs deleted; the slot made durable. The answer
    waits for all of them: a failure answers 5xx and the redelivery completes what is missing.
    An exclusive run then reads its slot again: a newer run that took it meanwhile replaced it."""
    job = manifests.build_job(spec, run, settings=rt.settings)
    try:
        rt.launcher.launch(job)
    except JobplaneError as e:
        _store_unlaunched(run, e, stored=stored, rt=rt)
        raise
    metrics.launched(run, now=rt.clock())
    launched = _mark_launched(run, _ref(job), rt=rt)
    writes = [*runs.start_index(rt.store, runs.index_keys(launched)),
              *(workers.submit(_supersede, old, by=run, rt=rt) for old in replaces),
              *([workers.submit(rt.store.sync, slots.slot_key(run))] if exclusive else [])]
    record = _alongside(lambda: _store(launched, stored, rt=rt), *writes)
    workers.wait_for(writes)
    if exclusive:
        record = _yield_if_replaced(record, rt=rt)
    if record["state"] in ("superseded", "cancelled"):
        rt.launcher.cancel(_ref(job)["name"])  # a newer run replaced this one while it launched
    return reply(record)


def _store(run: runs.Run, stored: runs.Stored | None, *, rt: Runtime) -> runs.Run:
    """Write the run's record: create-only when it has none, else a swap against ``stored``.
    A record that appeared meanwhile (the same trigger delivered twice at once) is updated."""
    if stored is None:
        stored = runs.create_record(rt.store, run)
        if stored.created:
            return run
    return runs.update_run(rt.store, run["id"], lambda r: _merged(r, run), known=stored)


def _merged(current: runs.Run, new: Mapping[str, Any]) -> runs.Run:
    """``current`` moved to ``new``'s state, job and message; never backwards, and a
    terminal record stays as it is."""
    state = str(new["state"])
    moved = current if current["state"] == state else runs.transition(
        current, state, reason=new.get("reason"), now=runs.parse_rfc3339(str(new["updatedAt"])))
    if runs.is_terminal(current) or moved["state"] != state:
        return current
    reused = {k: new[k] for k in cache.RECORD_FIELDS if k in new} if new.get("reusedRun") else {}
    return {**moved, "job": new.get("job"), "message": new.get("message"), **reused}


def _store_unlaunched(run: runs.Run, error: JobplaneError, *, stored: runs.Stored | None, rt: Runtime) -> None:
    """The create failed. For good (e.g. 422): the run fails with the API server's message
    (the answer is 4xx). Transiently: the run stays ``requested`` with the error, so it is
    listed meanwhile, and the redelivery launches it (the answer is 5xx)."""
    if error.retryable:
        new = dict(run)
        new["message"] = f"the Job's create failed; the broker retries: {error.message}"
    else:
        new = runs.transition(run, "failed", reason="LaunchFailed", now=rt.clock())
        new["message"] = error.message
    new["job"] = None
    writes = runs.start_index(rt.store, runs.index_keys(new))
    _alongside(lambda: _store(new, stored, rt=rt), *writes)
    workers.wait_for(writes)


def _yield_if_replaced(record: runs.Run, *, rt: Runtime) -> runs.Run:
    """A newer run that took the slot while this one launched (it found no record to
    supersede yet) wins: this run is superseded."""
    slot = slots.read(rt.store, record)
    if slot.holder is None or slot.holder.run == record["id"] or runs.is_terminal(record):
        return record
    reason = f"ConcurrencyReplace: superseded by run {slot.holder.run}"
    return runs.update_run(rt.store, record["id"], lambda r: runs.transition(r, "superseded", reason=reason, now=rt.clock()))


def _supersede(run_id: str, *, by: Mapping[str, Any], rt: Runtime) -> None:
    """Mark ``run_id`` superseded and delete its Job (a run still launching has no record
    yet: its Job is deleted by name, and it yields when it reads the slot)."""
    reason = f"ConcurrencyReplace: superseded by run {by['id']}"
    try:
        old = runs.update_run(rt.store, run_id, lambda r: runs.transition(r, "superseded", reason=reason, now=rt.clock()))
    except NotFoundError:
        old = {}
    rt.launcher.cancel(str((old.get("job") or {}).get("name") or run_id))


def _policy(spec: Mapping[str, Any]) -> str:
    return str(spec.get("concurrency", "Allow"))


R = TypeVar("R")


def _alongside(write: Callable[[], R], *started: Future[Any]) -> R:
    """``write()`` while the ``started`` calls run. If it fails, its error is the answer (5xx:
    the redelivery redoes all of it), raised once nothing started is left running."""
    try:
        return write()
    except BaseException:
        futures.wait(started)
        raise


def create_job(spec: Mapping[str, Any], run: runs.Run, *, rt: Runtime) -> JobStatus:
    """Create the run's Job again (a redelivery; 409 = it exists). Refused for good: the run
    fails with the API server's message and the error is raised (4xx)."""
    job = manifests.build_job(spec, run, settings=rt.settings)
    try:
        return rt.launcher.launch(job)
    except JobplaneError as e:
        if not e.retryable:
            _fail(run, reason="LaunchFailed", message=e.message, rt=rt)
        raise


def _ref(job: Mapping[str, Any]) -> dict[str, str]:
    meta = job["metadata"]
    return {"name": str(meta["name"]), "namespace": str(meta["namespace"])}


def _mark_launched(run: runs.Run, job: Mapping[str, str], *, rt: Runtime) -> runs.Run:
    run = dict(run)
    run["job"] = run.get("job") or dict(job)
    run["message"] = None
    return runs.transition(run, "launched", now=rt.clock()) if run["state"] == "requested" else run


def _fail(run: Mapping[str, Any], *, reason: str, message: str, rt: Runtime) -> None:
    def mutate(r: runs.Run) -> runs.Run:
        new = runs.transition(r, "failed", reason=reason, now=rt.clock())
        new["message"] = message
        new.pop("job", None)  # refused: there is no Job
        return new

    runs.update_run(rt.store, run["id"], mutate)


def summary(run: Mapping[str, Any]) -> dict[str, Any]:
    """What the ``run.launched`` reply carries: the record's identity and job, no results."""
    return {key: run.get(key) for key in SUMMARY_KEYS if key in run}


def reply(run: Mapping[str, Any]) -> ev.Event:
    return ev.new_event(
        ev.RUN_LAUNCHED,
        source=SOURCE,
        subject=str(run["id"]),
        data=summary(run),
        id=f"{run['id']}-launched",
    )
