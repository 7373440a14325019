"""What the plane counts, in Prometheus' text format (``prometheus-client``), served at ``/metrics``.

Counters live in the process that counts them: the embedded plane runs every function in one
process, so its ``/metrics`` shows them all; on Knative each function is its own pod (and may
run several replicas), so each pod counts what it handled and Prometheus sums across pods
(``sum by (type, state) (rate(jobplane_run_transitions_total[5m]))``). Labels take values from
closed sets only (known event types, job types, run states, outcomes), never ids, so no
request can grow the number of series.

- ``jobplane_events_total{type, outcome}``: CloudEvents an event endpoint handled
  (``ok``, ``rejected``: 4xx, ``retry``: 5xx, ``malformed``: not a CloudEvent);
- ``jobplane_run_transitions_total{type, state}``: run records written in a new state;
- ``jobplane_launch_seconds``: from a run's ``createdAt`` to its Job created;
- ``jobplane_queue_seconds``: from ``createdAt`` to admitted (the run first ``running``);
- ``jobplane_dead_letters_total{type}``: events the broker gave up on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest

from . import events as ev
from .settings import JOB_TYPES

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
KNOWN_TYPES: Final = frozenset({
    ev.BOT_CHANGED, ev.PING, ev.RUN_REQUESTED, ev.RUN_LAUNCHED, ev.RUN_PROGRESS, ev.RUN_SUCCEEDED, ev.RUN_FAILED,
    ev.MODEL_READY,
})
OTHER: Final = "other"
OUTCOMES: Final = ("ok", "rejected", "retry", "malformed")
LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
QUEUE_BUCKETS: Final = (0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600)

EVENTS: Final = Counter("jobplane_events", "CloudEvents handled by an event endpoint, by type and outcome.",
                        ["type", "outcome"])
RUN_TRANSITIONS: Final = Counter("jobplane_run_transitions", "Run records written in a new state, by job type.",
                                 ["type", "state"])
LAUNCH_SECONDS: Final = Histogram("jobplane_launch_seconds", "From a run's createdAt to its Job created.",
                                  buckets=LATENCY_BUCKETS)
QUEUE_SECONDS: Final = Histogram("jobplane_queue_seconds", "From a run's createdAt to admitted (first running).",
                                 buckets=QUEUE_BUCKETS)
DEAD_LETTERS: Final = Counter("jobplane_dead_letters", "Events the broker gave up on, by type.", ["type"])


def event_type(type_: str) -> str:
    return type_ if type_ in KNOWN_TYPES else OTHER


def job_type(type_: object) -> str:
    return str(type_) if type_ in JOB_TYPES else OTHER


def event_handled(type_: str, status: int) -> None:
    """An event endpoint answered ``status`` for an event of ``type_``."""
    outcome = "ok" if status < 400 else "rejected" if status < 500 else "retry"
    EVENTS.labels(event_type(type_), outcome).inc()


def event_malformed() -> None:
    EVENTS.labels(OTHER, "malformed").inc()


def run_written(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> None:
    """A run record was written: count a new state; the first ``running`` ends the queue time."""
    state = str(new.get("state"))
    if old is not None and old.get("state") == state:
        return
    RUN_TRANSITIONS.labels(job_type(new.get("type")), state).inc()
    if state == "running" and not (old or {}).get("startedAt"):
        waited = _seconds_between(new.get("createdAt"), new.get("startedAt"))
        if waited is not None:
            QUEUE_SECONDS.observe(waited)


def launched(run: Mapping[str, Any], *, now: datetime) -> None:
    """The run's Job was created at ``now``."""
    waited = _seconds_between(run.get("createdAt"), now)
    if waited is not None:
        LAUNCH_SECONDS.observe(waited)


def dead_lettered(type_: str) -> None:
    DEAD_LETTERS.labels(event_type(type_)).inc()


def render(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The process's metrics in the Prometheus text exposition format."""
    return bytes(generate_latest(registry))


def _seconds_between(start: object, end: object) -> float | None:
    try:
        begin = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        finish = end if isinstance(end, datetime) else datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (finish - begin).total_seconds())
