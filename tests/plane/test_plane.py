"""The whole embedded plane end to end over real HTTP: broker ingress → launch → a local Job
(a stand-in trainer process) → callbacks through the broker → status → the run record."""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import UTC, datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support import plane as support_plane
from support.specs import TEST_DATA_PREFIXES, TRAINING_EXAMPLES, make_spec

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs
from jobplane.local.plane import Plane, builtin_specs_dir

STANDIN = Path(__file__).with_name("standin_trainer.py")
WAIT = 60.0


def start_plane(data_dir: Path, *, mode: str = "succeed") -> Plane:
    env = {"JOBPLANE_COMMAND": json.dumps([sys.executable, str(STANDIN), mode]),
           "JOBPLANE_DATA_PREFIXES": ",".join(TEST_DATA_PREFIXES)}
    return Plane(data_dir, port=0, env=env, launcher_env={"OMP_NUM_THREADS": "1"}).start()


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    p = start_plane(tmp_path / "data")
    try:
        yield p
    finally:
        p.stop()


def post(plane: Plane, event: ev.Event, *, path: str = "/default/default", structured: bool = False) -> requests.Response:
    headers, body = ev.to_http(event, structured=structured)
    return support_plane.api(plane).post(plane.url + path, data=body, headers=headers, timeout=10)


def bot_changed(*, id: str = "evt-1", bot: str = "pizza-bot") -> ev.Event:
    data = {"botId": bot, "revision": "r1", "trainingData": {"examples": TRAINING_EXAMPLES}}
    return ev.new_event(ev.BOT_CHANGED, source="/platform/bots", id=id, subject=bot, data=data)


def run_for(plane: Plane, event: ev.Event, spec_id: str) -> str:
    return runs.run_id_for(spec_id, source=event.source, event_id=event.id)


def final_run(plane: Plane, run_id: str) -> dict[str, Any]:
    return support_plane.final_run(plane, run_id, timeout=WAIT)


def store_keys(plane: Plane) -> list[str]:
    return sorted(plane.store.list(""))


def written_keys(plane: Plane) -> list[str]:
    """What the plane stored beyond the built-in specs it seeds at start (and the audit trail,
    which keeps refused attempts too)."""
    seeded = {c.spec_key(p.stem) for p in builtin_specs_dir().glob("*.json")}
    return [k for k in store_keys(plane) if k not in seeded and not k.startswith("audit/")]


@pytest.mark.slow
def test_a_bot_changed_event_ends_in_a_succeeded_run_with_metrics_and_artifacts(plane: Plane) -> None:
    event = bot_changed()
    assert post(plane, event).status_code == 202

    run = final_run(plane, run_for(plane, event, "train-pizza-bot"))
    assert run["state"] == "succeeded", run
    assert run["metrics"]["accuracy"] == 0.9 and run["progress"] == 100
    assert run["job"]["name"] == run["id"] and run["trigger"]["type"] == ev.BOT_CHANGED
    assert f"runs/{run['id']}/artifacts/metrics.json" in store_keys(plane)
    assert "bots/pizza-bot/data/r1.json" in store_keys(plane)


@pytest.mark.slow
def test_the_same_cloudevent_posted_five_times_makes_one_run_and_one_job(plane: Plane) -> None:
    event = bot_changed(id="dup-1")
    statuses = [post(plane, event, structured=i % 2 == 1).status_code for i in range(5)]
    assert statuses == [202] * 5
    assert plane.broker.flush(timeout=WAIT)

    run_id = run_for(plane, event, "train-pizza-bot")
    assert [r["id"] for r in runs.list_runs(plane.store, spec_id="train-pizza-bot")] == [run_id]
    assert [j.name for j in plane.launcher.list({c.LABEL_SPEC_ID: "train-pizza-bot"})] == [run_id]
    assert final_run(plane, run_id)["state"] == "succeeded"


def test_a_malformed_cloudevent_gets_400_with_the_reason_and_nothing_is_written(plane: Plane) -> None:
    response = requests.post(
        plane.url + "/default/default", data=b'{"botId": "x"}',
        headers={"Content-Type": "application/json", "ce-specversion": "1.0", "ce-type": ev.BOT_CHANGED},
        timeout=10,
    )

    assert response.status_code == 400
    assert "missing required attribute" in response.text and "id" in response.text
    assert plane.broker.flush(timeout=WAIT) and written_keys(plane) == []


def test_an_invalid_spec_gets_400_listing_every_field_error_and_nothing_is_written(plane: Plane) -> None:
    bad = make_spec(id="Bad_Id", type="juggling", priority="urgent", timeoutSeconds=-1)
    event = ev.new_event(ev.RUN_REQUESTED, source="/tests", data={"spec": bad})
    response = post(plane, event, path="/_functions/jobplane-launch")

    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert {"spec.id", "spec.type", "spec.priority", "spec.timeoutSeconds"} <= fields
    assert written_keys(plane) == []


def test_an_invalid_spec_through_the_broker_makes_no_run_and_no_job(plane: Plane) -> None:
    event = ev.new_event(ev.RUN_REQUESTED, source="/tests", data={"spec": make_spec(priority="urgent")})
    assert post(plane, event).status_code == 202
    assert plane.broker.flush(timeout=WAIT)

    assert [k for k in written_keys(plane) if k.startswith(("runs/", "specs/", "index/"))] == []
    assert plane.launcher.list({c.LABEL_MANAGED_BY: c.MANAGED_BY}) == []


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["crash", "silent"])
def test_a_trainer_that_crashes_mid_run_leaves_its_run_failed_with_the_reason(tmp_path: Path, mode: str) -> None:
    spec = make_spec(id="train-crashy", retries=1, params={"botId": "crashy"})
    with start_plane(tmp_path / "data", mode=mode) as plane:
        event = ev.new_event(ev.RUN_REQUESTED, source="/tests", id=f"crash-{mode}", data={"spec": spec})
        assert post(plane, event).status_code == 202

        run = final_run(plane, run_for(plane, event, "train-crashy"))
    assert run["state"] == "failed", run
    assert run["reason"] == "BackoffLimitExceeded"
    assert run["finishedAt"] and run["message"].startswith("2 attempts failed; ")
    reported = "last: RuntimeError: simulated crash; " in run["message"]
    assert reported == (mode == "crash"), run["message"]  # the trainer's own words, when it sent any


@pytest.mark.slow
def test_a_trainer_that_crashes_once_and_then_succeeds_on_the_retry_leaves_its_run_succeeded(tmp_path: Path) -> None:
    spec = make_spec(id="train-flaky", retries=1, params={"botId": "flaky"})
    with start_plane(tmp_path / "data", mode="flaky") as plane:
        event = ev.new_event(ev.RUN_REQUESTED, source="/tests", id="flaky-1", data={"spec": spec})
        assert post(plane, event).status_code == 202

        run = final_run(plane, run_for(plane, event, "train-flaky"))
        attempts = sorted(p.name for p in (plane.data_dir / "jobs" / run["id"]).glob("attempt-*.log"))
    assert (run["state"], run["reason"]) == ("succeeded", None), run
    assert attempts == ["attempt-1.log", "attempt-2.log"]
    assert run["message"] == "epoch 1/2 (retry)"  # the retry's progress counted: its seq went on past the crash's


@pytest.mark.slow
def test_a_run_triggered_through_the_api_goes_through_the_broker_and_succeeds(plane: Plane) -> None:
    spec = make_spec(params={"trainingData": {"examples": TRAINING_EXAMPLES}})
    http = support_plane.api(plane)
    assert http.post(f"{plane.url}/v1/specs", json=spec, timeout=10).status_code == 201

    response = http.post(f"{plane.url}/v1/specs/{spec['id']}/runs", json={}, timeout=10)
    assert response.status_code == 202, response.text
    run = final_run(plane, response.json()["runId"])
    assert run["state"] == "succeeded" and run["trigger"]["type"] == ev.RUN_REQUESTED
    listed = http.get(f"{plane.url}/v1/specs/{spec['id']}/runs", timeout=10).json()["runs"]
    assert [r["id"] for r in listed] == [run["id"]]


@pytest.mark.slow
def test_a_spec_with_a_schedule_is_run_by_the_local_cron_as_a_ping(plane: Plane) -> None:
    spec = make_spec(id="train-nightly", schedule="30 2 * * *")
    assert support_plane.api(plane).post(f"{plane.url}/v1/specs", json=spec, timeout=10).status_code == 201

    plane.cron.run_pending(datetime(2026, 3, 1, 2, 29, 30, tzinfo=UTC))
    fired = plane.cron.run_pending(datetime(2026, 3, 1, 2, 30, 5, tzinfo=UTC))
    (ping,) = [e for e in fired if e.source.endswith("/pingsources/jobplane-spec-train-nightly")]

    run = final_run(plane, runs.run_id_for("train-nightly", source=ping.source, event_id=ping.id))
    assert run["state"] == "succeeded" and run["trigger"]["type"] == ev.PING


def test_built_in_specs_are_stored_once_and_never_overwrite_a_users_edit(tmp_path: Path) -> None:
    from jobplane.local.plane import seed_specs
    from jobplane.store import open_store

    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "nightly.json").write_text(json.dumps(make_spec(id="nightly", schedule="0 3 * * *")))
    (specs / "broken.json").write_text(json.dumps({"id": "Broken"}))
    store = open_store((tmp_path / "store").as_uri())

    assert seed_specs(store, specs) == ["nightly"]
    store.write(c.spec_key("nightly"), json.dumps(make_spec(id="nightly", description="edited")).encode())
    assert seed_specs(store, specs) == []
    assert json.loads(store.read(c.spec_key("nightly")).data)["description"] == "edited"
    assert sorted(store.list("")) == ["specs/nightly.json"]


@pytest.mark.slow
def test_the_embedded_plane_runs_on_gcs_when_the_settings_say_so(tmp_path: Path, gcs_store_url: str) -> None:
    env = {
        "JOBPLANE_STORE": gcs_store_url,
        "STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"],
        "JOBPLANE_COMMAND": json.dumps([sys.executable, str(STANDIN), "succeed"]),
    }
    with Plane(tmp_path / "data", port=0, env=env).start() as plane:
        event = bot_changed()
        assert post(plane, event).status_code == 202
        run = final_run(plane, run_for(plane, event, "train-pizza-bot"))
        keys = store_keys(plane)
    assert run["state"] == "succeeded" and plane.store.url == gcs_store_url
    assert f"runs/{run['id']}/artifacts/metrics.json" in keys and "bots/pizza-bot/data/r1.json" in keys
    assert not (tmp_path / "data" / "store").exists()


def test_bad_settings_and_a_missing_eventing_dir_are_reported_clearly(tmp_path: Path) -> None:
    from jobplane.errors import PermanentError, ValidationError

    with pytest.raises(ValidationError, match="JOBPLANE_STORE"):
        Plane(tmp_path / "data", env={"JOBPLANE_STORE": "ftp://example/x"})
    with pytest.raises(PermanentError, match="eventing"):
        Plane(tmp_path / "data", env={}, eventing_dir=tmp_path / "nowhere")


@pytest.mark.slow
def test_the_real_trainer_on_data_that_can_never_train_fails_the_run_once_with_its_reason(tmp_path: Path) -> None:
    bad = {"examples": [{"text": "hello", "intent": "greet"}, {"text": "hello", "intent": "bye"}]}
    with Plane(tmp_path / "data", env={}).start() as plane:  # the default command: the real trainer
        plane.store.write("bots/bad-bot/uploads/bad.json", json.dumps(bad).encode())
        event = ev.new_event(ev.BOT_CHANGED, source="/platform", id="bad-1", data={
            "botId": "bad-bot", "revision": "r1", "trainingData": {"uri": plane.store.uri("bots/bad-bot/uploads/bad.json")}})
        assert post(plane, event).status_code == 202

        run = final_run(plane, run_for(plane, event, "train-bad-bot"))
        attempts = sorted(p.name for p in (plane.data_dir / "jobs" / run["id"]).glob("attempt-*.log"))
    assert run["state"] == "failed" and run["reason"] == "BadData", run
    assert "hello" in run["message"]
    assert attempts == ["attempt-1.log"]  # podFailurePolicy: the bad-data exit code is never retried


def test_a_plane_started_twice_serves_once_and_its_stop_ends_every_thread(tmp_path: Path) -> None:
    def serving() -> int:
        return sum(t.name == "jobplane-http" for t in threading.enumerate())

    before = serving()
    with Plane(tmp_path / "data", port=0, env={}).start() as plane:  # __enter__ starts it again
        assert serving() == before + 1
        assert plane.start() is plane
    assert serving() == before
