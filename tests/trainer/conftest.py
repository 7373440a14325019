"""Small real training data for the trainer's tests: a generated bot of sample-bot size (8
intents × ~25 utterances, with entities), and the trained result shared by a session."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

_SLOTS: dict[str, list[str]] = {
    "city": ["paris", "berlin", "new york", "tokyo", "lisbon", "rome", "madrid", "oslo", "cairo", "lima"],
    "amount": ["20 dollars", "five euros", "100 pounds", "300 dollars", "ten bucks", "45 euros"],
    "date": ["tomorrow", "next monday", "tonight", "on friday", "this weekend", "in two days"],
    "song": ["yesterday", "bohemian rhapsody", "hey jude", "imagine", "thriller", "halo"],
}
_TEMPLATES: dict[str, list[str]] = {
    "book_flight": ["book a flight to {city} {date}", "i need a plane ticket to {city}", "fly me to {city} {date}",
                    "find flights to {city}", "get me on a flight to {city} {date}"],
    "weather": ["what's the weather in {city} {date}", "will it rain in {city}", "forecast for {city} {date}",
                "is it sunny in {city}", "how cold is it in {city} {date}"],
    "transfer": ["send {amount} to my savings", "transfer {amount} to mom", "move {amount} to checking {date}",
                 "pay {amount} to john", "wire {amount} to my landlord {date}"],
    "play_music": ["play {song}", "put on {song} please", "i want to hear {song}", "start playing {song}",
                   "can you play {song} by the beatles"],
    "greet": ["hello there", "hi", "good morning", "hey bot", "hello", "hi there friend", "good evening to you"],
    "goodbye": ["bye", "see you later", "goodbye for now", "talk to you soon", "bye bye", "see ya", "catch you later"],
    "thanks": ["thank you", "thanks a lot", "many thanks", "thanks so much", "cheers mate", "much appreciated"],
    "balance": ["what's my balance", "how much money do i have", "show my account balance", "check my balance {date}",
                "how much is in my savings account"],
}
_EXTRA = ["please", "now", "quickly", "for me", "asap", "ok", "thanks", "right away", "if you can", "today"]


def make_bot(*, per_intent: int = 25, seed: int = 3) -> dict[str, Any]:
    """``{"examples": [...]}`` in the project format, deterministic for a seed."""
    rng = random.Random(seed)
    examples: list[dict[str, Any]] = []
    seen: set[str] = set()
    for intent, templates in _TEMPLATES.items():
        n = 0
        while n < per_intent:
            ex = _fill(rng.choice(templates), rng, intent)
            if rng.random() < 0.5:
                ex["text"] += " " + rng.choice(_EXTRA)
            if ex["text"] in seen:
                if len(seen) > 10 * per_intent * len(_TEMPLATES):
                    break
                seen.add(ex["text"] + "?")
                continue
            seen.add(ex["text"])
            examples.append(ex)
            n += 1
    return {"examples": examples}


def _fill(template: str, rng: random.Random, intent: str) -> dict[str, Any]:
    text, ents = "", []
    parts = template.split("{")
    text = parts[0]
    for part in parts[1:]:
        slot, rest = part.split("}", 1)
        value = rng.choice(_SLOTS[slot])
        ents.append({"start": len(text), "end": len(text) + len(value), "entity": slot, "value": value})
        text += value + rest
    out: dict[str, Any] = {"text": text, "intent": intent}
    if ents:
        out["entities"] = ents
    return out


@pytest.fixture(scope="session")
def bot_data() -> dict[str, Any]:
    return make_bot()


@pytest.fixture(scope="session")
def trained(bot_data: dict[str, Any]) -> Any:
    """The generated bot trained once per session (a ``TrainResult``)."""
    from jobplane_trainer.data import from_project
    from jobplane_trainer.train import TrainConfig, train

    return train(from_project(bot_data), cfg=TrainConfig(max_epochs=20, tagger_epochs=15, min_steps=60, tagger_min_steps=100, threads=1))
