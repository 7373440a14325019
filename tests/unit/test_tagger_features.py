"""The tagger's sentence-level features in ``jobplane.inference``: runs of capitalised words
(titles, names) and built-in place names (``jobplane.places``)."""

from __future__ import annotations

import pytest

from jobplane import inference


def words(text: str) -> list[str]:
    return [t.text for t in inference.tokenize(text)]


@pytest.mark.parametrize(("text", "want"), [
    ("find Bend It Like Beckham the Musical.", ["", "B", "I", "I", "I", "I", "L", ""]),
    ("add Young at Heart to my playlist", ["", "B", "I", "L", "", "", ""]),
    ("play Thriller now", ["", "U", ""]),
    ("Play some jazz", ["", "", ""]),  # a sentence's first word is capitalised as a sentence
    ("is it cold in the Bay of", ["", "", "", "", "", "U", ""]),  # connectors only between capitals
    ("Book A Table In Paris Tonight", ["", "", "", "", "", ""]),  # mostly capitalised: no runs
    ("weather in Olvey, New Hampshire", ["", "", "U", "", "B", "L"]),
])
def test_capital_runs_mark_titles_and_names(text: str, want: list[str]) -> None:
    assert inference.capital_runs(words(text)) == want


def test_place_names_are_marked_whole_and_state_codes_only_in_capitals() -> None:
    tokens = words("is it raining in New Hampshire or NC or in Guinea-Bissau with us")
    assert list(zip(tokens, inference.place_marks(tokens))) == [
        ("is", []), ("it", []), ("raining", []), ("in", []), ("New", ["pl:B-state"]), ("Hampshire", ["pl:I-state"]),
        ("or", []), ("NC", ["pl:B-state"]), ("or", []), ("in", []), ("Guinea", ["pl:B-country", "pl:B-country"]),
        ("-", ["pl:I-country"]), ("Bissau", ["pl:I-country"]), ("with", []), ("us", [])]
    lower = words("drive to in and me")  # IN and ME are state codes, in and me are words
    assert inference.place_marks(lower) == [[], [], [], [], []]


def test_token_features_hash_the_runs_and_places_once_each() -> None:
    tokens = words("play Hey Jude now in Georgia")
    plain = inference.token_features(["play", "hey", "jude", "now", "in", "somewhere"])
    feats = inference.token_features(tokens)
    assert inference._hash("cap:B") in feats[1] and inference._hash("cap:L") in feats[2]
    assert inference._hash("cap:U") in feats[5]
    assert feats[5].count(inference._hash("pl:B-country")) == 1 and inference._hash("pl:B-state") in feats[5]  # Georgia: both
    assert not any(inference._hash("cap:B") in f or inference._hash("pl:B-state") in f for f in plain)
