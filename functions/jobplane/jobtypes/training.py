"""The ``training`` job type: a bot's intent and entity models from its labelled utterances."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from .. import checks as ck
from ..errors import Problem
from .base import FAN_OUT_FIELD, MAX_REPORTED, TRAINING_PREFIX, JobType, Problems, target

DATA_FORMATS: Final = ("jobplane", "rasa", "snips")


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


def check_params(params: Mapping[str, Any], path: str, problems: Problems, *, require_data: bool) -> None:
    ck.unknown(params, {"botId", FAN_OUT_FIELD, "trainingData", "testData", *HYPER_PARAMETERS}, path, problems)
    if target(params, path, problems):
        require_data = False  # each bot trains on its own data, named by its own spec
    if "trainingData" in params or require_data:
        if ck.required(params, "trainingData", path, problems):
            problems.extend(validate_training_data(params["trainingData"], field=f"{path}.trainingData"))
    if "testData" in params:
        problems.extend(validate_training_data(params["testData"], field=f"{path}.testData"))
    for name, check in HYPER_PARAMETERS.items():
        if name in params:
            check(params[name], f"{path}.{name}", problems)



JOB_TYPE: Final = JobType(name="training", check_params=check_params, entrypoint="jobplane_trainer.job:execute",
                          queue="training", fan_out=True, bot_spec_prefix=TRAINING_PREFIX)
