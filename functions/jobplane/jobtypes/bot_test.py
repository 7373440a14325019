"""The ``bot-test`` job type: a bot's promoted model scored on test utterances, no training.

Params (``BotTestParams`` in ``schemas/jobplane.json``): ``tests`` or ``testData``, or
neither: then the bot is tested on the test split its promoted model's training held out.
``minAccuracy`` (0–1) fails a run below it; ``maxDrop`` (0–1, absolute) fails one whose
figures dropped more since the previous succeeded test. (``baseline``, naming that previous
run, is set by the launch, never by a spec.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .base import JobType, Problems
from .training import check_data_semantics


def check_params(params: Mapping[str, Any], path: str, problems: Problems) -> None:
    """What the schema cannot say: inline test data's entity offsets."""
    check_data_semantics(params.get("testData"), f"{path}.testData", problems)


JOB_TYPE: Final = JobType(name="bot-test", params_schema="BotTestParams", check_params=check_params,
                          entrypoint="jobplane_trainer.bottest:execute", queue="bot-test", fan_out=True)
