"""The ``training`` job type: a bot's intent and entity models from its labelled utterances.

Params (``TrainingParams`` in ``schemas/jobplane.json``): ``botId`` and ``trainingData``, or
``bots: "all"``; optional hyper-parameters, typed and bounded there. Here: what the schema
cannot say about training data (entity offsets inside their text).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .. import schemas
from ..errors import Problem
from .base import MAX_REPORTED, TRAINING_PREFIX, JobType, Problems

_PARAMS: Final = schemas.source_defs()["TrainingParams"]["properties"]
DATA_FORMATS: Final = tuple(schemas.source_defs()["TrainingData"]["properties"]["format"]["enum"])
HYPER_PARAMETERS: Final = tuple(name for name in _PARAMS if name not in ("botId", "bots", "trainingData", "testData"))
"""Optional training hyper-parameters (bounds in the schema); the trainer supplies defaults."""


def validate_training_data(obj: object, *, field: str = "data.trainingData") -> Problems:
    """Problems with a ``trainingData`` value: ``{"uri": ...}`` or ``{"examples": [...]}``
    (at most ``MAX_REPORTED``, then one saying it stopped)."""
    problems = schemas.problems(obj, "TrainingData", field, limit=MAX_REPORTED)
    if len(problems) < MAX_REPORTED:
        check_data_semantics(obj, field, problems)
    if len(problems) >= MAX_REPORTED:
        examples = obj.get("examples") if isinstance(obj, Mapping) else None
        count = len(examples) if isinstance(examples, list) else 0
        problems = problems[:MAX_REPORTED]
        problems.append(Problem(f"{field}.examples", f"stopped after {MAX_REPORTED} problems ({count} examples)"))
    return problems


def check_data_semantics(data: object, path: str, problems: Problems) -> None:
    """Each entity's offsets inside its example's text, and its value the text they name."""
    examples = data.get("examples") if isinstance(data, Mapping) else None
    if not isinstance(examples, list):
        return
    for i, example in enumerate(examples):
        if len(problems) >= MAX_REPORTED:
            return
        if not isinstance(example, Mapping) or not isinstance(example.get("entities"), list):
            continue
        text = example.get("text") if isinstance(example.get("text"), str) else None
        for j, entity in enumerate(example["entities"]):
            _entity(entity, f"{path}.examples[{i}].entities[{j}]", text, problems)


def _entity(entity: object, path: str, text: str | None, problems: Problems) -> None:
    if not isinstance(entity, Mapping):
        return
    start, end = entity.get("start"), entity.get("end")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        return  # the schema says so
    assert isinstance(start, int) and isinstance(end, int)
    limit = len(text) if text is not None else None
    if start < 0 or start >= end or (limit is not None and end > limit):
        problems.append(Problem(path, f"must have 0 <= start < end <= {limit} (text length), got {start}..{end}"))
        return
    if "value" in entity and text is not None and entity["value"] != text[start:end]:
        problems.append(Problem(f"{path}.value", f"must equal text[{start}:{end}] = {text[start:end]!r}, got {entity['value']!r}"))


def check_params(params: Mapping[str, Any], path: str, problems: Problems) -> None:
    for name in ("trainingData", "testData"):
        check_data_semantics(params.get(name), f"{path}.{name}", problems)


JOB_TYPE: Final = JobType(name="training", params_schema="TrainingParams", check_params=check_params,
                          entrypoint="jobplane_trainer.job:execute", queue="training", fan_out=True,
                          bot_spec_prefix=TRAINING_PREFIX)
