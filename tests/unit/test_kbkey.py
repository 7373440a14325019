"""A kb-index run's cache inputs: the articles' content hashes read as the Job reads them
(inline, a document, a folder, the bot's own folder), confined to the bot's prefix, and the
passage params with the trainer's defaults."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from jobplane import kbkey
from jobplane.store import open_store
from jobplane.store.base import ObjectStore

BOT = "b"


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return open_store((tmp_path / "store").as_uri())


def uri(store: ObjectStore, key: str) -> str:
    """The URI of ``key`` as a spec spells it (a folder's ends in ``/``)."""
    return store.url.rstrip("/") + "/" + key


def inputs(store: ObjectStore, **params: Any) -> dict[str, Any] | None:
    return kbkey.inputs({"botId": BOT, **params}, store)


def test_a_folders_articles_are_hashed_by_their_bytes_and_one_changed_byte_changes_the_inputs(store: ObjectStore) -> None:
    store.write("bots/b/kb/hours.md", b"We open at 9.")
    store.write("bots/b/kb/menu.html", b"<p>Pizza</p>")
    folder = {"uri": uri(store, "bots/b/kb/")}
    before = inputs(store, knowledgeBase=folder)
    store.write("bots/b/kb/menu.html", b"<p>Pizza!</p>")
    after = inputs(store, knowledgeBase=folder)

    assert before is not None and after is not None
    assert [a["name"] for a in before["articles"]] == ["hours.md", "menu.html"]
    assert before["articles"][0] == after["articles"][0] and before["articles"][1] != after["articles"][1]


def test_without_articles_or_a_uri_the_bots_own_folder_is_hashed(store: ObjectStore) -> None:
    store.write("bots/b/kb/hours.md", b"We open at 9.")

    assert inputs(store) == inputs(store, knowledgeBase={"uri": uri(store, "bots/b/kb/")})


def test_a_document_and_the_article_objects_it_names_are_read(store: ObjectStore) -> None:
    store.write("bots/b/kb/menu.html", b"<p>Pizza</p>")
    doc = {"articles": [{"id": "hours", "title": "Hours", "text": "We open at 9."},
                        {"id": "menu", "title": "Menu", "uri": store.uri("bots/b/kb/menu.html")}]}
    store.write("bots/b/data/kb-r1.json", json.dumps(doc).encode())
    before = inputs(store, knowledgeBase={"uri": store.uri("bots/b/data/kb-r1.json")})
    inline = inputs(store, articles=doc["articles"])
    store.write("bots/b/kb/menu.html", b"<p>Pasta</p>")
    after = inputs(store, knowledgeBase={"uri": store.uri("bots/b/data/kb-r1.json")})

    assert before == inline  # the same articles inline or in a document
    assert before is not None and after is not None and before["articles"][1] != after["articles"][1]


@pytest.mark.parametrize("where", ["bots/other/kb/", "bots/b/../other/kb/", "runs/x/"])
def test_a_uri_outside_the_bots_prefix_has_no_key(store: ObjectStore, where: str) -> None:
    store.write("bots/other/kb/a.md", b"secret")
    store.write("runs/x/a.md", b"secret")

    assert inputs(store, knowledgeBase={"uri": uri(store, where)}) is None
    assert inputs(store, articles=[{"id": "a", "title": "A", "uri": uri(store, where + "a.md")}]) is None


def test_an_absent_article_or_a_document_that_is_not_one_has_no_key(store: ObjectStore) -> None:
    store.write("bots/b/data/kb-bad.json", b"not json")

    assert inputs(store, articles=[{"id": "a", "title": "A", "uri": store.uri("bots/b/kb/gone.md")}]) is None
    assert inputs(store, knowledgeBase={"uri": store.uri("bots/b/data/kb-bad.json")}) is None


def test_a_default_spelled_out_gives_the_same_inputs_and_another_value_does_not(store: ObjectStore) -> None:
    articles = [{"id": "a", "title": "A", "text": "We open at 9."}]

    assert inputs(store, articles=articles) == inputs(store, articles=articles, maxWords=80, overlap=20)
    assert inputs(store, articles=articles) != inputs(store, articles=articles, overlap=10)


def test_the_defaults_are_the_trainers() -> None:
    sys.path.insert(0, str(Path(__file__).parents[2] / "trainer-image"))
    from jobplane_trainer import kbtext

    assert kbkey.PARAM_DEFAULTS == {"maxWords": kbtext.MAX_WORDS, "overlap": kbtext.OVERLAP}
