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
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import checks as ck
from . import cronexpr
from .errors import Problem, ValidationError
from .settings import JOB_TYPES

Spec = dict[str, Any]
Problems = ck.Problems

MAX_ID: Final = ck.MAX_LABEL
TRAINING_PREFIX: Final = "train-"
MAX_BOT_ID: Final = MAX_ID - len(TRAINING_PREFIX)
"""So that ``train-{botId}`` is itself a DNS-1123 label."""
PRIORITIES: Final = ("high", "normal", "low")
CONCURRENCY: Final = ("Allow", "Forbid", "Replace")
DATA_FORMATS: Final = ("jobplane", "rasa", "snips")
MAX_DESCRIPTION: Final = 2000
MAX_REPORTED: Final = 100
"""Problems reported per examples list; a broken 10,000-line file needs no 10,000 lines back."""
DEFAULTS: Final[Mapping[str, Any]] = {
    "description": "",
    "timezone": "UTC",
    "priority": "normal",
    "concurrency": "Forbid",
    "timeoutSeconds": 3600,
    "retries": 2,
}
DEFAULT_RESOURCES: Final[Mapping[str, Any]] = {"gpus": 0, "cpu": "2", "memory": "4Gi"}
TRAINING_DEFAULTS: Final[Mapping[str, Any]] = {"concurrency": "Replace"}
FAN_OUT_FIELD: Final = "bots"
ALL_BOTS: Final = "all"
FAN_OUT_TYPES: Final = ("training", "bot-test")
"""Job types whose spec may fan out to every bot (``params.bots: "all"``)."""
PER_BOT_DATA: Final = ("trainingData", "testData", "tests")
"""Params naming one bot's data, which a fan-out spec cannot carry."""
TOP_LEVEL: Final = frozenset(
    {"id", "type", "description", "schedule", "timezone", "priority", "concurrency", "params",
     "resources", "timeoutSeconds", "retries"}
)


# --- resources -----------------------------------------------------------------------------


def _resources(value: object, path: str, problems: Problems) -> dict[str, Any]:
    resources = dict(DEFAULT_RESOURCES)
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


# --- training data -------------------------------------------------------------------------


def validate_training_data(obj: object, *, field: str = "data.trainingData") -> Problems:
    """Problems with a ``trainingData`` value: ``{"uri": ...}`` or ``{"examples": [...]}``."""
    problems: Problems = []
    data = ck.mapping(obj, field, problems)
    if data is None:
        return problems
    ck.unknown(data, {"uri", "examples", "format"}, field, problems)
    if ("uri" in data) == ("examples" in data):
        problems.append(Problem(field, "must have exactly one of uri or examples"))
    if "uri" in data:
        ck.uri(data["uri"], f"{field}.uri", problems)
    if "format" in data:
        ck.choice(data["format"], f"{field}.format", problems, DATA_FORMATS)
    if "examples" in data:
        problems.extend(validate_examples(data["examples"], field=f"{field}.examples"))
    return problems


def validate_examples(examples: object, *, field: str) -> Problems:
    """Problems with a list of labelled utterances (at most ``MAX_REPORTED`` of them)."""
    problems: Problems = []
    if not isinstance(examples, list) or not examples:
        return [Problem(field, f"must be a non-empty array of examples, got {ck.kind(examples)}")]
    for i, example in enumerate(examples):
        _example(example, f"{field}[{i}]", problems)
        if len(problems) >= MAX_REPORTED:
            problems.append(Problem(field, f"stopped after {MAX_REPORTED} problems ({len(examples)} examples)"))
            break
    return problems


def _example(value: object, path: str, problems: Problems) -> None:
    example = ck.mapping(value, path, problems)
    if example is None:
        return
    text = ck.string(example.get("text"), f"{path}.text", problems, max_len=10_000)
    ck.string(example.get("intent"), f"{path}.intent", problems, max_len=200)
    entities = example.get("entities", [])
    if not isinstance(entities, list):
        problems.append(Problem(f"{path}.entities", f"must be an array, got {ck.kind(entities)}"))
        return
    for j, entity in enumerate(entities):
        _entity(entity, f"{path}.entities[{j}]", text, problems)


def _entity(value: object, path: str, text: str | None, problems: Problems) -> None:
    entity = ck.mapping(value, path, problems)
    if entity is None:
        return
    ck.string(entity.get("entity"), f"{path}.entity", problems, max_len=200)
    start, end = entity.get("start"), entity.get("end")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        problems.append(Problem(path, f"start and end must be integers, got {ck.kind(start)} and {ck.kind(end)}"))
        return
    assert isinstance(start, int) and isinstance(end, int)
    limit = len(text) if text is not None else None
    if start < 0 or start >= end or (limit is not None and end > limit):
        problems.append(Problem(path, f"must have 0 <= start < end <= {limit} (text length), got {start}..{end}"))
        return
    if "value" in entity and text is not None and entity["value"] != text[start:end]:
        problems.append(Problem(f"{path}.value", f"must equal text[{start}:{end}] = {text[start:end]!r}, got {entity['value']!r}"))


# --- params per job type -------------------------------------------------------------------

Check = Callable[[object, str, Problems], Any]


def _int_between(low: int, high: int) -> Check:
    return lambda v, p, ps: ck.integer(v, p, ps, low=low, high=high)


def _open_interval(low: float, high: float) -> Check:
    return lambda v, p, ps: ck.number(v, p, ps, low=low, high=high, open_low=True)


def _closed_interval(low: float, high: float) -> Check:
    return lambda v, p, ps: ck.number(v, p, ps, low=low, high=high, open_low=False)


HYPER_PARAMETERS: Final[Mapping[str, Check]] = {
    "epochs": _int_between(1, 200),
    "learningRate": _open_interval(0, 1),
    "batchSize": _int_between(1, 4096),
    "validationSplit": _open_interval(0, 0.5),
    "seed": _int_between(0, 2**32 - 1),
    "embeddingDim": _int_between(8, 1024),
    "hiddenDim": _int_between(8, 4096),
    "dropout": _closed_interval(0, 0.9),
    "maxLength": _int_between(4, 512),
    "patience": _int_between(0, 200),
    "weightDecay": _closed_interval(0, 1),
    "promote": ck.boolean,
    "testSplit": _closed_interval(0, 0.5),
}
"""Optional training hyper-parameters, typed and bounded; the trainer supplies defaults."""


def _training_params(params: Mapping[str, Any], path: str, problems: Problems, *, require_data: bool) -> None:
    ck.unknown(params, {"botId", FAN_OUT_FIELD, "trainingData", "testData", *HYPER_PARAMETERS}, path, problems)
    if _target(params, path, problems):
        require_data = False  # each bot trains on its own data, named by its own spec
    if "trainingData" in params or require_data:
        if ck.required(params, "trainingData", path, problems):
            problems.extend(validate_training_data(params["trainingData"], field=f"{path}.trainingData"))
    if "testData" in params:
        problems.extend(validate_training_data(params["testData"], field=f"{path}.testData"))
    for name, check in HYPER_PARAMETERS.items():
        if name in params:
            check(params[name], f"{path}.{name}", problems)


def _kb_index_params(params: Mapping[str, Any], path: str, problems: Problems, *, require_data: bool) -> None:
    ck.unknown(params, {"botId", "articles"}, path, problems)
    if ck.required(params, "botId", path, problems):
        ck.label(params["botId"], f"{path}.botId", problems, max_len=MAX_BOT_ID)
    if not ck.required(params, "articles", path, problems):
        return
    articles = params["articles"]
    if not isinstance(articles, list) or not articles:
        problems.append(Problem(f"{path}.articles", f"must be a non-empty array, got {ck.kind(articles)}"))
        return
    seen: set[str] = set()
    for i, article in enumerate(articles):
        _article(article, f"{path}.articles[{i}]", seen, problems)


def _article(value: object, path: str, seen: set[str], problems: Problems) -> None:
    article = ck.mapping(value, path, problems)
    if article is None:
        return
    ck.unknown(article, {"id", "title", "text", "uri"}, path, problems)
    article_id = ck.string(article.get("id"), f"{path}.id", problems, max_len=200)
    if article_id is not None and article_id in seen:
        problems.append(Problem(f"{path}.id", f"duplicate article id {article_id!r}"))
    seen.add(article_id or "")
    ck.string(article.get("title"), f"{path}.title", problems, max_len=1000)
    if ("text" in article) == ("uri" in article):
        problems.append(Problem(path, "must have exactly one of text or uri"))
    elif "text" in article:
        ck.string(article["text"], f"{path}.text", problems, max_len=1_000_000)
    else:
        ck.uri(article["uri"], f"{path}.uri", problems)


def _bot_test_params(params: Mapping[str, Any], path: str, problems: Problems, *, require_data: bool) -> None:
    """``tests`` or ``testData``, or neither: then the bot is tested on the test split its
    promoted model's training held out. ``minAccuracy`` (0–1) fails a run below it; ``maxDrop``
    (0–1, absolute) fails one whose figures dropped more since the previous succeeded test.
    (``baseline``, naming that previous run, is set by the launch, never by a spec.)"""
    ck.unknown(params, {"botId", FAN_OUT_FIELD, "tests", "testData", "minAccuracy", "maxDrop"}, path, problems)
    _target(params, path, problems)
    if "tests" in params and "testData" in params:
        problems.append(Problem(path, "must have at most one of tests or testData"))
    if "testData" in params:
        problems.extend(validate_training_data(params["testData"], field=f"{path}.testData"))
    if "tests" in params:
        _tests(params["tests"], f"{path}.tests", problems)
    for name in ("minAccuracy", "maxDrop"):
        if name in params:
            ck.number(params[name], f"{path}.{name}", problems, low=0, high=1, open_low=False)


def _target(params: Mapping[str, Any], path: str, problems: Problems) -> bool:
    """Check ``botId``, or ``bots: "all"`` and no per-bot data; whether the params fan out."""
    if FAN_OUT_FIELD not in params:
        if ck.required(params, "botId", path, problems):
            ck.label(params["botId"], f"{path}.botId", problems, max_len=MAX_BOT_ID)
        return False
    if "botId" in params:
        problems.append(Problem(path, f"must have exactly one of botId or {FAN_OUT_FIELD}"))
    if params[FAN_OUT_FIELD] != ALL_BOTS:
        problems.append(Problem(f"{path}.{FAN_OUT_FIELD}", f"must be {ALL_BOTS!r} (one run per bot), got {params[FAN_OUT_FIELD]!r}"))
    for name in PER_BOT_DATA:
        if name in params:
            problems.append(Problem(f"{path}.{name}", f"not allowed with {FAN_OUT_FIELD}: every bot has its own data"))
    return True


def _tests(tests: object, path: str, problems: Problems) -> None:
    if not isinstance(tests, list) or not tests:
        problems.append(Problem(path, f"must be a non-empty array of {{text, expectedIntent}}, got {ck.kind(tests)}"))
        return
    for i, value in enumerate(tests[:MAX_REPORTED]):
        case = ck.mapping(value, f"{path}[{i}]", problems)
        if case is not None:
            ck.unknown(case, {"text", "expectedIntent"}, f"{path}[{i}]", problems)
            ck.string(case.get("text"), f"{path}[{i}].text", problems, max_len=10_000)
            ck.string(case.get("expectedIntent"), f"{path}[{i}].expectedIntent", problems, max_len=200)


PARAMS: Final = {"training": _training_params, "kb-index": _kb_index_params, "bot-test": _bot_test_params}


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
    out.update(_policy(spec, field, problems))
    out["params"] = _params(spec, out.get("type"), field, problems, require_data=require_data)
    out["resources"] = _resources(spec.get("resources"), f"{field}.resources", problems)
    if problems:
        raise ValidationError(problems, what="job spec")
    return out


def _identity(spec: Mapping[str, Any], path: str, problems: Problems) -> Spec:
    out: Spec = {}
    if ck.required(spec, "id", path, problems):
        out["id"] = ck.label(spec["id"], f"{path}.id", problems)
    if ck.required(spec, "type", path, problems):
        out["type"] = ck.choice(spec["type"], f"{path}.type", problems, JOB_TYPES)
    description = spec.get("description", DEFAULTS["description"])
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        problems.append(Problem(f"{path}.description", f"must be a string of at most {MAX_DESCRIPTION} characters"))
    out["description"] = description
    return out


def _policy(spec: Mapping[str, Any], path: str, problems: Problems) -> Spec:
    out: Spec = {}
    if spec.get("schedule") is not None:
        out["schedule"] = _schedule(spec["schedule"], f"{path}.schedule", problems)
    out["timezone"] = _timezone(spec.get("timezone", DEFAULTS["timezone"]), f"{path}.timezone", problems)
    out["priority"] = ck.choice(spec.get("priority", DEFAULTS["priority"]), f"{path}.priority", problems, PRIORITIES)
    out["concurrency"] = ck.choice(
        spec.get("concurrency", DEFAULTS["concurrency"]), f"{path}.concurrency", problems, CONCURRENCY
    )
    out["timeoutSeconds"] = ck.integer(
        spec.get("timeoutSeconds", DEFAULTS["timeoutSeconds"]), f"{path}.timeoutSeconds", problems, low=60, high=86400
    )
    out["retries"] = ck.integer(spec.get("retries", DEFAULTS["retries"]), f"{path}.retries", problems, low=0, high=10)
    return out


def _params(spec: Mapping[str, Any], job_type: object, path: str, problems: Problems, *, require_data: bool) -> Spec:
    if not ck.required(spec, "params", path, problems):
        return {}
    params = ck.mapping(spec["params"], f"{path}.params", problems)
    if params is None:
        return {}
    check = PARAMS.get(str(job_type))
    if check is not None:
        check(params, f"{path}.params", problems, require_data=require_data)
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
