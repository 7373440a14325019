"""The audit entry builder (pure) and its keys: ids sort newest first, only ids name keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobplane import audit
from jobplane.errors import ConflictError, NotFoundError

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def make(**overrides: object) -> audit.Entry:
    fields: dict[str, object] = {"action": "trigger", "target": "run/r-1", "subject": "alice", "outcome": "ok", "now": NOW}
    return audit.entry(**{**fields, **overrides})  # type: ignore[arg-type]


def test_an_entry_says_who_what_when_and_the_outcome() -> None:
    found = make(spec_id="train-a", bot_id="a", run_id="r-1", detail="POST /v1/specs/train-a/runs")
    assert {k: v for k, v in found.items() if k != "id"} == {
        "time": "2026-01-02T03:04:05.678Z", "subject": "alice", "action": "trigger", "target": "run/r-1",
        "outcome": "ok", "specId": "train-a", "botId": "a", "runId": "r-1", "detail": "POST /v1/specs/train-a/runs"}


@pytest.mark.parametrize("bad", ["../x", "A", "", "a" * 64, "a/b", None])
def test_only_ids_that_can_name_a_key_are_kept(bad: object) -> None:
    found = make(spec_id=bad, bot_id="ok-bot")
    assert "specId" not in found and found["botId"] == "ok-bot"
    assert all(".." not in key for key in audit.keys(found))


def test_an_unknown_action_is_a_bug() -> None:
    with pytest.raises(ValueError):
        make(action="rename")


@pytest.mark.parametrize("err, outcome", [(None, "ok"), (ConflictError("x"), "conflict"),
                                          (NotFoundError("x"), "not_found"), (RuntimeError("x"), "internal")])
def test_the_outcome_is_ok_or_the_errors_code(err: BaseException | None, outcome: str) -> None:
    assert audit.outcome_of(err) == outcome


def test_ids_sort_newest_first_even_within_one_microsecond() -> None:
    ids = [audit.new_id(NOW) for _ in range(5)] + [audit.new_id(NOW + timedelta(seconds=1))]
    assert sorted(ids) == ids[::-1]


def test_an_entry_is_kept_under_all_and_under_each_id_it_names() -> None:
    found = make(spec_id="train-a", run_id="r-1")
    assert [k.rsplit("/", 1)[0] for k in audit.keys(found)] == ["audit/all", "audit/runs/r-1", "audit/specs/train-a"]
    assert {k.rsplit("/", 1)[1] for k in audit.keys(found)} == {found["id"]}
