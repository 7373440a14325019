"""Delexicalised copies for the intent model: entity values replaced by their type's placeholder."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
import torch

from jobplane import inference
from jobplane_trainer.data import Entity, Example, from_project
from jobplane_trainer.delex import delexicalise, placeholder, with_delexicalised
from jobplane_trainer.train import TrainConfig, intent_stage


def _ex(text: str, intent: str, *spans: tuple[str, str]) -> Example:
    ents = tuple(Entity(text.index(v), text.index(v) + len(v), t, v) for v, t in spans)
    return Example(text, intent, ents)


@pytest.mark.parametrize(("entity_type", "expected"), [
    ("movie_name", "xmovienamex"), ("city", "xcityx"), ("Party-Size", "xpartysizex"), ("timeRange", "xtimerangex"),
])
def test_placeholder_is_one_lower_case_word(entity_type: str, expected: str) -> None:
    assert placeholder(entity_type) == expected
    assert [t.text for t in inference.tokenize(placeholder(entity_type))] == [expected]


@pytest.mark.parametrize(("example", "expected"), [
    (_ex("I want to see Outcast.", "see", ("Outcast", "movie_name")), "I want to see xmovienamex."),
    (_ex("play  hey jude by the beatles", "play", ("hey jude", "song"), ("the beatles", "artist")), "play xsongx by xartistx"),
    (_ex("hello there", "greet"), "hello there"),
])
def test_delexicalise_replaces_each_value_by_its_type(example: Example, expected: str) -> None:
    out = delexicalise(example)
    assert (out.text, out.intent, out.entities) == (expected, example.intent, ())


def test_copies_are_added_for_sentences_with_entities_unless_already_there() -> None:
    examples = [_ex("fly to paris", "fly", ("paris", "city")), _ex("fly to xcityx", "fly"), _ex("hi", "greet"),
                _ex("weather in rome", "weather", ("rome", "city"))]
    out = with_delexicalised(examples)
    assert out[:4] == examples
    assert [(e.text, e.intent) for e in out[4:]] == [("weather in xcityx", "weather")]


def test_intent_model_learns_the_placeholder_features_only_when_asked(bot_data: dict[str, Any]) -> None:
    examples = from_project(bot_data)
    labels = sorted({e.intent for e in examples})
    word = zlib.crc32(b"w:xcityx")
    for on in (True, False):
        _, feats = intent_stage(examples, [], labels=labels, cfg=TrainConfig(delexicalise=on), dev=torch.device("cpu"))
        assert (inference.lookup(feats.vocab, [word])[0] >= 0) == on
