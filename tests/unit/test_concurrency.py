"""Concurrency policies with CronJob's meaning, keyed by spec and bot."""

from __future__ import annotations

from typing import Any

import pytest

from jobplane.concurrency import Decision, decide, same_key


def run(run_id: str, state: str = "running", **fields: Any) -> dict[str, Any]:
    return {"id": run_id, "state": state, "specId": "train-bot", "botId": "bot", **fields}


@pytest.mark.parametrize(
    ("policy", "active", "expected"),
    [
        ("Allow", [], Decision("run")),
        ("Allow", [run("a")], Decision("run")),
        ("Forbid", [], Decision("run")),
        ("Forbid", [run("a")], Decision("skip", reason="ConcurrencyForbid: run a is still active")),
        ("Replace", [], Decision("run")),
        ("Replace", [run("b"), run("a", "launched")],
         Decision("replace", reason="ConcurrencyReplace: superseded by new", supersede=["a", "b"])),
    ],
)
def test_policy_decides_like_cronjob(policy: str, active: list[dict[str, Any]], expected: Decision) -> None:
    assert decide(policy, active=active, exclude="new") == expected


@pytest.mark.parametrize("policy", ["Forbid", "Replace"])
def test_a_redelivered_trigger_does_not_skip_or_supersede_its_own_run(policy: str) -> None:
    assert decide(policy, active=[run("new")], exclude="new") == Decision("run")


def test_terminal_runs_in_the_list_do_not_count_as_active() -> None:
    assert decide("Forbid", active=[run("old", "succeeded"), run("x", "superseded")], exclude="new").action == "run"


def test_requested_runs_count_as_active() -> None:
    assert decide("Forbid", active=[run("old", "requested")], exclude="new").action == "skip"


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="Allow, Forbid, Replace"):
        decide("Sometimes", active=[])


def test_runs_share_a_key_only_with_the_same_spec_and_bot() -> None:
    assert same_key(run("a"), run("b"))
    assert not same_key(run("a"), run("b", botId="other"))
    assert not same_key(run("a"), run("b", specId="other"))
