"""Following a run waits for its promotion decision, so the bot's model is usable on return."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from jobplane import promotion
from jobplane.cli import follow as follow_mod

RUNNING = {"id": "r1", "type": "training", "botId": "acme", "state": "running", "progress": 50}
SUCCEEDED = {**RUNNING, "state": "succeeded", "progress": 100}
DECIDED = {**SUCCEEDED, "promoted": True, "gate": {"decision": "promoted"}}


class Answers:
    """GET /v1/runs/{id} answering the given records in turn (the last one from then on)."""

    def __init__(self, *records: dict[str, Any]) -> None:
        self.records, self.calls = list(records), 0

    def get(self, path: str) -> dict[str, Any]:
        self.calls += 1
        return self.records.pop(0) if len(self.records) > 1 else self.records[0]


def _follow(api: Answers) -> dict[str, Any]:
    return follow_mod.follow(api, "r1", out=Console(file=io.StringIO()), interval=0, sleep=lambda _: None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("run", "settled"), [
    (RUNNING, False), (SUCCEEDED, False), (DECIDED, True),
    ({**SUCCEEDED, "type": "bot-test"}, True),  # nothing to promote
    ({**SUCCEEDED, "botId": None}, True),  # a fan-out's parent run
    ({**RUNNING, "state": "failed"}, True),
])
def test_a_run_is_settled_once_terminal_and_its_promotion_decided(run: dict[str, Any], settled: bool) -> None:
    assert promotion.settled(run) is settled


def test_following_returns_the_record_with_the_promotion_decision() -> None:
    api = Answers(RUNNING, SUCCEEDED, SUCCEEDED, DECIDED)
    assert _follow(api) == DECIDED and api.calls == 4


def test_following_gives_up_waiting_for_a_decision_that_never_comes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow_mod, "SETTLE_SECONDS", 0.0)
    assert _follow(Answers(RUNNING, SUCCEEDED))["state"] == "succeeded"
