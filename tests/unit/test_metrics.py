"""What the plane counts: state changes once each, queue time at admission, bounded labels."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from jobplane import events as ev
from jobplane import metrics


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_run_state_is_counted_when_it_changes_and_not_when_it_stays() -> None:
    before = sample("jobplane_run_transitions_total", type="bot-test", state="running")
    run = {"type": "bot-test", "state": "launched", "createdAt": "2026-01-01T00:00:00.000Z"}
    running = {**run, "state": "running", "startedAt": "2026-01-01T00:00:30.000Z"}
    queued_count = sample("jobplane_queue_seconds_count")
    queued_sum = sample("jobplane_queue_seconds_sum")

    metrics.run_written(run, running)
    metrics.run_written(running, {**running, "progress": 50})

    assert sample("jobplane_run_transitions_total", type="bot-test", state="running") == before + 1
    assert sample("jobplane_queue_seconds_count") == queued_count + 1
    assert sample("jobplane_queue_seconds_sum") == queued_sum + 30


def test_labels_come_from_closed_sets_only() -> None:
    before = sample("jobplane_events_total", type="other", outcome="rejected")
    metrics.event_handled("com.example.anything.goes", 400)
    metrics.event_handled(ev.BOT_CHANGED, 503)
    metrics.run_written(None, {"type": "x" * 100, "state": "requested"})
    assert sample("jobplane_events_total", type="other", outcome="rejected") == before + 1
    assert sample("jobplane_events_total", type=ev.BOT_CHANGED, outcome="retry") >= 1
    assert sample("jobplane_run_transitions_total", type="other", state="requested") >= 1


def test_launch_latency_is_from_created_to_the_job() -> None:
    before = sample("jobplane_launch_seconds_sum")
    metrics.launched({"createdAt": "2026-01-01T00:00:00.000Z"}, now=datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC))
    assert sample("jobplane_launch_seconds_sum") == before + 2
    assert b"jobplane_launch_seconds_bucket" in metrics.render()
