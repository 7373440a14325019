"""A bot.changed event that carries ``knowledgeBase``: the bot's kb-index run, beside its
training or alone, through the launch function's real app."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from support.fakes import FakeLauncher
from support.kb import ARTICLES
from support.servers import serve_wsgi
from support.specs import TRAINING_EXAMPLES

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs, runtime
from jobplane.app import create_function_app
from jobplane.planning import KB_SOURCE
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store import open_store
from jobplane.store.base import ObjectStore


@dataclass
class Launch:
    url: str
    store: ObjectStore
    launcher: FakeLauncher
    sent: list[ev.Event] = field(default_factory=list)

    def post(self, event: ev.Event) -> requests.Response:
        headers, body = ev.to_http(event)
        return requests.post(self.url, data=body, headers=headers, timeout=10)

    def spec(self, spec_id: str) -> dict[str, Any]:
        return json.loads(self.store.read(c.spec_key(spec_id)).data)  # type: ignore[no-any-return]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    store = open_store((tmp_path / "store").as_uri())
    launcher = FakeLauncher()
    sent: list[ev.Event] = []
    settings = Settings(store_url=store.url, sink="http://127.0.0.1:9/default/default", callback_key=b"k" * 32,
                        command=("true",))
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher, send=sent.append))
    with serve_wsgi(create_function_app("launch")) as url:
        yield Launch(url=url, store=store, launcher=launcher, sent=sent)


def bot_changed(*, id: str = "evt-1", revision: str = "r1", **data: Any) -> ev.Event:
    body = {"botId": "pizza-bot", "revision": revision, **data}
    return ev.new_event(ev.BOT_CHANGED, source="/platform/bots", id=id, subject="pizza-bot", data=body)


def test_knowledge_base_alone_runs_the_bots_kb_spec_made_from_defaults(launch: Launch) -> None:
    event = bot_changed(knowledgeBase={"articles": ARTICLES})
    assert launch.post(event).status_code == 200
    spec = launch.spec("kb-pizza-bot")
    assert (spec["type"], spec["concurrency"]) == ("kb-index", "Replace")
    stored = spec["params"]["knowledgeBase"]["uri"]
    assert stored.endswith("bots/pizza-bot/data/kb-r1.json")
    assert json.loads(launch.store.read("bots/pizza-bot/data/kb-r1.json").data) == {"articles": ARTICLES}
    run = runs.get_run(launch.store, runs.run_id_for("kb-pizza-bot", source=event.source, event_id=event.id))
    assert (run["type"], run["botId"]) == ("kb-index", "pizza-bot")
    job = launch.launcher.jobs[run["job"]["name"]]
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "We open" not in json.dumps(job) and json.loads(env[c.ENV_PARAMS])["knowledgeBase"] == {"uri": stored}
    assert launch.sent == []  # no training data: no training run


def test_knowledge_base_beside_training_data_requests_the_kb_run_with_an_id_of_this_trigger(launch: Launch) -> None:
    event = bot_changed(trainingData={"examples": TRAINING_EXAMPLES}, knowledgeBase={"articles": ARTICLES})
    for _ in range(2):  # a redelivery sends the same request again: its run id absorbs it
        assert launch.post(event).status_code == 200
    assert runs.get_run(launch.store, runs.run_id_for("train-pizza-bot", source=event.source, event_id=event.id))
    assert [(e.type, e.source, e.id) for e in launch.sent] == [(ev.RUN_REQUESTED, KB_SOURCE, "evt-1-kb")] * 2
    assert launch.sent[0].data == {"specId": "kb-pizza-bot", "params": {"knowledgeBase": launch.spec("kb-pizza-bot")["params"]["knowledgeBase"]}}


def test_a_later_event_points_the_kb_spec_at_its_articles(launch: Launch) -> None:
    launch.post(bot_changed(knowledgeBase={"articles": ARTICLES}))
    second = bot_changed(id="evt-2", revision="r2", knowledgeBase={"articles": ARTICLES[:2]})
    assert launch.post(second).status_code == 200
    assert launch.spec("kb-pizza-bot")["params"]["knowledgeBase"]["uri"].endswith("bots/pizza-bot/data/kb-r2.json")


@pytest.mark.parametrize(("kb", "field"), [
    ({"articles": []}, "data.knowledgeBase.articles"),
    ({"articles": [{"id": "a", "title": "t"}]}, "data.knowledgeBase.articles[0]"),
    ({"uri": "gs://b/x", "articles": ARTICLES}, "data.knowledgeBase"),
    ("everything", "data.knowledgeBase"),
])
def test_a_bad_knowledge_base_is_400_with_its_field_and_nothing_runs(launch: Launch, kb: Any, field: str) -> None:
    response = launch.post(bot_changed(trainingData={"examples": TRAINING_EXAMPLES}, knowledgeBase=kb))
    assert response.status_code == 400
    assert field in [d["field"] for d in response.json()["error"]["details"]]
    assert launch.launcher.jobs == {} and launch.sent == []


def test_an_event_with_neither_training_data_nor_knowledge_base_is_400(launch: Launch) -> None:
    response = launch.post(bot_changed())
    assert response.status_code == 400 and "data.trainingData" in response.text


def test_a_knowledge_base_outside_the_bots_prefix_is_400_and_nothing_runs(launch: Launch) -> None:
    response = launch.post(bot_changed(knowledgeBase={"uri": launch.store.uri("bots/other-bot/kb.json")}))
    assert response.status_code == 400 and "knowledgeBase.uri" in response.text
    assert launch.launcher.jobs == {}


def test_a_knowledge_base_folder_under_the_bots_prefix_runs(launch: Launch) -> None:
    uri = launch.store.uri("bots/pizza-bot/kb") + "/"
    assert launch.post(bot_changed(knowledgeBase={"uri": uri})).status_code == 200
    assert launch.spec("kb-pizza-bot")["params"]["knowledgeBase"] == {"uri": uri}


def test_the_kb_follow_up_carries_the_bot_changed_trace_into_its_run(launch: Launch) -> None:
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    event = bot_changed(trainingData={"examples": TRAINING_EXAMPLES}, knowledgeBase={"articles": ARTICLES})
    event = dataclasses.replace(event, extensions={"traceparent": trace})
    assert launch.post(event).status_code == 200
    [follow_up] = launch.sent
    assert follow_up.extensions["traceparent"] == trace
    assert launch.post(follow_up).status_code == 200
    kb_run = runs.get_run(launch.store, runs.run_id_for("kb-pizza-bot", source=follow_up.source, event_id=follow_up.id))
    assert kb_run["traceparent"] == trace
