"""A ``make_spec(**overrides)`` factory instead of copied spec dictionaries."""

from __future__ import annotations

import copy
from typing import Any

TRAINING_EXAMPLES: list[dict[str, Any]] = [
    {"text": text, "intent": intent}
    for intent, texts in {
        "greet": ["hi", "hello", "hey there", "good morning", "hiya", "hello bot"],
        "bye": ["bye", "goodbye", "see you", "later", "good night", "farewell"],
        "book": ["book a table", "reserve a table for two", "table for four please",
                 "can I book dinner", "make a reservation", "book for tonight"],
    }.items()
    for text in texts
]


TEST_DATA_PREFIXES = ("file:///nonexistent/",)
"""The data prefix ``make_spec``'s default training data lies under: test planes allow it
(``Settings.data_prefixes``), as an operator allows a shared dataset folder."""

def make_spec(**overrides: Any) -> dict[str, Any]:
    """A valid training spec; keyword overrides replace top-level fields, ``params`` merges."""
    spec: dict[str, Any] = {
        "id": "train-test-bot",
        "type": "training",
        "description": "test training spec",
        "priority": "normal",
        "concurrency": "Allow",
        "params": {"botId": "test-bot", "trainingData": {"uri": "file:///nonexistent/data.json"}},
        "resources": {"gpus": 0, "cpu": "1", "memory": "1Gi"},
        "timeoutSeconds": 600,
        "retries": 0,
    }
    params = overrides.pop("params", None)
    spec.update(copy.deepcopy(overrides))
    if params is not None:
        spec["params"] = {**spec["params"], **params}
    return spec
