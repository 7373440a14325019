"""The launch function through its real functions-framework app over HTTP, with real
CloudEvents in binary and structured mode and an in-memory launcher."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from support.fakes import FakeLauncher
from support.servers import serve_wsgi
from support.specs import TEST_DATA_PREFIXES, TRAINING_EXAMPLES, make_spec

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs, runtime
from jobplane.app import create_function_app
from jobplane.errors import PermanentError, UnavailableError
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store import open_store
from jobplane.store.base import ObjectStore


@dataclass
class Launch:
    url: str
    store: ObjectStore
    launcher: FakeLauncher

    def post(self, event: ev.Event, *, structured: bool = False) -> requests.Response:
        headers, body = ev.to_http(event, structured=structured)
        return requests.post(self.url, data=body, headers=headers, timeout=10)

    def keys(self) -> list[str]:
        """The plane's state; the audit trail (which keeps refused attempts too) aside."""
        return sorted(k for k in self.store.list("") if not k.startswith("audit/"))

    def put_spec(self, spec: dict[str, Any]) -> None:
        self.store.write(c.spec_key(spec["id"]), json.dumps(spec).encode())


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    store = open_store((tmp_path / "store").as_uri())
    launcher = FakeLauncher()
    settings = Settings(
        data_prefixes=TEST_DATA_PREFIXES,
        store_url=store.url, sink="http://127.0.0.1:9/default/default", callback_key=b"k" * 32, command=("true",)
    )
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher, send=lambda e: None))
    app = create_function_app("launch")
    with serve_wsgi(app) as url:
        yield Launch(url=url, store=store, launcher=launcher)


def bot_changed(*, id: str = "evt-1", bot: str = "pizza-bot", revision: str = "r1", **data: Any) -> ev.Event:
    body = {"botId": bot, "revision": revision, "trainingData": {"examples": TRAINING_EXAMPLES}, **data}
    return ev.new_event(ev.BOT_CHANGED, source="/platform/bots", id=id, subject=bot, data=body)


def reply_of(response: requests.Response) -> ev.Event:
    assert response.status_code == 200, response.text
    return ev.from_http(dict(response.headers), response.content)


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
def test_bot_changed_launches_a_job_and_replies_run_launched(launch: Launch, structured: bool) -> None:
    reply = reply_of(launch.post(bot_changed(), structured=structured))

    assert reply.type == ev.RUN_LAUNCHED and reply.source == "/jobplane/launch"
    run = runs.get_run(launch.store, reply.subject or "")
    assert run["state"] == "launched" and run["specId"] == "train-pizza-bot" and run["botId"] == "pizza-bot"
    assert run["job"] == {"name": run["id"], "namespace": "default"}
    assert run["trigger"]["source"] == "/platform/bots" and run["trigger"]["id"] == "evt-1"
    assert reply.data["id"] == run["id"] and list(launch.launcher.jobs) == [run["id"]]


def test_inline_training_data_is_stored_and_the_job_gets_only_its_uri(launch: Launch) -> None:
    reply_of(launch.post(bot_changed(revision="r7")))

    data_key = "bots/pizza-bot/data/r7.json"
    assert json.loads(launch.store.read(data_key).data)["examples"] == TRAINING_EXAMPLES
    (job,) = launch.launcher.jobs.values()
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(env[c.ENV_PARAMS])["trainingData"] == {"uri": launch.store.uri(data_key)}
    assert "book a table" not in json.dumps(job)


def test_first_bot_changed_creates_the_training_spec_and_later_ones_point_it_at_their_data_superseding_the_active_run(
    launch: Launch,
) -> None:
    reply_of(launch.post(bot_changed(id="evt-1", revision="r1")))
    spec_before = json.loads(launch.store.read(c.spec_key("train-pizza-bot")).data)
    second = reply_of(launch.post(bot_changed(id="evt-2", revision="r2")))
    reply_of(launch.post(bot_changed(id="evt-2", revision="r2")))  # a redelivery changes nothing more

    spec_after = json.loads(launch.store.read(c.spec_key("train-pizza-bot")).data)
    r2 = {"uri": launch.store.uri("bots/pizza-bot/data/r2.json")}
    assert spec_after == {**spec_before, "params": {**spec_before["params"], "trainingData": r2}}
    run = runs.get_run(launch.store, second.subject or "")
    assert run["params"]["trainingData"] == {"uri": launch.store.uri("bots/pizza-bot/data/r2.json")}
    older = runs.list_runs(launch.store, spec_id="train-pizza-bot")[1]
    assert older["state"] == "superseded" and launch.launcher.cancelled == [older["id"]]


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
def test_the_same_event_delivered_five_times_makes_one_run_and_one_job(launch: Launch, structured: bool) -> None:
    event = bot_changed()
    replies = [reply_of(launch.post(event, structured=structured)) for _ in range(5)]

    assert {r.subject for r in replies} == {replies[0].subject}
    assert {r.id for r in replies} == {replies[0].id}
    assert list(launch.launcher.jobs) == [replies[0].subject]
    assert set(launch.launcher.launch_calls) == {replies[0].subject}  # a redelivery re-asks: "exists"
    assert len(runs.list_runs(launch.store, spec_id="train-pizza-bot")) == 1


def test_a_malformed_cloudevent_gets_400_with_the_reason_and_writes_nothing(launch: Launch) -> None:
    response = requests.post(
        launch.url, data=b"{}", headers={"Content-Type": "application/json", "ce-type": ev.BOT_CHANGED}, timeout=10
    )

    assert response.status_code == 400
    assert "missing required attribute" in response.json()["error"]["message"]
    assert launch.keys() == [] and launch.launcher.launch_calls == []


def test_an_invalid_bot_changed_event_gets_400_listing_every_problem(launch: Launch) -> None:
    event = ev.new_event(ev.BOT_CHANGED, source="/platform", data={"botId": "", "trainingData": {"examples": "no"}})
    response = launch.post(event)

    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert "data.botId" in fields and any(f.startswith("data.trainingData") for f in fields)
    assert launch.keys() == []


@pytest.mark.parametrize("bot", ["../../etc", "Pizza Bot", "x" * 60, 42])
def test_a_bot_id_that_cannot_name_a_spec_is_rejected_before_anything_is_read_or_written(launch: Launch, bot: Any) -> None:
    event = ev.new_event(ev.BOT_CHANGED, source="/platform", data={"botId": bot, "trainingData": {"examples": TRAINING_EXAMPLES}})
    response = launch.post(event)

    assert response.status_code == 400
    assert [d["field"] for d in response.json()["error"]["details"]] == ["data.botId"]
    assert launch.keys() == []


def test_an_invalid_inline_spec_gets_400_listing_every_field_error(launch: Launch) -> None:
    bad = make_spec(id="Not A Label", priority="urgent", resources={"gpus": 99, "cpu": "2", "memory": "4Gi"})
    event = ev.new_event(ev.RUN_REQUESTED, source="/jobplane/api", data={"spec": bad})
    response = launch.post(event, structured=True)

    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert {"spec.id", "spec.priority", "spec.resources.gpus"} <= fields
    assert launch.keys() == [] and launch.launcher.launch_calls == []


def test_run_requested_merges_params_over_the_stored_spec_and_revalidates(launch: Launch) -> None:
    launch.put_spec(make_spec())
    keys = launch.keys()
    bad = ev.new_event(ev.RUN_REQUESTED, source="/jobplane/api", data={"specId": "train-test-bot", "params": {"trainingData": 5}})
    assert launch.post(bad).status_code == 400 and launch.keys() == keys

    uri = "file:///nonexistent/elsewhere/data.json"  # under the test plane's allowed data prefix
    good = ev.new_event(ev.RUN_REQUESTED, source="/jobplane/api", data={"specId": "train-test-bot", "params": {"trainingData": {"uri": uri}}})
    run = runs.get_run(launch.store, reply_of(launch.post(good)).subject or "")
    assert run["params"] == {"trainingData": {"uri": uri}} and run["state"] == "launched"


def test_a_ping_for_a_stored_spec_runs_it_and_for_an_unknown_spec_is_permanent(launch: Launch) -> None:
    source = "/apis/v1/namespaces/default/pingsources/nightly"
    unknown = ev.new_event(ev.PING, source=source, data={"specId": "train-nobody"})
    assert launch.post(unknown).status_code == 400 and launch.keys() == []

    launch.put_spec(make_spec())
    reply = reply_of(launch.post(ev.new_event(ev.PING, source=source, data={"specId": "train-test-bot"})))
    assert runs.get_run(launch.store, reply.subject or "")["trigger"]["type"] == ev.PING


def test_an_event_type_launch_does_not_take_is_permanent(launch: Launch) -> None:
    event = ev.new_event(ev.RUN_PROGRESS, source="/x", data={"seq": 1})
    assert launch.post(event).status_code == 400


def test_a_transient_launcher_failure_answers_503_and_the_redelivery_launches(launch: Launch) -> None:
    launch.launcher.fail_with = UnavailableError("API server busy")
    event = bot_changed()
    assert launch.post(event).status_code == 503
    (run,) = runs.list_runs(launch.store, spec_id="train-pizza-bot")  # listed while the broker retries
    assert run["state"] == "requested" and not run["job"] and "API server busy" in run["message"]
    assert not launch.launcher.jobs

    launch.launcher.fail_with = None
    reply = reply_of(launch.post(event))
    launched = runs.get_run(launch.store, run["id"])
    assert reply.subject == run["id"] and launched["state"] == "launched" and launched["message"] is None
    assert list(launch.launcher.jobs) == [run["id"]] and launched["job"]["name"] == run["id"]


@pytest.mark.parametrize("policy", ["Allow", "Replace"])
def test_a_redelivery_after_the_run_ended_and_its_job_was_deleted_launches_nothing(launch: Launch, policy: str) -> None:
    launch.put_spec(make_spec(concurrency=policy))
    event = ev.new_event(ev.PING, source="/cron", id="tick", data={"specId": "train-test-bot"})
    run_id = reply_of(launch.post(event)).subject or ""
    runs.update_run(launch.store, run_id, lambda r: runs.transition(r, "succeeded", now=datetime.now(UTC)))
    launch.launcher.cancel(run_id)  # ttlSecondsAfterFinished removed the Job
    calls = len(launch.launcher.launch_calls)

    assert launch.post(event).status_code == 200  # the run's summary again, and nothing else
    assert len(launch.launcher.launch_calls) == calls and not launch.launcher.jobs
    assert runs.get_run(launch.store, run_id)["state"] == "succeeded"


def test_forbid_skips_a_run_while_another_is_active(launch: Launch) -> None:
    launch.put_spec(make_spec(concurrency="Forbid"))
    first = reply_of(launch.post(ev.new_event(ev.PING, source="/cron", id="a", data={"specId": "train-test-bot"})))
    second = launch.post(ev.new_event(ev.PING, source="/cron", id="b", data={"specId": "train-test-bot"}))

    assert second.status_code in (200, 204)
    newest, oldest = runs.list_runs(launch.store, spec_id="train-test-bot")
    assert oldest["id"] == first.subject and oldest["state"] == "launched"
    assert newest["state"] == "skipped" and newest["reason"]
    assert list(launch.launcher.jobs) == [first.subject]


def test_replace_cancels_the_active_job_and_supersedes_its_run(launch: Launch) -> None:
    launch.put_spec(make_spec(concurrency="Replace"))
    first = reply_of(launch.post(ev.new_event(ev.PING, source="/cron", id="a", data={"specId": "train-test-bot"})))
    second = reply_of(launch.post(ev.new_event(ev.PING, source="/cron", id="b", data={"specId": "train-test-bot"})))

    assert launch.launcher.cancelled == [first.subject]
    assert runs.get_run(launch.store, first.subject or "")["state"] == "superseded"
    assert runs.get_run(launch.store, second.subject or "")["state"] == "launched"


def test_inline_examples_in_a_run_request_are_stored_and_passed_by_uri(launch: Launch) -> None:
    launch.put_spec(make_spec())
    params = {"trainingData": {"examples": TRAINING_EXAMPLES}}
    event = ev.new_event(ev.RUN_REQUESTED, source="/jobplane/api", data={"specId": "train-test-bot", "params": params})
    run = runs.get_run(launch.store, reply_of(launch.post(event)).subject or "")

    uri = run["params"]["trainingData"]["uri"]
    (key,) = [k for k in launch.keys() if k.startswith("bots/test-bot/data/")]
    assert uri == launch.store.uri(key)
    assert json.loads(launch.store.read(key).data)["examples"] == TRAINING_EXAMPLES


def test_a_job_the_launcher_refuses_for_good_fails_the_run_and_answers_400(launch: Launch) -> None:
    launch.launcher.fail_with = PermanentError("Job.batch is invalid: spec.template: Required value")
    event = bot_changed()
    response = launch.post(event)

    assert response.status_code == 400 and "Job.batch is invalid" in response.text
    (run,) = runs.list_runs(launch.store, spec_id="train-pizza-bot")
    assert run["state"] == "failed" and run["reason"] == "LaunchFailed" and "invalid" in run["message"]
    assert launch.post(event).status_code == 204  # the redelivery finds the run ended: no second try


def _stale_requested_run(launch: Launch, event: ev.Event, spec: dict[str, Any]) -> str:
    """A ``requested`` run stamped long ago (its record raced a newer run's launch)."""
    then = datetime(2026, 1, 1, tzinfo=UTC)
    trigger = {"type": event.type, "source": event.source, "id": event.id, "subject": event.subject}
    run, _ = runs.create_run(launch.store, runs.new_run(spec=spec, trigger=trigger, requested_by="test", now=then))
    return str(run["id"])


@pytest.mark.parametrize(("policy", "state"), [("Forbid", "skipped"), ("Replace", "superseded")])
def test_a_late_redelivery_of_an_older_trigger_never_displaces_a_newer_running_run(
    launch: Launch, policy: str, state: str
) -> None:
    spec = make_spec(concurrency=policy)
    launch.put_spec(spec)
    newer = reply_of(launch.post(ev.new_event(ev.PING, source="/cron", id="new", data={"specId": spec["id"]})))
    old_event = ev.new_event(ev.PING, source="/cron", id="old", data={"specId": spec["id"]})
    old_id = _stale_requested_run(launch, old_event, spec)  # created earlier, recorded after the newer launched

    assert launch.post(old_event).status_code == 204
    assert runs.get_run(launch.store, old_id)["state"] == state
    assert runs.get_run(launch.store, newer.subject or "")["state"] == "launched"
    assert list(launch.launcher.jobs) == [newer.subject] and launch.launcher.cancelled == []
