"""Job specs: what a run is made from, validated whole before anything is written or launched.

A spec arrives from the API, from an inline ``run.requested`` event or from the configured
training defaults; whichever way, ``validate_spec`` checks every field, collects every problem
with its path (``spec.resources.gpus: must be between 0 and 8, got 12``) and raises them once,
and returns the spec normalized with defaults filled in. Pure: no I/O, no clock.

Defaults: ``priority`` normal, ``concurrency`` Forbid (a scheduled spec whose last run is still
going skips the next, as a CronJob with Forbid; no surprise double GPU use), ``timezone`` UTC,
``timeoutSeconds`` 3600, ``retries`` 2, ``resources`` 0 GPUs / 2 CPUs / 4Gi. A bot's own training
spec ``train-{botId}`` defaults to ``Replace`` instead: newer training data supersedes a run
still training on older data.

Fan-out: a ``training`` or ``bot-test`` spec may name ``params.bots: "all"`` instead of a
``botId`` (the built-in ``retrain-all`` and ``nightly-bot-tests``). Launch turns one run of it
into one run per bot; such a spec carries no data of its own, since every bot has its own.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import checks as ck
from . import cronexpr, jobtypes, schemas
from .errors import Problem, ValidationError
from .jobtypes.base import JobType
from .jobtypes.base import ALL_BOTS as ALL_BOTS  # the spec's contract names, re-exported
from .jobtypes.base import DEFAULT_RESOURCES as DEFAULT_RESOURCES
from .jobtypes.base import FAN_OUT_FIELD as FAN_OUT_FIELD
from .jobtypes.base import MAX_BOT_ID as MAX_BOT_ID
from .jobtypes.base import MAX_ID as MAX_ID
from .jobtypes.base import MAX_REPORTED as MAX_REPORTED
from .jobtypes.base import PER_BOT_DATA as PER_BOT_DATA
from .jobtypes.base import TRAINING_PREFIX as TRAINING_PREFIX
from .jobtypes.kb_index import ARTICLE_FORMATS as ARTICLE_FORMATS
from .jobtypes.kb_index import KB_PREFIX as KB_PREFIX
from .jobtypes.kb_index import validate_articles as validate_articles
from .jobtypes.training import DATA_FORMATS as DATA_FORMATS
from .jobtypes.training import HYPER_PARAMETERS as HYPER_PARAMETERS
from .jobtypes.training import validate_training_data as validate_training_data

Spec = dict[str, Any]
Problems = ck.Problems

_FIELDS: Final[Mapping[str, Any]] = schemas.source_defs()["JobSpec"]["properties"]
PRIORITIES: Final = tuple(_FIELDS["priority"]["enum"])
CONCURRENCY: Final = tuple(_FIELDS["concurrency"]["enum"])
MAX_DESCRIPTION: Final = int(_FIELDS["description"]["maxLength"])
DEFAULTS: Final[Mapping[str, Any]] = {
    name: _FIELDS[name]["default"]
    for name in ("description", "timezone", "priority", "concurrency", "timeoutSeconds", "retries")
}
"""Defaults of every type (the schema's); a type's own module says its resources and timeout (``jobtypes``)."""
TRAINING_DEFAULTS: Final[Mapping[str, Any]] = {"concurrency": "Replace"}
FAN_OUT_TYPES: Final = tuple(name for name, t in jobtypes.REGISTRY.items() if t.fan_out)
"""Job types whose spec may fan out to every bot (``params.bots: "all"``)."""
TOP_LEVEL: Final = frozenset(_FIELDS)
MIN_CPU: Final = Decimal("0.001")
MIN_MEMORY: Final = Decimal(2**20)


# --- the spec ------------------------------------------------------------------------------


def validate_spec(obj: object, *, field: str = "spec", require_data: bool = True) -> Spec:
    """The spec normalized with defaults, or ``ValidationError`` listing every problem.

    Structure from the schema (``TrainingSpec``… by ``type``; ``JobSpec`` when the type is
    unknown), then the rules a schema cannot say. ``require_data=False`` accepts a training
    spec without ``trainingData`` (a bot's spec before its data arrives; the run supplies it).
    """
    job_type = jobtypes.get(obj.get("type")) if isinstance(obj, Mapping) else None
    definition = schemas.spec_def(job_type.name) if job_type else "JobSpec"
    problems = schemas.problems(obj, definition, field)
    if not require_data:
        problems = [p for p in problems if p != Problem(f"{field}.params.trainingData", "required")]
    if not isinstance(obj, Mapping):
        raise ValidationError(problems, what="job spec")
    problems = _merge(problems, _semantic_problems(obj, field, job_type))
    if problems:
        raise ValidationError(problems, what="job spec")
    return _normalized(obj, job_type)


def _semantic_problems(spec: Mapping[str, Any], path: str, job_type: JobType | None) -> Problems:
    problems: Problems = []
    if isinstance(spec.get("schedule"), str):
        _schedule(spec["schedule"], f"{path}.schedule", problems)
    if isinstance(spec.get("timezone"), str) and spec["timezone"]:
        _timezone(spec["timezone"], f"{path}.timezone", problems)
    resources = spec.get("resources")
    if isinstance(resources, Mapping):
        _resources(resources, f"{path}.resources", problems)
    params = spec.get("params")
    if job_type is not None and isinstance(params, Mapping):
        job_type.check_params(params, f"{path}.params", problems)
    return problems


def _merge(structural: Problems, semantic: Problems) -> Problems:
    """Both lists; where a semantic check has its own word on a field, the schema's gives way."""
    fields = {p.field for p in semantic}
    return [p for p in structural if p.field not in fields] + semantic


def _normalized(spec: Mapping[str, Any], job_type: JobType | None) -> Spec:
    assert job_type is not None  # a valid spec has a registered type
    out: Spec = {"id": spec["id"], "type": spec["type"], "description": spec.get("description", DEFAULTS["description"])}
    if spec.get("schedule") is not None:
        out["schedule"] = " ".join(str(spec["schedule"]).split())
    for name in ("timezone", "priority", "concurrency"):
        out[name] = spec.get(name, DEFAULTS[name])
    out["timeoutSeconds"] = _int(spec.get("timeoutSeconds", job_type.timeout_seconds))
    out["retries"] = _int(spec.get("retries", DEFAULTS["retries"]))
    out["params"] = copy.deepcopy(dict(spec["params"]))
    resources = dict(job_type.resources)
    resources.update(spec.get("resources") or {})
    resources["gpus"] = _int(resources["gpus"])
    for name in ("cpu", "memory"):
        resources[name] = str(resources[name])  # a quantity is a string in a Job
    out["resources"] = resources
    return out


def _int(value: Any) -> int:
    return int(value)  # the schema said integer: 7200.0 is one


# --- what a schema cannot say --------------------------------------------------------------


def _resources(obj: Mapping[str, Any], path: str, problems: Problems) -> None:
    if "cpu" in obj:
        ck.quantity(obj["cpu"], f"{path}.cpu", problems, minimum=MIN_CPU, unit="CPU")
    memory = obj.get("memory")
    if isinstance(memory, str) and memory.endswith("m"):
        problems.append(Problem(f"{path}.memory", f"'m' means millibytes; did you mean {memory[:-1]}Mi? got {memory!r}"))
    elif "memory" in obj:
        ck.quantity(memory, f"{path}.memory", problems, minimum=MIN_MEMORY, unit="bytes (1Mi)")


def _schedule(value: str, path: str, problems: Problems) -> None:
    try:
        cronexpr.parse(value)
    except cronexpr.CronError as e:
        problems.append(Problem(path, f"{e}; got {value!r}"))


def _timezone(value: str, path: str, problems: Problems) -> None:
    if not value.startswith(("/", ".")) and ".." not in value:
        try:
            ZoneInfo(value)
            return
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    problems.append(Problem(path, f"must be an IANA time zone such as \"Europe/Berlin\" or \"UTC\", got {value!r}"))


def is_fan_out(spec: Mapping[str, Any]) -> bool:
    """Whether a (valid) spec runs once per bot rather than for one bot."""
    params = spec.get("params") or {}
    return spec.get("type") in FAN_OUT_TYPES and params.get(FAN_OUT_FIELD) == ALL_BOTS and "botId" not in params


def for_one_bot(params: Mapping[str, Any], bot_id: str) -> dict[str, Any]:
    """A fan-out spec's params for one bot's run: ``bots`` dropped, ``botId`` set."""
    out = {k: copy.deepcopy(v) for k, v in params.items() if k != FAN_OUT_FIELD}
    out["botId"] = bot_id
    return out


def merge_params(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A run's params: ``overrides`` over the spec's; a ``botId`` override on a fan-out spec
    makes it one bot's run (``bots`` dropped)."""
    merged = {**copy.deepcopy(dict(params)), **copy.deepcopy(dict(overrides))}
    return for_one_bot(merged, str(overrides["botId"])) if "botId" in overrides else merged


def training_spec_for_bot(bot_id: str, *, defaults: Mapping[str, Any]) -> Spec:
    """A bot's training spec ``train-{botId}`` from the configured defaults (no data yet).

    ``defaults`` may set any spec field; ``params`` in it (hyper-parameters) are merged under
    the bot's id. ``id`` and ``type`` are always the bot's.
    """
    base: Spec = {**TRAINING_DEFAULTS, "description": f"Training of the models of bot {bot_id}"}
    base.update(copy.deepcopy(dict(defaults)))
    given = base.get("params")
    params: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    base.update(id=f"{TRAINING_PREFIX}{bot_id}", type="training", params={**params, "botId": bot_id})
    return validate_spec(base, require_data=False)


def kb_spec_for_bot(bot_id: str, *, defaults: Mapping[str, Any]) -> Spec:
    """A bot's knowledge-base spec ``kb-{botId}`` from the configured defaults (like
    ``train-{botId}``: one history per bot; ``Replace``, newer articles supersede)."""
    base: Spec = {"concurrency": "Replace", "description": f"Knowledge-base index of bot {bot_id}"}
    base.update(copy.deepcopy(dict(defaults)))
    given = base.get("params")
    params: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    base.update(id=f"{KB_PREFIX}{bot_id}", type="kb-index", params={**params, "botId": bot_id})
    return validate_spec(base, require_data=False)
