"""The ``bot-test`` job type: a bot's promoted model scored on test utterances, no training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .. import checks as ck
from ..errors import Problem
from .base import FAN_OUT_FIELD, MAX_REPORTED, JobType, Problems, target
from .training import validate_training_data


def check_params(params: Mapping[str, Any], path: str, problems: Problems, *, require_data: bool) -> None:
    """``tests`` or ``testData``, or neither: then the bot is tested on the test split its
    promoted model's training held out. ``minAccuracy`` (0–1) fails a run below it; ``maxDrop``
    (0–1, absolute) fails one whose figures dropped more since the previous succeeded test.
    (``baseline``, naming that previous run, is set by the launch, never by a spec.)"""
    ck.unknown(params, {"botId", FAN_OUT_FIELD, "tests", "testData", "minAccuracy", "maxDrop"}, path, problems)
    target(params, path, problems)
    if "tests" in params and "testData" in params:
        problems.append(Problem(path, "must have at most one of tests or testData"))
    if "testData" in params:
        problems.extend(validate_training_data(params["testData"], field=f"{path}.testData"))
    if "tests" in params:
        _tests(params["tests"], f"{path}.tests", problems)
    for name in ("minAccuracy", "maxDrop"):
        if name in params:
            ck.number(params[name], f"{path}.{name}", problems, low=0, high=1, open_low=False)


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



JOB_TYPE: Final = JobType(name="bot-test", check_params=check_params, entrypoint="jobplane_trainer.bottest:execute",
                          queue="bot-test", fan_out=True)
