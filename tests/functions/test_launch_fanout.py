"""Fan-out specs (``params.bots: "all"``) through the launch function's real app: a ping for
the built-in ``retrain-all`` or ``nightly-bot-tests`` sends one ``run.requested`` per bot, with
ids derived from the ping's so a redelivery never doubles a run, and each of those runs one bot."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from support.fakes import FakeLauncher
from support.servers import serve_wsgi
from support.specs import TEST_DATA_PREFIXES, make_spec

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs, runtime
from jobplane.app import create_function_app
from jobplane import fanout, planning, tracing
from jobplane.baselines import previous_success
from jobplane.handlers import launch as launch_handler
from jobplane.local.plane import builtin_specs_dir, seed_specs
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store import open_store
from jobplane.store.base import ObjectStore

PINGS = "/apis/v1/namespaces/default/pingsources/"


@dataclass
class Launch:
    url: str
    store: ObjectStore
    launcher: FakeLauncher
    sent: list[ev.Event] = field(default_factory=list)

    def post(self, event: ev.Event, *, structured: bool = False) -> requests.Response:
        headers, body = ev.to_http(event, structured=structured)
        return requests.post(self.url, data=body, headers=headers, timeout=10)

    def add_bot(self, bot: str, *, model: bool = True, data: bool = True) -> None:
        """A bot as the plane leaves it after training: its spec, its data, its model pointer."""
        uri = self.store.uri(f"bots/{bot}/data/r1.json")
        spec = make_spec(id=f"train-{bot}", concurrency="Replace", params={"botId": bot, "trainingData": {"uri": uri}})
        self.store.write(c.spec_key(spec["id"]), json.dumps(spec).encode())
        if data:
            self.store.write(f"bots/{bot}/data/r1.json", b'{"examples": []}')
        if model:
            self.store.write(c.bot_model_key(bot), json.dumps({"botId": bot, "modelUri": "file:///m"}).encode())


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    store = open_store((tmp_path / "store").as_uri())
    assert sorted(seed_specs(store, builtin_specs_dir())) == ["nightly-bot-tests", "retrain-all"]
    launcher = FakeLauncher()
    settings = Settings(data_prefixes=TEST_DATA_PREFIXES, store_url=store.url, sink="http://127.0.0.1:9/default/default", callback_key=b"k" * 32, command=("true",))
    sent: list[ev.Event] = []
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher, send=sent.append))
    with serve_wsgi(create_function_app("launch")) as url:
        yield Launch(url=url, store=store, launcher=launcher, sent=sent)


def ping(spec_id: str, *, id: str = "ping-1") -> ev.Event:
    return ev.new_event(ev.PING, source=PINGS + f"jobplane-spec-{spec_id}", id=id, data={"specId": spec_id})


def fan_out(launch: Launch, event: ev.Event, *, structured: bool = False) -> list[ev.Event]:
    before = len(launch.sent)
    response = launch.post(event, structured=structured)
    assert response.status_code == 204 and response.content == b"", response.text
    return launch.sent[before:]


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
def test_a_retrain_all_ping_requests_one_run_of_each_bots_own_training_spec(launch: Launch, structured: bool) -> None:
    for bot in ("anna", "bob", "carl"):
        launch.add_bot(bot, model=bot != "carl")  # a bot never promoted is still retrained

    sent = fan_out(launch, ping("retrain-all"), structured=structured)

    assert [e.type for e in sent] == [ev.RUN_REQUESTED] * 3
    assert [e.data for e in sent] == [{"specId": f"train-{b}"} for b in ("anna", "bob", "carl")]
    assert [e.id for e in sent] == ["ping-1-anna", "ping-1-bob", "ping-1-carl"]
    assert {e.source for e in sent} == {fanout.FANOUT_SOURCE}
    assert {e.extensions[planning.REQUESTED_BY_EXTENSION] for e in sent} == {PINGS + "jobplane-spec-retrain-all"}
    assert launch.launcher.launch_calls == []  # the fan-out itself launches no Job


def test_a_redelivered_ping_sends_the_same_event_ids_and_keeps_one_summary_run(launch: Launch) -> None:
    for bot in ("anna", "bob"):
        launch.add_bot(bot)
    event = ping("nightly-bot-tests")

    first, again = fan_out(launch, event), fan_out(launch, event)

    assert [(e.source, e.id) for e in again] == [(e.source, e.id) for e in first]
    (summary,) = runs.list_runs(launch.store, spec_id="nightly-bot-tests")
    assert summary["id"] == runs.run_id_for("nightly-bot-tests", source=event.source, event_id=event.id)
    assert (summary["state"], summary["reason"], summary["fanOut"]["runs"]) == ("succeeded", "FannedOut", 2)
    assert runs.list_active(launch.store) == []


def test_nightly_bot_tests_requests_a_run_of_itself_for_each_bot_with_a_promoted_model(launch: Launch) -> None:
    launch.add_bot("anna")
    launch.add_bot("bob", model=False)  # trained but never promoted: nothing to test
    launch.add_bot("carl", data=False)

    sent = fan_out(launch, ping("nightly-bot-tests"))

    assert [e.data for e in sent] == [
        {"specId": "nightly-bot-tests", "params": {"botId": "anna"}},
        {"specId": "nightly-bot-tests", "params": {"botId": "carl"}},
    ]


def test_the_requested_runs_each_launch_one_bots_job_and_redelivery_makes_no_more(launch: Launch) -> None:
    for bot in ("anna", "bob"):
        launch.add_bot(bot)
    sent = fan_out(launch, ping("nightly-bot-tests"))

    for event in sent + sent:
        assert launch.post(event).status_code == 200

    tests = [r for r in runs.list_runs(launch.store, spec_id="nightly-bot-tests") if r.get("botId")]
    assert sorted(r["botId"] for r in tests) == ["anna", "bob"] and len(launch.launcher.jobs) == 2
    job = launch.launcher.jobs[tests[0]["id"]]
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(env[c.ENV_PARAMS]) == {"botId": tests[0]["botId"], "minAccuracy": 0.8, "maxDrop": 0.05}
    assert (env[c.ENV_JOB_TYPE], env[c.ENV_BOT_ID]) == ("bot-test", tests[0]["botId"])
    assert tests[0]["requestedBy"] == PINGS + "jobplane-spec-nightly-bot-tests"


def test_a_retrain_requested_run_trains_on_the_bots_newest_data(launch: Launch) -> None:
    launch.add_bot("anna")
    launch.store.write(c.spec_key("train-anna"), json.dumps(make_spec(
        id="train-anna", params={"botId": "anna", "trainingData": {"uri": launch.store.uri("bots/anna/data/r9.json")}})).encode())
    (request,) = fan_out(launch, ping("retrain-all"))

    reply = ev.from_http(*_headers_body(launch.post(request)))

    run = runs.get_run(launch.store, reply.subject or "")
    assert (run["specId"], run["botId"], run["trigger"]["id"]) == ("train-anna", "anna", "ping-1-anna")
    job = launch.launcher.jobs[run["id"]]
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(env[c.ENV_PARAMS])["trainingData"]["uri"].endswith("bots/anna/data/r9.json")


def test_run_requested_for_a_fan_out_spec_passes_its_overrides_to_every_bot(launch: Launch) -> None:
    launch.add_bot("anna")
    retrain = ev.new_event(ev.RUN_REQUESTED, source="/jobplane/api", id="req-1", data={"specId": "retrain-all", "params": {"epochs": 3}})
    tests = ev.new_event(ev.RUN_REQUESTED, source="/jobplane/api", id="req-2",
                         data={"specId": "nightly-bot-tests", "params": {"minAccuracy": 0.95}})

    assert [e.data for e in fan_out(launch, retrain)] == [{"specId": "train-anna", "params": {"epochs": 3}}]
    assert [e.data for e in fan_out(launch, tests)] == [
        {"specId": "nightly-bot-tests", "params": {"minAccuracy": 0.95, "botId": "anna"}}]


def test_run_requested_for_one_bot_of_a_fan_out_spec_runs_only_that_bot(launch: Launch) -> None:
    launch.add_bot("anna")
    launch.add_bot("bob")
    event = ev.new_event(ev.RUN_REQUESTED, source="/jobplane/api", id="req-1",
                         data={"specId": "nightly-bot-tests", "params": {"botId": "bob"}})

    assert launch.post(event).status_code == 200

    assert launch.sent == [] and len(launch.launcher.jobs) == 1
    (run,) = runs.list_runs(launch.store, spec_id="nightly-bot-tests")
    assert run["botId"] == "bob" and run["state"] == "launched"


def test_every_bot_is_found_across_listing_pages(launch: Launch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "PAGE", 2)
    bots = [f"bot-{i}" for i in range(5)]
    for bot in bots:
        launch.add_bot(bot)

    assert [e.data["params"]["botId"] for e in fan_out(launch, ping("nightly-bot-tests"))] == bots
    assert [e.data["specId"] for e in fan_out(launch, ping("retrain-all", id="ping-2"))] == [f"train-{b}" for b in bots]


def test_a_fan_out_with_no_bots_yet_requests_nothing_and_says_so(launch: Launch) -> None:
    assert fan_out(launch, ping("retrain-all")) == []
    (summary,) = runs.list_runs(launch.store, spec_id="retrain-all")
    assert summary["state"] == "succeeded" and summary["message"] == "requested 0 runs, one per bot"


def test_an_inline_fan_out_spec_is_refused_as_permanent(launch: Launch) -> None:
    spec: dict[str, Any] = {"id": "sweep", "type": "training", "params": {"bots": "all"}}
    event = ev.new_event(ev.RUN_REQUESTED, source="/jobplane/api", id="req-1", data={"spec": spec})

    response = launch.post(event)

    assert response.status_code == 400 and "fan-out" in response.json()["error"]["message"]
    assert launch.sent == [] and runs.list_runs(launch.store, spec_id="sweep") == []


def test_a_failed_send_answers_503_and_the_redelivery_sends_every_bot(launch: Launch) -> None:
    from jobplane.errors import UnavailableError

    for bot in ("anna", "bob"):
        launch.add_bot(bot)
    rt = runtime.current()
    calls: list[ev.Event] = []

    def flaky(event: ev.Event) -> None:
        calls.append(event)
        if len(calls) == 2:
            raise UnavailableError("broker down")
        launch.sent.append(event)

    runtime.install(Runtime(settings=rt.settings, store=rt.store, launcher_factory=lambda: launch.launcher, send=flaky))
    event = ping("retrain-all")

    assert launch.post(event).status_code == 503
    assert [e.id for e in fan_out(launch, event)] == ["ping-1-anna", "ping-1-bob"]
    (summary,) = runs.list_runs(launch.store, spec_id="retrain-all")
    assert summary["fanOut"]["runs"] == 2


def _headers_body(response: requests.Response) -> tuple[dict[str, str], bytes]:
    assert response.status_code == 200, response.text
    return dict(response.headers), response.content


# --- a bot test's baseline: the previous succeeded run of the spec for the bot, in the Job's params ---


def request_test(launch: Launch, bot: str, *, id: str, spec_id: str = "nightly-bot-tests") -> dict[str, Any]:
    """Run ``spec_id`` for ``bot``; the launched run's record."""
    event = ev.new_event(ev.RUN_REQUESTED, source="/test", id=id, subject=spec_id, data={"specId": spec_id, "params": {"botId": bot}})
    response = launch.post(event)
    assert response.status_code == 200, response.text
    time.sleep(0.005)  # the next run is newer by the listing's millisecond
    return runs.get_run(launch.store, runs.run_id_for(spec_id, source="/test", event_id=id))


def job_params(launch: Launch, run: dict[str, Any]) -> dict[str, Any]:
    job = launch.launcher.jobs[run["id"]]
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    return json.loads(env[c.ENV_PARAMS])  # type: ignore[no-any-return]


def finish(launch: Launch, run: dict[str, Any], state: str, *, reason: str | None = None) -> None:
    def mutate(r: runs.Run) -> runs.Run:
        new = runs.transition(r, state, reason=reason, now=runs.parse_rfc3339(r["createdAt"]))
        new["artifacts"] = {"botTest": launch.store.uri(c.run_artifacts_prefix(r["id"]) + "bot_test.json")}
        return new

    runs.update_run(launch.store, run["id"], mutate)


def test_a_first_bot_test_gets_no_baseline(launch: Launch) -> None:
    launch.add_bot("anna")
    run = request_test(launch, "anna", id="t1")
    assert "baseline" not in job_params(launch, run)


def test_the_job_names_the_previous_succeeded_run_of_the_spec_for_the_bot(launch: Launch) -> None:
    for bot in ("anna", "bob"):
        launch.add_bot(bot)
    good = request_test(launch, "anna", id="t1")
    finish(launch, good, "succeeded")
    failed = request_test(launch, "anna", id="t2")
    finish(launch, failed, "failed", reason="Regression")  # a failed run is no baseline
    other_bot = request_test(launch, "bob", id="t3")
    finish(launch, other_bot, "succeeded")
    launch.store.write(c.spec_key("smoke"), json.dumps({**json.loads(launch.store.read(c.spec_key("nightly-bot-tests")).data),
                                                          "id": "smoke"}).encode())
    other_spec = request_test(launch, "anna", id="t4", spec_id="smoke")
    finish(launch, other_spec, "succeeded")

    run = request_test(launch, "anna", id="t5")

    assert job_params(launch, run)["baseline"] == {
        "runId": good["id"], "metricsUri": launch.store.uri(c.run_artifacts_prefix(good["id"]) + "bot_test.json")}
    assert "baseline" not in run.get("params", {})  # the record keeps what was asked; the Job gets the baseline
    finish(launch, run, "succeeded")
    assert previous_success(launch.store, spec_id="nightly-bot-tests", bot_id="anna")["id"] == run["id"]  # type: ignore[index]


def test_a_user_cannot_hand_a_run_its_own_baseline(launch: Launch) -> None:
    launch.add_bot("anna")
    event = ev.new_event(ev.RUN_REQUESTED, source="/test", id="t1", subject="nightly-bot-tests", data={
        "specId": "nightly-bot-tests", "params": {"botId": "anna", "baseline": {"runId": "x", "metricsUri": "file:///etc/passwd"}}})
    response = launch.post(event)
    assert response.status_code == 400 and "params.baseline" in response.text
    assert launch.launcher.jobs == {}


def test_each_bots_request_carries_the_sweeps_trace(launch: Launch) -> None:
    for bot in ("anna", "bob"):
        launch.add_bot(bot)
    sent = fan_out(launch, ping("retrain-all"))
    trace = tracing.of_event(ping("retrain-all").source, "ping-1", {})
    assert [e.extensions["traceparent"] for e in sent] == [trace, trace]
