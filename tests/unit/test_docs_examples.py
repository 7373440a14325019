"""The README's first-five-minutes files (docs/examples/) are what the plane and trainer take."""

from __future__ import annotations

import json
from pathlib import Path

from jobplane.spec import validate_spec
from jobplane_trainer.data import from_project, validate

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_the_example_spec_is_valid_with_inline_training_data() -> None:
    spec = validate_spec(json.loads((EXAMPLES / "train-my-bot.json").read_text()))
    assert spec["id"] == f"train-{spec['params']['botId']}" and spec["params"]["trainingData"]["examples"]


def test_the_example_data_is_the_specs_and_good_enough_to_train() -> None:
    spec = json.loads((EXAMPLES / "train-my-bot.json").read_text())
    data = json.loads((EXAMPLES / "my-bot-data.json").read_text())
    assert data == spec["params"]["trainingData"]
    validate(from_project(data))  # raises BadDataError listing every problem
