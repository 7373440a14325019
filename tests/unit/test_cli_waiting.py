"""What the CLI prints of a run that waits in a queue (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from jobplane.cli import waiting

NOW = datetime(2026, 1, 1, 12, 4, 10, tzinfo=UTC)


def test_a_queued_run_shows_its_reason_queue_position_and_wait() -> None:
    run = {"state": "queued", "reason": "WaitingForQuota",
           "queue": {"name": "training", "position": 2, "since": "2026-01-01T12:00:00.000Z"}}
    assert waiting(run, now=NOW) == "WaitingForQuota in training, #3, waited 4m10s"


def test_what_is_unknown_is_left_out() -> None:
    assert waiting({"state": "queued", "reason": "Suspended", "queue": {"name": None, "position": None}}, now=NOW) == "Suspended"
