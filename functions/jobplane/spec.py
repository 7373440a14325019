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
from . import cronexpr, jobtypes
from .errors import Problem, ValidationError
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
from .jobtypes.training import validate_examples as validate_examples
from .jobtypes.training import validate_training_data as validate_training_data

Spec = dict[str, Any]
Problems = ck.Problems

PRIORITIES: Final = ("high", "normal", "low")
CONCURRENCY: Final = ("Allow", "Forbid", "Replace")
MAX_DESCRIPTION: Final = 2000
DEFAULTS: Final[Mapping[str, Any]] = {
    "description": "",
    "timezone": "UTC",
    "priority": "normal",
    "concurrency": "Forbid",
    "timeoutSeconds": 3600,
    "retries": 2,
}
"""Defaults of every type; a type's own module says its resources and timeout (``jobtypes``)."""
TRAINING_DEFAULTS: Final[Mapping[str, Any]] = {"concurrency": "Replace"}
FAN_OUT_TYPES: Final = tuple(name for name, t in jobtypes.REGISTRY.items() if t.fan_out)
"""Job types whose spec may fan out to every bot (``params.bots: "all"``)."""
TOP_LEVEL: Final = frozenset(
    {"id", "type", "description", "schedule", "timezone", "priority", "concurrency", "params",
     "resources", "timeoutSeconds", "retries"}
)


# --- resources -----------------------------------------------------------------------------


def _resources(value: object, path: str, problems: Problems, *, defaults: Mapping[str, Any] = DEFAULT_RESOURCES) -> dict[str, Any]:
    resources = dict(defaults)
    obj = ck.mapping(value, path, problems) if value is not None else {}
    if obj is None:
        return resources
    ck.unknown(obj, set(DEFAULT_RESOURCES), path, problems)
    if "gpus" in obj:
        resources["gpus"] = ck.integer(obj["gpus"], f"{path}.gpus", problems, low=0, high=8)
    if "cpu" in obj:
        resources["cpu"] = ck.quantity(obj["cpu"], f"{path}.cpu", problems, minimum=Decimal("0.001"), unit="CPU")
    if "memory" in obj:
        memory = obj["memory"]
        if isinstance(memory, str) and memory.endswith("m"):
            problems.append(Problem(f"{path}.memory", f"'m' means millibytes; did you mean {memory[:-1]}Mi? got {memory!r}"))
        else:
            resources["memory"] = ck.quantity(memory, f"{path}.memory", problems, minimum=Decimal(2**20), unit="bytes (1Mi)")
    return resources


# --- schedule ------------------------------------------------------------------------------


def _schedule(value: object, path: str, problems: Problems) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(path, f"must be a cron expression such as \"0 3 * * *\" or \"@daily\", got {ck.kind(value)}"))
        return None
    try:
        cronexpr.parse(value)
    except cronexpr.CronError as e:
        problems.append(Problem(path, f"{e}; got {value!r}"))
        return None
    return " ".join(value.split())


def _timezone(value: object, path: str, problems: Problems) -> str | None:
    if isinstance(value, str) and value and not value.startswith(("/", ".")) and ".." not in value:
        try:
            ZoneInfo(value)
            return value
        except (ZoneInfoNotFoundError, ValueError):
            pass
    problems.append(Problem(path, f"must be an IANA time zone such as \"Europe/Berlin\" or \"UTC\", got {value!r}"))
    return None



# --- the spec ------------------------------------------------------------------------------


def validate_spec(obj: object, *, field: str = "spec", require_data: bool = True) -> Spec:
    """The spec normalized with defaults, or ``ValidationError`` listing every problem.

    ``require_data=False`` accepts a training spec without ``trainingData`` (a bot's spec
    before its data arrives; the run supplies it).
    """
    problems: Problems = []
    spec = ck.mapping(obj, field, problems)
    if spec is None:
        raise ValidationError(problems, what="job spec")
    ck.unknown(spec, TOP_LEVEL, field, problems)
    out = _identity(spec, field, problems)
    out.update(_policy(spec, field, problems, timeout=_type_timeout(out.get("type"))))
    out["params"] = _params(spec, out.get("type"), field, problems, require_data=require_data)
    job_type = jobtypes.get(out.get("type"))
    out["resources"] = _resources(spec.get("resources"), f"{field}.resources", problems,
                                  defaults=job_type.resources if job_type else DEFAULT_RESOURCES)
    if problems:
        raise ValidationError(problems, what="job spec")
    return out


def _identity(spec: Mapping[str, Any], path: str, problems: Problems) -> Spec:
    out: Spec = {}
    if ck.required(spec, "id", path, problems):
        out["id"] = ck.label(spec["id"], f"{path}.id", problems)
    if ck.required(spec, "type", path, problems):
        out["type"] = ck.choice(spec["type"], f"{path}.type", problems, jobtypes.NAMES)
    description = spec.get("description", DEFAULTS["description"])
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        problems.append(Problem(f"{path}.description", f"must be a string of at most {MAX_DESCRIPTION} characters"))
    out["description"] = description
    return out


def _type_timeout(name: object) -> int:
    job_type = jobtypes.get(name)
    return job_type.timeout_seconds if job_type else int(DEFAULTS["timeoutSeconds"])


def _policy(spec: Mapping[str, Any], path: str, problems: Problems, *, timeout: int) -> Spec:
    out: Spec = {}
    if spec.get("schedule") is not None:
        out["schedule"] = _schedule(spec["schedule"], f"{path}.schedule", problems)
    out["timezone"] = _timezone(spec.get("timezone", DEFAULTS["timezone"]), f"{path}.timezone", problems)
    out["priority"] = ck.choice(spec.get("priority", DEFAULTS["priority"]), f"{path}.priority", problems, PRIORITIES)
    out["concurrency"] = ck.choice(
        spec.get("concurrency", DEFAULTS["concurrency"]), f"{path}.concurrency", problems, CONCURRENCY
    )
    out["timeoutSeconds"] = ck.integer(
        spec.get("timeoutSeconds", timeout), f"{path}.timeoutSeconds", problems, low=60, high=86400
    )
    out["retries"] = ck.integer(spec.get("retries", DEFAULTS["retries"]), f"{path}.retries", problems, low=0, high=10)
    return out


def _params(spec: Mapping[str, Any], job_type: object, path: str, problems: Problems, *, require_data: bool) -> Spec:
    if not ck.required(spec, "params", path, problems):
        return {}
    params = ck.mapping(spec["params"], f"{path}.params", problems)
    if params is None:
        return {}
    registered = jobtypes.get(job_type)
    if registered is not None:
        registered.check_params(params, f"{path}.params", problems, require_data=require_data)
    return copy.deepcopy(dict(params))


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
