"""The launch function: CloudEvents that ask for a run become a run record and a Job.

``dev.jobplane.bot.changed`` runs the bot's training spec ``train-{botId}`` (created from the
configured defaults the first time the bot is seen), ``dev.knative.sources.ping`` runs a stored
spec on its schedule, ``dev.jobplane.run.requested`` runs a stored spec with parameter overrides
or an inline spec. Everything is validated before anything is written; the run id derives from
the event's ``source`` + ``id``, so a redelivered event finds its run and never makes a second
Job. The Job is created before the run record is written (``Forbid``/``Replace`` first take the
(spec, bot) slot, ``jobplane.slots``), so the trigger-to-Job path holds no other durable write.
The reply is a ``dev.jobplane.run.launched`` CloudEvent, which the broker routes to status.

A stored fan-out spec (``params.bots: "all"``, such as ``retrain-all``) launches no Job itself:
it sends one ``run.requested`` per bot through the broker, with ids derived from the trigger's
(``{id}-{botId}``) so a redelivered ping never doubles a run. Training runs each bot's own
spec ``train-{botId}`` (its history stays in one place); a bot test runs the fan-out spec for
one bot (``params.botId``). The fan-out itself leaves one summary run record, ``succeeded``
with reason ``FannedOut`` and the count, so the run id the API answered resolves and the spec's
history shows when each sweep happened. A ``bot.changed`` event also points the bot's training
spec at the data it carries, so any later run of that spec (the weekly retrain, the API's
train button) trains on the newest data.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import flask

from .. import conventions as c
from .. import events as ev
from .. import baselines, checks, concurrency, datauris, manifests, runs, slots, workers, spec as specs
from ..errors import (
    JobplaneError,
    NotFoundError,
    PermanentError,
    PreconditionFailedError,
    Problem,
    UnavailableError,
    ValidationError,
)
from ..launcher.base import JobStatus
from ..runtime import Runtime
from .common import event_endpoint

log = logging.getLogger(__name__)

SOURCE: Final = "/jobplane/launch"
FANOUT_SOURCE: Final = "/jobplane/launch/fanout"
FANNED_OUT: Final = "FannedOut"
PAGE: Final = 500
"""Keys per store listing page while fanning out (only ids are held, a page at a time)."""
SPEC_CAS_ATTEMPTS: Final = 10
SLOT_CAS_ATTEMPTS: Final = 10
REQUESTED_BY_EXTENSION: Final = "requestedby"
"""Optional CloudEvent extension naming who asked for the run (else the event's source)."""
SUMMARY_KEYS: Final = (
    "id", "specId", "botId", "type", "state", "reason", "trigger", "requestedBy", "createdAt", "job", "params",
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class Plan:
    """What one event asks for, fully validated, before anything is written."""

    spec: dict[str, Any]
    """The effective spec (stored spec with this run's overrides applied)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Params that differ from the stored spec for this run (recorded on the run)."""
    writes: list[tuple[str, bytes]] = field(default_factory=list)
    """Create-only objects to store before the run (inline training data, a new spec)."""
    spec_data: dict[str, Any] | None = None
    """Training data the stored spec is to name from now on (a bot.changed event's)."""


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    return event_endpoint(request, lambda event: on_event(event, rt=rt))


def on_event(event: ev.Event, *, rt: Runtime) -> ev.Event | None:
    """Plan, store, decide concurrency, launch; the reply is ``run.launched`` (or nothing)."""
    plan = plan_for(event, rt=rt)
    datauris.check_spec(plan.spec, store_url=rt.store.url, prefixes=rt.settings.data_prefixes)
    for key, data in plan.writes:
        _create_only(rt, key, data)
    if plan.spec_data is not None:
        _point_spec_at(rt, str(plan.spec["id"]), plan.spec_data)
    if specs.is_fan_out(plan.spec):
        _fan_out(event, plan, rt=rt)
        return None
    run = runs.new_run(spec=plan.spec, trigger=_trigger(event), requested_by=_requested_by(event), now=rt.clock())
    if plan.overrides:
        run["params"] = plan.overrides
    plan.spec = baselines.with_baseline(plan.spec, rt.store, run_id=run["id"])  # a bot test's previous success
    try:  # a redelivery is found by a read before anything is written
        return _redelivered(plan.spec, runs.read_record(rt.store, run["id"]), rt=rt)
    except NotFoundError:
        return _start(plan.spec, run, rt=rt)


def _redelivered(spec: Mapping[str, Any], stored: runs.Stored, *, rt: Runtime) -> ev.Event | None:
    """The trigger's run exists: finish what the first delivery left undone, never a second Job.
    ``requested``: its create failed for a while (or it died deciding): launch it now.
    ``launched``: the answer may have been 5xx because a write failed after the create, so the
    create is issued again (409: it exists). Later states: the Job exists or existed; only the
    index entries are healed."""
    run = stored.run
    if run["state"] == "requested":
        return _start(spec, run, stored=stored, rt=rt)
    runs.write_index(rt.store, runs.index_keys(run))  # heal what a crash between the writes left out
    if run["state"] == "launched":
        _create_job(spec, run, rt=rt)
    log.info("run %s exists (state %s): duplicate delivery", run["id"], run["state"])
    return _reply(run) if run.get("job") else None


# --- planning: event → validated spec ------------------------------------------------------


def plan_for(event: ev.Event, *, rt: Runtime) -> Plan:
    data = _data_object(event)
    if event.type == ev.BOT_CHANGED:
        return _plan_bot_changed(data, rt=rt)
    if event.type == ev.PING:
        return _plan_stored(_required_spec_id(data), {}, rt=rt)
    if event.type == ev.RUN_REQUESTED:
        return _plan_requested(data, rt=rt)
    raise PermanentError(
        f"launch does not take events of type {event.type!r}; expected one of "
        f"{ev.BOT_CHANGED}, {ev.PING}, {ev.RUN_REQUESTED}"
    )


def _data_object(event: ev.Event) -> dict[str, Any]:
    data = event.data
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PermanentError(f"data: expected a JSON object: {e}") from e
    if not isinstance(data, dict):
        raise ValidationError([Problem("data", f"expected a JSON object, got {type(data).__name__}")], what="event")
    return data


def _plan_bot_changed(data: Mapping[str, Any], *, rt: Runtime) -> Plan:
    problems = _bot_problems(data)
    if problems:
        raise ValidationError(problems, what="dev.jobplane.bot.changed event")
    bot_id = str(data["botId"])
    writes: list[tuple[str, bytes]] = []
    training = data["trainingData"]
    if "uri" in training:
        uri = str(training["uri"])
    else:
        key, body = _inline_data_object(bot_id, data.get("revision"), training)
        writes.append((key, body))
        uri = rt.store.uri(key)
    stored = _read_spec(rt, f"train-{bot_id}")
    if stored is None:
        base = specs.training_spec_for_bot(bot_id, defaults=rt.settings.default_training)
        spec = _validated(_with_params(base, {"trainingData": {"uri": uri}}))
        writes.append((c.spec_key(spec["id"]), _dump(spec)))
        return Plan(spec=spec, writes=writes)
    overrides = {"trainingData": {"uri": uri}}
    spec = _validated(_with_params(stored, overrides))
    return Plan(spec=spec, overrides=overrides, writes=writes, spec_data=dict(overrides["trainingData"]))


def _bot_problems(data: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    checks.label(data.get("botId"), "data.botId", problems, max_len=specs.MAX_BOT_ID)  # it names train-{botId}
    revision = data.get("revision")
    if revision is not None and not isinstance(revision, str | int):
        problems.append(Problem("data.revision", f"expected a string, got {type(revision).__name__}"))
    training = data.get("trainingData")
    if not isinstance(training, Mapping):
        problems.append(Problem("data.trainingData", "expected an object with uri or examples"))
    else:
        problems.extend(specs.validate_training_data(training, field="data.trainingData"))
    return problems


def _inline_data_object(bot_id: str, revision: object, training: Mapping[str, Any]) -> tuple[str, bytes]:
    """Inline examples are stored under ``bots/{botId}/data/``; the Job only ever gets a URI."""
    body = _dump({"examples": training["examples"]})
    name = str(revision) if revision is not None and _SAFE_NAME.match(str(revision)) else None
    name = name or "sha256-" + hashlib.sha256(body).hexdigest()[:32]
    return f"{c.bot_data_prefix(bot_id)}{name}.json", body


def _plan_requested(data: Mapping[str, Any], *, rt: Runtime) -> Plan:
    if "spec" in data:
        if not isinstance(data["spec"], Mapping):
            raise ValidationError([Problem("data.spec", "expected an object")], what="run request")
        plan = Plan(spec=_validated(dict(data["spec"])))
        if specs.is_fan_out(plan.spec):
            raise PermanentError("data.spec: a fan-out spec (params.bots) runs only stored: create it, then run it by specId")
        return _externalized(plan, rt=rt)
    params = data.get("params", {})
    if not isinstance(params, Mapping):
        raise ValidationError([Problem("data.params", "expected an object")], what="run request")
    return _externalized(_plan_stored(_required_spec_id(data), dict(params), rt=rt), rt=rt)


def _plan_stored(spec_id: str, overrides: dict[str, Any], *, rt: Runtime) -> Plan:
    spec = _read_spec(rt, spec_id)
    if spec is None:
        raise PermanentError(f"data.specId: no job spec {spec_id!r}")
    spec["params"] = {**(spec.get("params") or {}), **overrides}  # just parsed: no copy needed
    if "botId" in overrides:  # one bot's run of a fan-out spec
        spec["params"] = specs.for_one_bot(spec["params"], str(overrides["botId"]))
    return Plan(spec=_validated(spec), overrides=overrides)


def _externalized(plan: Plan, *, rt: Runtime) -> Plan:
    """Inline training examples in a run request are stored like a bot.changed event's: the
    Job gets a URI, never the data (an env var has a size limit, and Jobs are listable)."""
    params = plan.spec.get("params") or {}
    training = params.get("trainingData")
    if not isinstance(training, Mapping) or "examples" not in training or not params.get("botId"):
        return plan
    key, body = _inline_data_object(str(params["botId"]), None, training)
    data = {"uri": rt.store.uri(key)}
    plan.spec = _with_params(plan.spec, {"trainingData": data})
    if "trainingData" in plan.overrides:
        plan.overrides = {**plan.overrides, "trainingData": data}
    plan.writes.append((key, body))
    return plan


def _required_spec_id(data: Mapping[str, Any]) -> str:
    spec_id = data.get("specId")
    if not isinstance(spec_id, str) or not spec_id:
        raise ValidationError([Problem("data.specId", f"expected a spec id, got {spec_id!r}")], what="event")
    return spec_id


def _with_params(spec: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(spec))
    merged["params"] = {**(merged.get("params") or {}), **overrides}
    return merged


def _validated(spec: Mapping[str, Any]) -> dict[str, Any]:
    return dict(specs.validate_spec(spec))


def _read_spec(rt: Runtime, spec_id: str) -> dict[str, Any] | None:
    try:
        return json.loads(rt.store.read(c.spec_key(spec_id)).data)  # type: ignore[no-any-return]
    except NotFoundError:
        return None


def _point_spec_at(rt: Runtime, spec_id: str, data: Mapping[str, Any]) -> None:
    """Compare-and-swap the stored spec's ``params.trainingData`` to ``data`` (if it differs)."""
    key = c.spec_key(spec_id)
    for _ in range(SPEC_CAS_ATTEMPTS):
        blob = rt.store.read(key)
        stored = json.loads(blob.data)
        if (stored.get("params") or {}).get("trainingData") == data:
            return
        try:
            rt.store.write(key, _dump(_with_params(stored, {"trainingData": dict(data)})), if_generation_match=blob.generation)
            return
        except PreconditionFailedError:
            continue  # edited meanwhile (the API, another bot.changed): apply to the new version
    raise UnavailableError(f"spec {spec_id}: too many concurrent updates; retry")


def _create_only(rt: Runtime, key: str, data: bytes) -> None:
    """Create ``key``; an object already there is fine unless its content differs (data)."""
    try:
        rt.store.write(key, data, if_generation_match=0)
    except PreconditionFailedError:
        if key.startswith("bots/") and rt.store.read(key).data != data:
            raise PermanentError(
                f"data.revision: training data {key} exists with different content; use a new revision"
            ) from None


# --- fan-out: one run.requested per bot -----------------------------------------------------


def _fan_out(event: ev.Event, plan: Plan, *, rt: Runtime) -> None:
    """Send one ``run.requested`` per bot; record the sweep as a summary run. A redelivery
    sends them all again (same ids: the per-bot runs exist already), in case a send failed."""
    run = runs.new_run(spec=plan.spec, trigger=_trigger(event), requested_by=_requested_by(event), now=rt.clock())
    if plan.overrides:
        run["params"] = plan.overrides
    run, _created = runs.create_run(rt.store, run)
    count = 0
    for bot_id in _bots(plan.spec, rt=rt):
        rt.send(_bot_request(event, plan, bot_id))
        count += 1
    runs.update_run(rt.store, run["id"], lambda r: _fanned_out(r, count, rt=rt))
    log.info("run %s: requested %d runs of %s, one per bot", run["id"], count, plan.spec["id"])


def _bots(spec: Mapping[str, Any], *, rt: Runtime) -> Iterator[str]:
    """Training: every bot with a training spec ``specs/train-{botId}.json``. Bot tests: every
    bot with a promoted model ``bots/{botId}/model.json``."""
    if spec["type"] == "training":
        prefix = "specs/" + specs.TRAINING_PREFIX
        for key in _keys(rt, prefix):
            bot = key[len(prefix):].removesuffix(".json")
            if c.spec_key(specs.TRAINING_PREFIX + bot) == key and checks.DNS_LABEL.match(bot):
                yield bot
        return
    for key in _keys(rt, "bots/"):
        bot = key[len("bots/"):].partition("/")[0]
        if c.bot_model_key(bot) == key and checks.DNS_LABEL.match(bot):
            yield bot


def _keys(rt: Runtime, prefix: str) -> Iterator[str]:
    """Keys under ``prefix``, listed a page at a time."""
    after = ""
    while True:
        page = list(rt.store.list(prefix, start_after=after, limit=PAGE))
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1]


def _bot_request(event: ev.Event, plan: Plan, bot_id: str) -> ev.Event:
    """One bot's ``run.requested``. Training runs the bot's own spec ``train-{botId}`` with
    the fan-out spec's other params (hyper-parameters) as overrides; a bot test runs this
    spec for the bot (its params apply there anyway), with this run's overrides."""
    if plan.spec["type"] == "training":
        params = {k: v for k, v in plan.spec["params"].items() if k != specs.FAN_OUT_FIELD}
        data: dict[str, Any] = {"specId": f"{specs.TRAINING_PREFIX}{bot_id}"}
    else:
        params = specs.for_one_bot(plan.overrides, bot_id)
        data = {"specId": plan.spec["id"]}
    if params:
        data["params"] = params
    return ev.new_event(
        ev.RUN_REQUESTED, source=FANOUT_SOURCE, id=f"{event.id}-{bot_id}", subject=data["specId"], data=data,
        extensions={REQUESTED_BY_EXTENSION: _requested_by(event)},
    )


def _fanned_out(run: runs.Run, count: int, *, rt: Runtime) -> runs.Run | None:
    if runs.is_terminal(run):
        return None  # a redelivery: the first sweep's record stands
    new = runs.transition(run, "succeeded", reason=FANNED_OUT, now=rt.clock())
    new["message"] = f"requested {count} run{'s' if count != 1 else ''}, one per bot"
    new["fanOut"] = {"runs": count, "source": FANOUT_SOURCE}
    return new


# --- concurrency and launch ---------------------------------------------------------------


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


def _start(spec: Mapping[str, Any], run: runs.Run, *, rt: Runtime, stored: runs.Stored | None = None) -> ev.Event | None:
    """Decide (``Forbid``/``Replace``: take the slot; ``Allow``: nothing to decide), then launch.
    ``stored``: the run's record when it has one already (a ``requested`` run's redelivery)."""
    policy = _policy(spec)
    outcome = Claimed() if policy == "Allow" else _claim(policy, run, rt=rt)
    if isinstance(outcome, Ended):
        _store_ended(run, outcome, stored=stored, rt=rt)
        return None
    if stored is None and outcome.created_at:
        run = {**run, "createdAt": outcome.created_at}
    return _launch(spec, run, stored=stored, replaces=outcome.replaces, exclusive=policy != "Allow", rt=rt)


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
        return [r for r in _active_runs(rt, spec_id=run["specId"], besides=run["id"]) if concurrency.same_key(run, r)]
    try:
        holder = runs.get_run(rt.store, slot.holder.run)
    except NotFoundError:
        if not slots.in_flight(slot.holder, now=rt.clock()):
            return []
        return [{"id": slot.holder.run, "createdAt": slot.holder.created_at, "state": "launched"}]
    return [] if runs.is_terminal(holder) else [holder]


def _before(other: Mapping[str, Any], run: Mapping[str, Any]) -> bool:
    return (str(other.get("createdAt")), str(other["id"])) < (str(run.get("createdAt")), str(run["id"]))


def _active_runs(rt: Runtime, *, spec_id: str, besides: str = "") -> list[runs.Run]:
    """The spec's active runs but ``besides`` (whose record is not read)."""
    found: list[runs.Run] = []
    for run_id in runs.list_active(rt.store, spec_id=spec_id):
        if run_id == besides:
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
    return _reply(record)


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
    return {**moved, "job": new.get("job"), "message": new.get("message")}


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


def _create_job(spec: Mapping[str, Any], run: runs.Run, *, rt: Runtime) -> JobStatus:
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


# --- events --------------------------------------------------------------------------------


def _trigger(event: ev.Event) -> dict[str, Any]:
    return {"type": event.type, "source": event.source, "id": event.id, "subject": event.subject}


def _requested_by(event: ev.Event) -> str:
    return str(event.extensions.get(REQUESTED_BY_EXTENSION) or event.source)


def summary(run: Mapping[str, Any]) -> dict[str, Any]:
    """What the ``run.launched`` reply carries: the record's identity and job, no results."""
    return {key: run.get(key) for key in SUMMARY_KEYS if key in run}


def _reply(run: Mapping[str, Any]) -> ev.Event:
    return ev.new_event(
        ev.RUN_LAUNCHED,
        source=SOURCE,
        subject=str(run["id"]),
        data=summary(run),
        id=f"{run['id']}-launched",
    )


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
