"""Confined data over real HTTP: every path that makes a run (bot.changed, run.requested,
a ping, a fan-out's per-bot requests, and the API's specs and triggers) refuses a data URI
outside the bot's own ``bots/{botId}/`` or an allowed prefix with one 400 that says nothing
about what is there, and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from support.fakes import FakeLauncher
from support.servers import serve_wsgi
from support.specs import make_spec

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runtime
from jobplane.app import create_function_app
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store import open_store
from jobplane.store.base import ObjectStore

BOT = "pizza-bot"
API_TOKEN = "confine-test-token"
REFUSED = [
    "file:///etc/passwd",
    "file:///dev/zero",
    "file:///etc/../etc/passwd",
    "gs://other-bucket/bots/pizza-bot/data/r1.json",
    "{store}/bots/other-bot/data/r1.json",        # another bot's data, which exists
    "{store}/bots/other-bot/data/missing.json",   # another bot's, which does not
    "{store}/bots/pizza-bot/../other-bot/data/r1.json",
    "{store}/bots/pizza-bot/data/../../other-bot/data/r1.json",
    "{store}/bots/pizza-bot/%2e%2e/other-bot/data/r1.json",
    "{store}/bots/pizza-bot/data/%72%31.json",
    "{store}/bots/pizza-bot/data/r1.json?generation=1",
    "{store}/bots/pizza-bot-2/data/r1.json",      # a prefix of another bot's name
    "{store}/bots/pizza-bot//data/r1.json",
    "{store}/bots/pizza-bot/",
    "{store}/runs/some-run/artifacts/validation.json",
    "{store}/specs/train-other-bot.json",
]


@dataclass
class Plane:
    launch_url: str
    api_url: str
    store: ObjectStore
    launcher: FakeLauncher
    sent: list[ev.Event] = field(default_factory=list)

    def post_event(self, event: ev.Event) -> requests.Response:
        headers, body = ev.to_http(event)
        return requests.post(self.launch_url, data=body, headers=headers, timeout=10)

    def api(self, method: str, path: str, body: Any) -> requests.Response:
        return requests.request(method, self.api_url + path, json=body, timeout=10,
                                headers={"Authorization": f"Bearer {API_TOKEN}"})

    def uri(self, template: str) -> str:
        return template.replace("{store}", self.store.url)

    def keys(self) -> list[str]:
        """The plane's state; the audit trail (which keeps refused attempts too) aside."""
        return sorted(k for k in self.store.list("") if not k.startswith("audit/"))


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    store = open_store((tmp_path / "store").as_uri())
    store.write("bots/other-bot/data/r1.json", json.dumps({"examples": [{"text": "secret", "intent": "x"}]}).encode())
    store.write("bots/pizza-bot/data/r1.json", b'{"examples": []}')
    launcher = FakeLauncher()
    settings = Settings(store_url=store.url, sink="http://127.0.0.1:9/default/default", callback_key=b"k" * 32,
                        command=("true",), data_prefixes=("gs://shared-datasets/nlu/",), auth="token", api_token=API_TOKEN)
    sent: list[ev.Event] = []
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher, send=sent.append))
    try:
        with serve_wsgi(create_function_app("launch")) as launch_url, serve_wsgi(create_function_app("api")) as api_url:
            yield Plane(launch_url=launch_url, api_url=api_url, store=store, launcher=launcher, sent=sent)
    finally:
        runtime.install(None)  # type: ignore[arg-type]


def refusal(response: requests.Response, *, field: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert [d["field"] for d in error["details"]] == [field], error
    return str(error["details"][0]["problem"])


def bot_changed(uri: str, *, id: str = "e1", bot: str = BOT) -> ev.Event:
    data = {"botId": bot, "revision": "r2", "trainingData": {"uri": uri}}
    return ev.new_event(ev.BOT_CHANGED, source="/platform/bots", id=id, subject=bot, data=data)


def test_bot_changed_with_data_outside_the_bot_is_refused_alike_whatever_is_there(plane: Plane, tmp_path: Path) -> None:
    before = plane.keys()
    problems = {refusal(plane.post_event(bot_changed(plane.uri(uri), id=f"e{i}")), field="spec.params.trainingData.uri")
                for i, uri in enumerate(REFUSED)}

    assert len(problems) == 1, problems  # no existence oracle: one answer for all
    (problem,) = problems
    assert "bots/pizza-bot/" in problem and str(tmp_path) not in problem and "passwd" not in problem
    assert plane.keys() == before and plane.launcher.launch_calls == []


def test_bot_changed_with_the_bots_own_data_or_an_allowed_prefix_launches(plane: Plane) -> None:
    for i, uri in enumerate([plane.store.uri("bots/pizza-bot/data/r1.json"), "gs://shared-datasets/nlu/pizza.json"]):
        response = plane.post_event(bot_changed(uri, id=f"ok{i}"))
        assert response.status_code == 200, response.text
    assert len(plane.launcher.launch_calls) == 2


def test_run_requested_and_a_ping_of_a_spec_naming_another_bots_data_are_refused(plane: Plane) -> None:
    theirs = plane.store.uri("bots/other-bot/data/r1.json")
    spec = make_spec(id=f"train-{BOT}", params={"botId": BOT, "trainingData": {"uri": theirs}})
    plane.store.write(c.spec_key(spec["id"]), json.dumps(spec).encode())  # stored before confinement
    ping = ev.new_event(ev.PING, source="/apis/v1/namespaces/default/pingsources/p", data={"specId": spec["id"]})
    requested = ev.new_event(ev.RUN_REQUESTED, source="/jobplane/api", subject=spec["id"],
                             data={"specId": spec["id"], "params": {"trainingData": {"uri": theirs}}})
    inline = ev.new_event(ev.RUN_REQUESTED, source="/jobplane/api",
                          data={"spec": {**make_spec(id="adhoc"), "params": {"botId": BOT, "trainingData": {"uri": theirs}}}})
    before = plane.keys()

    assert refusal(plane.post_event(ping), field="spec.params.trainingData.uri")
    problems = {refusal(plane.post_event(e), field="spec.params.trainingData.uri") for e in (requested, inline)}
    assert len(problems) == 1 and plane.keys() == before and plane.launcher.launch_calls == []


def test_a_fan_outs_request_for_a_bot_whose_spec_names_another_bots_data_is_refused(plane: Plane) -> None:
    good = make_spec(id="train-good-bot", params={"botId": "good-bot", "trainingData": {"uri": "gs://shared-datasets/nlu/g.json"}})
    bad = make_spec(id="train-bad-bot", params={"botId": "bad-bot", "trainingData": {"uri": plane.store.uri("bots/other-bot/data/r1.json")}})
    fan_out = make_spec(id="retrain-all", params={"bots": "all"})
    del fan_out["params"]["trainingData"], fan_out["params"]["botId"]
    for spec in (good, bad, fan_out):
        plane.store.write(c.spec_key(spec["id"]), json.dumps(spec).encode())
    ping = ev.new_event(ev.PING, source="/apis/v1/namespaces/default/pingsources/weekly", data={"specId": "retrain-all"})
    assert plane.post_event(ping).status_code == 204

    answers = {e.data["specId"]: plane.post_event(e).status_code for e in plane.sent}
    assert answers == {"train-good-bot": 200, "train-bad-bot": 400}
    assert len(plane.launcher.launch_calls) == 1 and "good-bot" in str(plane.launcher.launch_calls[0])


@pytest.mark.parametrize("kind", ["trainingData", "testData", "article"])
def test_the_api_refuses_specs_naming_data_outside_the_bot_alike_for_every_kind(plane: Plane, kind: str) -> None:
    problems = set()
    for uri in REFUSED:
        spec = _spec_with(kind, plane.uri(uri))
        field_ = "spec.params.articles[0].uri" if kind == "article" else f"spec.params.{kind}.uri"
        problems.add(refusal(plane.api("POST", "/v1/specs", spec), field=field_))
    assert len(problems) == 1 and plane.keys() == ["bots/other-bot/data/r1.json", "bots/pizza-bot/data/r1.json"]
    assert plane.api("POST", "/v1/specs", _spec_with(kind, plane.store.uri("bots/pizza-bot/data/r1.json"))).status_code == 201


def test_a_trigger_overriding_the_data_with_another_bots_is_refused_and_sends_nothing(plane: Plane) -> None:
    spec = make_spec(id=f"train-{BOT}", params={"botId": BOT, "trainingData": {"uri": plane.store.uri("bots/pizza-bot/data/r1.json")}})
    assert plane.api("POST", "/v1/specs", spec).status_code == 201
    body = {"params": {"trainingData": {"uri": plane.store.uri("bots/other-bot/data/r1.json")}}}
    refusal(plane.api("POST", f"/v1/specs/{spec['id']}/runs", body), field="spec.params.trainingData.uri")
    assert plane.sent == []


def _spec_with(kind: str, uri: str) -> dict[str, Any]:
    if kind == "article":
        return make_spec(id="kb-pizza", type="kb-index", params={"botId": BOT, "articles": [{"id": "a", "title": "t", "uri": uri}]},
                         ) | {"params": {"botId": BOT, "articles": [{"id": "a", "title": "t", "uri": uri}]}}
    if kind == "testData":
        return make_spec(id="test-pizza", type="bot-test") | {"params": {"botId": BOT, "testData": {"uri": uri}}}
    return make_spec(id=f"train-{BOT}") | {"params": {"botId": BOT, "trainingData": {"uri": uri}}}
