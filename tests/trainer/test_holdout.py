"""The test split kept out of training: stratified per intent, seeded, never a training
utterance in another spelling, and small intents keep enough to train on."""

from __future__ import annotations

from collections import Counter

from jobplane_trainer.data import Example, normalize
from jobplane_trainer.holdout import KEEP_IN_TRAINING, hold_out


def bot(sizes: dict[str, int]) -> list[Example]:
    return [Example(f"{intent} utterance number {i}", intent) for intent, n in sizes.items() for i in range(n)]


def test_each_intent_gives_a_tenth_and_the_split_is_seeded() -> None:
    examples = bot({"a": 40, "b": 20, "c": 10})

    training, test = hold_out(examples, fraction=0.1, seed=7)

    assert Counter(e.intent for e in test) == {"a": 4, "b": 2, "c": 1}
    assert sorted(training + test, key=examples.index) == examples and not set(training) & set(test)
    assert hold_out(examples, fraction=0.1, seed=7) == (training, test)
    assert hold_out(examples, fraction=0.1, seed=8)[1] != test


def test_tiny_intents_give_nothing_and_none_drops_below_what_training_needs() -> None:
    training, test = hold_out(bot({"two": 2, "three": 3, "four": 4, "five": 5}), fraction=0.5, seed=1)

    assert Counter(e.intent for e in test) == {"four": 1, "five": 2}
    assert all(n >= KEEP_IN_TRAINING for intent, n in Counter(e.intent for e in training).items() if intent != "two")


def test_an_utterance_written_twice_is_never_on_both_sides() -> None:
    examples = [Example(t, "greet") for t in ["Hello", "hello ", "hi", "hey", "good day", "howdy"] * 2]
    examples += bot({"bye": 12})

    for seed in range(20):
        training, test = hold_out(examples, fraction=0.3, seed=seed)
        assert test and not {normalize(e.text) for e in training} & {normalize(e.text) for e in test}


def test_a_zero_fraction_holds_out_nothing() -> None:
    examples = bot({"a": 40, "b": 20})
    assert hold_out(examples, fraction=0.0, seed=1) == (examples, [])
