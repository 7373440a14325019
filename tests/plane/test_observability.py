"""What the embedded plane tells its users about a run as it happens: the ingress answers the
run ids an event makes, /metrics moves, log lines are JSON carrying the event's trace context
from the trigger to the Job's callbacks, and the audit trail names the event's source."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from support import plane as support_plane
from support.specs import TEST_DATA_PREFIXES, TRAINING_EXAMPLES, make_spec

from jobplane import events as ev
from jobplane import logs, runs, tracing
from jobplane.local.plane import Plane

STANDIN = Path(__file__).with_name("standin_trainer.py")
WAIT = 60.0
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    env = {"JOBPLANE_COMMAND": json.dumps([sys.executable, str(STANDIN), "succeed"]),
           "JOBPLANE_DATA_PREFIXES": ",".join(TEST_DATA_PREFIXES)}
    p = Plane(tmp_path / "data", port=0, env=env, launcher_env={"OMP_NUM_THREADS": "1"}).start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the plane logs at INFO, as the JSON formatter writes it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)


def post(plane: Plane, event: ev.Event) -> requests.Response:
    headers, body = ev.to_http(event)
    return support_plane.api(plane).post(plane.url + "/default/default", data=body, headers=headers, timeout=10)


def scrape(plane: Plane) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = support_plane.api(plane).get(plane.url + "/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_bot_changed_is_answered_with_its_run_which_carries_the_trace_to_the_job_and_back(
    plane: Plane, json_lines: io.StringIO,
) -> None:
    before = scrape(plane)
    data = {"botId": "pizza-bot", "revision": "r1", "trainingData": {"examples": TRAINING_EXAMPLES}}
    event = ev.new_event(ev.BOT_CHANGED, source="/platform/bots", id="evt-1", data=data,
                         extensions={"traceparent": TRACE})

    response = post(plane, event)

    run_id = runs.run_id_for("train-pizza-bot", source="/platform/bots", event_id="evt-1")
    assert response.status_code == 202
    assert response.json() == {"id": "evt-1", "runs": [{"runId": run_id, "specId": "train-pizza-bot", "type": "training"}]}
    assert response.headers["Location"] == f"/v1/runs/{run_id}"
    run = support_plane.final_run(plane, run_id, timeout=WAIT)
    assert run["state"] == "succeeded" and run["traceparent"] == TRACE

    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    callback = next(line for line in lines if line["message"] == f"run {run_id}: {ev.RUN_SUCCEEDED}")
    assert callback["runId"] == run_id and callback["logger"] == "jobplane.handlers.status"
    assert tracing.trace_id(callback["traceparent"]) == tracing.trace_id(TRACE), "the Job's hop of the same trace"
    assert callback["traceparent"] != TRACE and callback["eventSource"] == f"/jobplane/trainer/{run_id}"

    after = scrape(plane)
    moved = {
        ("jobplane_events_total", (("outcome", "ok"), ("type", ev.BOT_CHANGED))),
        ("jobplane_events_total", (("outcome", "ok"), ("type", ev.RUN_SUCCEEDED))),
        ("jobplane_run_transitions_total", (("state", "launched"), ("type", "training"))),
        ("jobplane_run_transitions_total", (("state", "succeeded"), ("type", "training"))),
        ("jobplane_launch_seconds_count", ()),
        ("jobplane_queue_seconds_count", ()),
    }
    assert {key for key in moved if after.get(key, 0.0) > before.get(key, 0.0)} == moved

    [entry] = support_plane.api(plane).get(f"{plane.url}/v1/audit?runId={run_id}", timeout=10).json()["entries"]
    assert (entry["subject"], entry["action"], entry["outcome"], entry["botId"]) == ("/platform/bots", "trigger", "ok",
                                                                                  "pizza-bot")


def test_a_run_requested_is_answered_with_its_run_which_then_exists(plane: Plane) -> None:
    session = support_plane.api(plane)
    assert session.post(plane.url + "/v1/specs", json=make_spec(), timeout=10).status_code == 201
    event = ev.new_event(ev.RUN_REQUESTED, source="/ci/pipeline", id="build-7", data={"specId": "train-test-bot"})

    response = post(plane, event)

    assert response.status_code == 202
    [receipt] = response.json()["runs"]
    assert receipt == {"runId": runs.run_id_for("train-test-bot", source="/ci/pipeline", event_id="build-7"),
                       "specId": "train-test-bot", "type": "training"}
    location = plane.url + response.headers["Location"]
    found = support_plane.wait_for(lambda: session.get(location, timeout=10).status_code == 200, timeout=WAIT,
                                   what="the answered run to exist")
    assert found and session.get(location, timeout=10).json()["id"] == receipt["runId"]
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", session.get(location, timeout=10).json()["traceparent"])


def test_other_events_keep_the_empty_202_and_metrics_need_a_credential(plane: Plane) -> None:
    ping = ev.new_event(ev.PING, source="/apis/v1/namespaces/default/pingsources/x", data={"specId": "nope"})
    response = post(plane, ping)
    assert response.status_code == 202 and response.content == b""
    assert requests.get(plane.url + "/metrics", timeout=10).status_code == 401
