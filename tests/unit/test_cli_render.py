"""What the CLI shows people (pure): durations, a prediction with its entities, a run's summary."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from rich.console import Console

from jobplane.cli.render import duration, highlighted, prediction, run_summary


def shown(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(renderable)
    return out.getvalue()


@pytest.mark.parametrize(("seconds", "text"), [(0, "0.0s"), (9.94, "9.9s"), (250, "4m10s"), (7500, "2h05m")])
def test_durations_read_as_seconds_minutes_or_hours(seconds: float, text: str) -> None:
    assert duration(seconds) == text


ANSWER = {"intent": "transfer_money", "confidence": 0.87, "fallback": False,
          "entities": [{"entity": "amount", "value": "5 dollars", "start": 5, "end": 14}],
          "ranking": [{"intent": "transfer_money", "confidence": 0.87}, {"intent": "balance", "confidence": 0.1}],
          "model": {"runId": "train-acme-1"}}


def test_a_prediction_shows_intent_confidence_entities_and_the_model() -> None:
    text = shown(prediction("send 5 dollars to bob", ANSWER))
    assert "transfer_money (0.87)" in text and "amount = '5 dollars'  [5:14]" in text
    assert "balance (0.10)" in text and "run train-acme-1" in text


def test_entities_are_highlighted_where_they_are_in_the_text() -> None:
    styled = highlighted("send 5 dollars to bob", ANSWER["entities"])  # type: ignore[arg-type]
    assert [(s.start, s.end) for s in styled.spans] == [(5, 14)]
    assert highlighted("short", [{"start": 3, "end": 99}]).spans == []  # out of range: left plain


def test_a_run_summary_leaves_out_what_the_record_does_not_have() -> None:
    run = {"id": "r1", "state": "running", "progress": 40, "phase": "training", "eta": 65.0,
           "createdAt": "2026-01-01T12:00:00.000Z", "metrics": {"accuracy": 0.9, "perIntent": {}}}
    text = shown(run_summary(run, now=datetime(2026, 1, 1, 12, 1, 0, tzinfo=UTC)))
    assert "40%  training" in text and "eta       1m05s" in text and "took      1m00s" in text
    assert "accuracy  0.900" in text and "perIntent" not in text and "finished" not in text


def test_the_eta_is_the_trainers_own_else_an_estimate_marked_with_a_tilde() -> None:
    from rich.progress import Progress

    from jobplane.cli.follow import EtaColumn

    clock = [0.0]
    progress = Progress(EtaColumn(), console=Console(file=io.StringIO()), auto_refresh=False, get_time=lambda: clock[0])
    told = progress.add_task("t", total=100, completed=40, eta=65.0)
    guessed = progress.add_task("g", total=100, eta=None)
    column = EtaColumn()
    assert column.render(progress.tasks[told]).plain == "eta 1m05s"
    assert column.render(progress.tasks[guessed]).plain == ""  # nothing to estimate from yet
    for now, done in ((1.0, 10), (11.0, 20)):
        clock[0] = now
        progress.update(guessed, completed=done)
    assert column.render(progress.tasks[guessed]).plain == "eta ~1m20s"  # 1 %/s, 80 % to go
    progress.update(told, completed=100)
    assert column.render(progress.tasks[told]).plain == ""  # done: no eta
