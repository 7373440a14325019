"""Event planning: what a launch-bound CloudEvent asks for, fully validated, before anything
is written.

``dev.jobplane.bot.changed`` runs the bot's training spec ``train-{botId}`` (made from the
configured defaults the first time the bot is seen; the plan then carries the new spec as a
create-only write), ``dev.knative.sources.ping`` runs a stored spec on its schedule,
``dev.jobplane.run.requested`` runs a stored spec with parameter overrides or an inline spec.
Inline training examples become a create-only object under ``bots/{botId}/data/`` and the
spec names its URI (a Job never carries the data). A ``bot.changed`` event also points the
bot's stored training spec at the data it carries (``point_spec_at``), so any later run of
that spec trains on the newest data.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from . import conventions as c
from . import events as ev
from . import schemas, spec as specs, tracing
from .jobtypes import kb_index
from .jobtypes.training import check_data_semantics
from .errors import NotFoundError, PermanentError, PreconditionFailedError, Problem, UnavailableError, ValidationError
from .runtime import Runtime

SPEC_CAS_ATTEMPTS: Final = 10
KB_SOURCE: Final = "/jobplane/launch/kb"
"""Source of the kb-index ``run.requested`` a ``bot.changed`` with ``knowledgeBase`` sends."""
FORCE_FIELD: Final = "force"
REQUESTED_BY_EXTENSION: Final = "requestedby"
"""Optional CloudEvent extension naming who asked for the run (else the event's source)."""
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
    points: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    """(spec id, param, value): other stored specs to point at this event's data (kb-{botId})."""
    follow_ups: list[ev.Event] = field(default_factory=list)
    """Events to send before this run starts (a bot.changed's kb-index run beside its training)."""
    force: bool = False
    """The request said ``force: true``: run even when a succeeded run had the same inputs."""


def plan_for(event: ev.Event, *, rt: Runtime) -> Plan:
    data = _data_object(event)
    force = _force(data)
    if event.type == ev.BOT_CHANGED:
        plan = _plan_bot_changed(data, event_id=event.id, trace=tracing.of_event(event.source, event.id, event.extensions),
                                 rt=rt)
    elif event.type == ev.PING:
        plan = _plan_stored(_required_spec_id(data), {}, rt=rt)
    elif event.type == ev.RUN_REQUESTED:
        plan = _plan_requested(data, rt=rt)
    else:
        raise PermanentError(
            f"launch does not take events of type {event.type!r}; expected one of "
            f"{ev.BOT_CHANGED}, {ev.PING}, {ev.RUN_REQUESTED}"
        )
    plan.force = force
    return plan


def _force(data: Mapping[str, Any]) -> bool:
    """``data.force``: a boolean when given (``true``: no result-cache reuse)."""
    force = data.get(FORCE_FIELD, False)
    if not isinstance(force, bool):
        raise ValidationError([Problem(f"data.{FORCE_FIELD}", f"expected a boolean, got {type(force).__name__}")],
                              what="event")
    return force


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


def _plan_bot_changed(data: Mapping[str, Any], *, event_id: str, trace: str, rt: Runtime) -> Plan:
    """The bot's training run; with ``knowledgeBase``, its kb-index run too (this event's run
    when the event carries no training data, else a ``run.requested`` sent beside it)."""
    problems = _bot_problems(data)
    if problems:
        raise ValidationError(problems, what="dev.jobplane.bot.changed event")
    bot_id = str(data["botId"])
    kb = _plan_kb(bot_id, data, rt=rt) if "knowledgeBase" in data else None
    if "trainingData" not in data:
        assert kb is not None
        return kb
    plan = _plan_training(bot_id, data, rt=rt)
    if kb is not None:
        plan.writes.extend(kb.writes)
        plan.points.extend(kb.points)
        plan.follow_ups.append(_kb_request(event_id, kb, trace=trace))
    return plan


def _plan_training(bot_id: str, data: Mapping[str, Any], *, rt: Runtime) -> Plan:
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
        writes.append((c.spec_key(spec["id"]), dump(spec)))
        return Plan(spec=spec, writes=writes)
    overrides = {"trainingData": {"uri": uri}}
    spec = _validated(_with_params(stored, overrides))
    return Plan(spec=spec, overrides=overrides, writes=writes, spec_data=dict(overrides["trainingData"]))


def _plan_kb(bot_id: str, data: Mapping[str, Any], *, rt: Runtime) -> Plan:
    """The bot's ``kb-{botId}`` run on the event's articles (inline ones are stored under
    ``bots/{botId}/data/`` first; the Job gets their URI)."""
    given = data["knowledgeBase"]
    writes: list[tuple[str, bytes]] = []
    if "uri" in given:
        uri = str(given["uri"])
    else:
        key, body = _inline_object(bot_id, data.get("revision"), {"articles": given["articles"]}, prefix="kb-")
        writes.append((key, body))
        uri = rt.store.uri(key)
    overrides = {"knowledgeBase": {"uri": uri}}
    spec_id = f"{specs.KB_PREFIX}{bot_id}"
    stored = _read_spec(rt, spec_id)
    if stored is None:
        spec = _validated(_with_params(specs.kb_spec_for_bot(bot_id, defaults={}), overrides))
        writes.append((c.spec_key(spec_id), dump(spec)))
        return Plan(spec=spec, writes=writes)
    points = [(spec_id, "knowledgeBase", dict(overrides["knowledgeBase"]))]
    return Plan(spec=_validated(_with_params(stored, overrides)), overrides=overrides, writes=writes, points=points)


def kb_trigger(event_id: str) -> tuple[str, str]:
    """(source, id) of the kb-index ``run.requested`` beside a bot.changed's training run: one
    per trigger, so its run id is known from the bot.changed alone (``receipts``)."""
    return KB_SOURCE, f"{event_id}-kb"


def _kb_request(event_id: str, kb: Plan, *, trace: str) -> ev.Event:
    """The kb-index run beside a bot.changed's training run (id from the event's: one per
    trigger; the same trace)."""
    body = {"specId": kb.spec["id"], "params": {"knowledgeBase": kb.spec["params"]["knowledgeBase"]}}
    source, request_id = kb_trigger(event_id)
    return ev.new_event(ev.RUN_REQUESTED, source=source, id=request_id, subject=kb.spec["id"], data=body,
                        extensions={c.TRACE_EXTENSION: trace})


def _bot_problems(data: Mapping[str, Any]) -> list[Problem]:
    """The event's data against ``BotChangedData`` (the botId names ``train-{botId}``), and the
    rules a schema cannot say about its training data and articles."""
    problems = schemas.problems(data, "BotChangedData", "data")
    check_data_semantics(data.get("trainingData"), "data.trainingData", problems)
    kb = data.get("knowledgeBase")
    if isinstance(kb, Mapping) and isinstance(kb.get("articles"), list):
        problems.extend(p for p in _duplicate_ids(kb["articles"]) if p not in problems)
    return problems


def _duplicate_ids(articles: list[Any]) -> list[Problem]:
    found: list[Problem] = []
    kb_index.check_params({"articles": articles}, "data.knowledgeBase", found)
    return found


def _inline_data_object(bot_id: str, revision: object, training: Mapping[str, Any]) -> tuple[str, bytes]:
    """Inline examples are stored under ``bots/{botId}/data/``; the Job only ever gets a URI."""
    return _inline_object(bot_id, revision, {"examples": training["examples"]})


def _inline_object(bot_id: str, revision: object, obj: Mapping[str, Any], *, prefix: str = "") -> tuple[str, bytes]:
    """``bots/{botId}/data/{prefix}{revision or content hash}.json`` and its bytes."""
    body = dump(obj)
    name = str(revision) if revision is not None and _SAFE_NAME.match(str(revision)) else None
    name = name or "sha256-" + hashlib.sha256(body).hexdigest()[:32]
    return f"{c.bot_data_prefix(bot_id)}{prefix}{name}.json", body


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


def point_spec_at(rt: Runtime, spec_id: str, data: Mapping[str, Any], *, param: str = "trainingData") -> None:
    """Compare-and-swap the stored spec's ``params[param]`` to ``data`` (if it differs)."""
    key = c.spec_key(spec_id)
    for _ in range(SPEC_CAS_ATTEMPTS):
        blob = rt.store.read(key)
        stored = json.loads(blob.data)
        if (stored.get("params") or {}).get(param) == data:
            return
        try:
            rt.store.write(key, dump(_with_params(stored, {param: dict(data)})), if_generation_match=blob.generation)
            return
        except PreconditionFailedError:
            continue  # edited meanwhile (the API, another bot.changed): apply to the new version
    raise UnavailableError(f"spec {spec_id}: too many concurrent updates; retry")


def create_only(rt: Runtime, key: str, data: bytes) -> None:
    """Create ``key``; an object already there is fine unless its content differs (data)."""
    try:
        rt.store.write(key, data, if_generation_match=0)
    except PreconditionFailedError:
        if key.startswith("bots/") and rt.store.read(key).data != data:
            raise PermanentError(
                f"data.revision: training data {key} exists with different content; use a new revision"
            ) from None


def trigger(event: ev.Event) -> dict[str, Any]:
    return {"type": event.type, "source": event.source, "id": event.id, "subject": event.subject}


def requested_by(event: ev.Event) -> str:
    return str(event.extensions.get(REQUESTED_BY_EXTENSION) or event.source)


def dump(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
