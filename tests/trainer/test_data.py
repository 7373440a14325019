"""Importers (project JSON, Rasa NLU YAML, Snips NLU JSON, CSV) and validation of training data."""

from __future__ import annotations

import json

import pytest

from jobplane_trainer.data import BadDataError, Entity, Example, decode, parse, validate

RASA = """
version: "3.1"
nlu:
- intent: book_table
  examples: |
    - book a table for [two](party_size) at [8pm](time)
    - reserve a table in [Paris]{"entity": "city", "value": "paris"}
    - table for [four](party_size:4) please
- synonym: four
  examples: |
    - 4
- intent: greet
  examples: |
    - hello
    - hi there
"""


def test_rasa_yaml_annotations_become_entity_spans() -> None:
    examples = parse(RASA.encode(), name="nlu.yml")
    assert [e.intent for e in examples] == ["book_table"] * 3 + ["greet"] * 2
    first = examples[0]
    assert first.text == "book a table for two at 8pm"
    assert first.entities == (Entity(17, 20, "party_size", "two"), Entity(24, 27, "time", "8pm"))
    assert examples[1].text == "reserve a table in Paris"
    assert examples[1].entities == (Entity(19, 24, "city", "Paris"),)
    assert examples[2].entities == (Entity(10, 14, "party_size", "four"),)


def test_snips_benchmark_chunks_become_entity_spans() -> None:
    raw = {"PlayMusic": [{"data": [{"text": "play "}, {"text": "Hey Jude ", "entity": "track"}, {"text": "now"}]}]}
    (ex,) = parse(json.dumps(raw).encode(), name="train_PlayMusic_full.json")
    assert ex == Example("play Hey Jude now", "PlayMusic", (Entity(5, 13, "track", "Hey Jude"),))


def test_snips_nlu_dataset_format_is_read() -> None:
    raw = {"language": "en", "entities": {}, "intents": {"greet": {"utterances": [{"data": [{"text": "hi"}]}]}}}
    assert parse(json.dumps(raw).encode(), name="dataset.json") == [Example("hi", "greet")]


def test_invalid_utf8_names_the_file_and_line() -> None:
    raw = b'{"examples": [\n{"text": "ok", "intent": "a"},\n{"text": "caf\xe9", "intent": "b"}]}'
    with pytest.raises(BadDataError) as err:
        parse(raw, name="bots/x/data.json")
    assert "bots/x/data.json:3:" in str(err.value)
    assert "0xe9" in str(err.value)


def test_invalid_utf8_decodes_with_replacement_when_asked() -> None:
    assert decode(b"caf\xe9", name="f", errors="replace") == "caf\ufffd"


def test_csv_with_text_and_category_columns() -> None:
    raw = b"text,category\nwhere is my card,card_arrival\n"
    assert parse(raw, name="train.csv") == [Example("where is my card", "card_arrival")]


@pytest.mark.parametrize(
    ("examples", "expected"),
    [
        ([Example("hi", "greet"), Example("hello", "greet"), Example("", "bye"), Example("bye", "bye")], "examples[2].text: is empty"),
        ([Example("hi", "greet"), Example("hello", "greet"), Example("Hi ", "bye"), Example("bye", "bye")],
         "'Hi ' is also under intent 'greet'"),
        ([Example("hi", "greet"), Example("hello", "greet"), Example("bye", "bye")], "intent bye: needs at least 2 examples, got 1"),
        ([Example("hi", "greet"), Example("hello", "greet")], "need at least 2 intents, got 1"),
        ([Example("hi", "greet"), Example("hello", "greet"), Example("bye", ""), Example("ciao", "bye"), Example("adieu", "bye")],
         "examples[2].intent: is empty"),
        ([Example("hi", "greet", (Entity(0, 5, "x", "hi"),)), Example("hello", "greet"), Example("bye", "bye"), Example("ciao", "bye")],
         "examples[0].entities[0]: span 0..5 does not hold 'hi'"),
    ],
)
def test_validation_names_each_problem(examples: list[Example], expected: str) -> None:
    with pytest.raises(BadDataError) as err:
        validate(examples)
    assert expected in str(err.value)


def test_validation_reports_every_problem_at_once() -> None:
    with pytest.raises(BadDataError) as err:
        validate([Example("", "a"), Example("x", "a"), Example("x", "b"), Example("y", "b"), Example("z", "c")])
    fields = [p.field for p in err.value.problems]
    assert "examples[0].text" in fields and "examples[2]" in fields and "intent c" in fields


def test_project_format_errors_have_paths() -> None:
    raw = json.dumps({"examples": [{"text": "hi"}, {"text": "ab", "intent": "x", "entities": [{"start": 1, "end": 9, "entity": "e"}]}]})
    with pytest.raises(BadDataError) as err:
        parse(raw.encode(), name="d.json")
    assert {p.field for p in err.value.problems} == {"d.json.examples[0]", "d.json.examples[1].entities[0]"}


def test_broken_yaml_names_the_line() -> None:
    with pytest.raises(BadDataError) as err:
        parse(b"nlu:\n- intent: a\n  examples: [unclosed\n", name="nlu.yml")
    assert "nlu.yml:" in str(err.value)
