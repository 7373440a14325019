"""What the CLI makes of its arguments: ``--param k=v`` overrides and ``emit``'s event data (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from jobplane.cli.bots import event_data
from jobplane.cli.exits import CliError, Exit
from jobplane.cli.runs import parse_params


@pytest.mark.parametrize(("pairs", "params"), [
    (["epochs=5"], {"epochs": 5}),
    (["learningRate=0.01", "promote=false"], {"learningRate": 0.01, "promote": False}),
    (["botId=acme"], {"botId": "acme"}),  # not JSON: a string
    (["trainingData.uri=gs://b/x.json"], {"trainingData": {"uri": "gs://b/x.json"}}),
    (['tests=[{"text": "hi", "intent": "greet"}]'], {"tests": [{"text": "hi", "intent": "greet"}]}),
    (["note=a=b"], {"note": "a=b"}),
])
def test_params_are_json_values_else_strings_and_dots_nest(pairs: list[str], params: dict[str, Any]) -> None:
    assert parse_params(pairs) == params


@pytest.mark.parametrize("pairs", [["epochs"], ["=5"], ["a=1", "a.b=2"]])
def test_a_param_that_is_not_key_equals_value_is_a_usage_error(pairs: list[str]) -> None:
    with pytest.raises(CliError) as caught:
        parse_params(pairs)
    assert caught.value.code == Exit.USAGE


EXAMPLES = [{"text": "hi", "intent": "greet"}]


@pytest.mark.parametrize(("given", "training_data"), [
    ({"examples": EXAMPLES}, {"examples": EXAMPLES}),
    (EXAMPLES, {"examples": EXAMPLES}),
    ({"uri": "gs://b/acme.json"}, {"uri": "gs://b/acme.json"}),
    ({"revision": "r7", "trainingData": {"examples": EXAMPLES}}, {"examples": EXAMPLES}),
])
def test_the_data_file_may_hold_training_data_or_the_whole_event_data(given: Any, training_data: Any) -> None:
    data = event_data("acme", given, revision=None)
    assert data["botId"] == "acme" and data["trainingData"] == training_data and data["revision"]


def test_the_revision_is_the_datas_hash_unless_given() -> None:
    same = event_data("acme", {"examples": EXAMPLES}, revision=None)["revision"]
    assert same == event_data("acme", {"examples": EXAMPLES}, revision=None)["revision"]
    assert same != event_data("acme", {"examples": EXAMPLES * 2}, revision=None)["revision"]
    assert event_data("acme", {"examples": EXAMPLES}, revision="r9")["revision"] == "r9"
    assert event_data("acme", {"revision": "r7", "trainingData": {"examples": EXAMPLES}}, revision=None)["revision"] == "r7"


@pytest.mark.parametrize("given", ["text", 3, {"botId": "other", "trainingData": {"examples": EXAMPLES}}])
def test_data_for_another_bot_or_not_an_object_is_a_usage_error(given: Any) -> None:
    with pytest.raises(CliError) as caught:
        event_data("acme", given, revision=None)
    assert caught.value.code == Exit.USAGE
