"""Run-record rules: identity, lifecycle, and merging of callback events (pure)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from jobplane import events as ev
from jobplane import runs

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def make_run(**overrides: object) -> runs.Run:
    spec = {"id": "train-bot-1", "type": "training", "params": {"botId": "bot-1"}}
    trigger = {"type": ev.BOT_CHANGED, "source": "/platform", "id": "e1", "subject": "bot-1"}
    run = runs.new_run(spec=spec, trigger=trigger, requested_by="test", now=NOW)
    run.update(overrides)
    return run


def progress(seq: int, pct: int, **extra: object) -> dict[str, object]:
    return {"seq": seq, "progress": pct, "phase": "training", **extra}


def test_run_id_is_deterministic_per_trigger_and_a_dns_label() -> None:
    a = runs.run_id_for("train-bot-1", source="/s", event_id="1")
    assert a == runs.run_id_for("train-bot-1", source="/s", event_id="1")
    assert a != runs.run_id_for("train-bot-1", source="/s", event_id="2")
    assert a != runs.run_id_for("train-bot-1", source="/t", event_id="1")
    long_id = runs.run_id_for("x" * 63, source="/s", event_id="1")
    assert len(long_id) <= 63 and DNS_LABEL.match(long_id)


def test_new_run_starts_requested_without_secrets() -> None:
    run = make_run()
    assert run["state"] == "requested" and run["progress"] == 0 and run["botId"] == "bot-1"
    assert not any("token" in key.lower() for key in run)


@pytest.mark.parametrize(
    ("start", "target", "expected"),
    [
        ("requested", "launched", "launched"),
        ("launched", "running", "running"),
        ("running", "launched", "running"),  # never backwards
        ("running", "succeeded", "succeeded"),
        ("succeeded", "failed", "succeeded"),  # terminal is sticky
        ("failed", "running", "failed"),
        ("cancelled", "succeeded", "cancelled"),
        ("requested", "skipped", "skipped"),
        ("launched", "queued", "queued"),
        ("queued", "launched", "queued"),
        ("queued", "running", "running"),
        ("running", "queued", "running"),  # only an eviction goes back: runs.requeue
        ("queued", "cancelled", "cancelled"),
        ("cancelled", "queued", "cancelled"),
    ],
)
def test_transition_moves_forward_only(start: str, target: str, expected: str) -> None:
    assert runs.transition(make_run(state=start), target, now=NOW)["state"] == expected


def test_terminal_transition_stamps_finish_and_reason() -> None:
    run = runs.transition(make_run(state="running"), "failed", reason="OOMKilled", now=NOW)
    assert run["finishedAt"] and run["reason"] == "OOMKilled"


def test_progress_is_monotonic_and_ignores_duplicates_and_stale_events() -> None:
    run = runs.apply_event(make_run(), type=ev.RUN_PROGRESS, data=progress(2, 40), now=NOW)
    assert run is not None and run["state"] == "running" and run["progress"] == 40
    assert runs.apply_event(run, type=ev.RUN_PROGRESS, data=progress(2, 40), now=NOW) is None
    assert runs.apply_event(run, type=ev.RUN_PROGRESS, data=progress(1, 90), now=NOW) is None
    later = runs.apply_event(run, type=ev.RUN_PROGRESS, data=progress(3, 30), now=NOW)
    assert later is not None and later["progress"] == 40 and later["seq"] == 3


def test_events_after_a_terminal_state_change_nothing() -> None:
    done = runs.apply_event(
        make_run(state="running"), type=ev.RUN_SUCCEEDED, data={"metrics": {"accuracy": 0.9}}, now=NOW
    )
    assert done is not None and done["state"] == "succeeded" and done["progress"] == 100
    for type_, data in [(ev.RUN_PROGRESS, progress(99, 50)), (ev.RUN_FAILED, {"reason": "x"})]:
        assert runs.apply_event(done, type=type_, data=data, now=NOW + timedelta(seconds=1)) is None


def test_failed_event_records_reason_and_message() -> None:
    run = runs.apply_event(
        make_run(state="running"), type=ev.RUN_FAILED, data={"reason": "BadData", "message": "m"}, now=NOW
    )
    assert run is not None and (run["state"], run["reason"], run["message"]) == ("failed", "BadData", "m")


def test_only_a_running_run_is_requeued_and_it_keeps_its_progress() -> None:
    running = make_run(state="running", progress=55, seq=7)
    back = runs.requeue(running, reason="Preempted", now=NOW)
    assert (back["state"], back["reason"], back["progress"], back["seq"], back["preemptions"]) == (
        "queued", "Preempted", 55, 7, 1)
    for state in ("launched", "queued", "succeeded", "cancelled"):
        run = make_run(state=state)
        assert runs.requeue(run, reason="Preempted", now=NOW) == run


def test_progress_of_a_queued_run_means_it_runs() -> None:
    new = runs.apply_event(make_run(state="queued"), type=ev.RUN_PROGRESS, data=progress(1, 5), now=NOW)
    assert new is not None and new["state"] == "running" and new["startedAt"]
    assert runs.apply_event(make_run(state="queued"), type=ev.RUN_LAUNCHED, data={}, now=NOW) is None


def test_a_failed_bot_test_keeps_its_figures_and_artifacts() -> None:
    figures = {"accuracy": 0.7, "comparison": {"worse": {"intents": {"greet": -0.2}}}}
    run = runs.apply_event(make_run(state="running"), type=ev.RUN_FAILED, now=NOW, data={
        "reason": "Regression", "message": "m", "metrics": figures, "artifacts": {"botTest": "file:///b"}})
    assert run is not None and (run["reason"], run["metrics"], run["artifacts"]) == ("Regression", figures, {"botTest": "file:///b"})


@pytest.mark.parametrize("target", ["running", "succeeded"])
def test_a_run_that_leaves_the_queue_drops_the_reason_it_waited_for(target: str) -> None:
    queued = {**make_run(state="queued"), "reason": "WaitingForQuota",
              "queue": {"name": "training", "since": "2026-01-01T00:00:00.000Z"}}
    moved = runs.transition(queued, target, now=NOW)
    assert moved["state"] == target and "reason" not in moved and moved["queue"]["name"] == "training"
    assert runs.transition(queued, "failed", reason="ExceedsMaxQuota", now=NOW)["reason"] == "ExceedsMaxQuota"
