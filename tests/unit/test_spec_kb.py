"""kb-index params: where the articles come from, their fields, the passage lengths; and a
bot's own kb spec ``kb-{botId}``."""

from __future__ import annotations

from typing import Any

import pytest

from jobplane.errors import ValidationError
from jobplane.spec import kb_spec_for_bot, validate_spec

ARTICLE = {"id": "a", "title": "Hours", "text": "We open at 9."}


def kb(**params: Any) -> dict[str, Any]:
    return {"id": "kb-b", "type": "kb-index", "params": {"botId": "b", **params}}


def problems_of(spec: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as e:
        validate_spec(spec)
    return {p.field: p.problem for p in e.value.problems}


@pytest.mark.parametrize("params", [
    {},  # the bot's own folder bots/{botId}/kb/
    {"articles": [ARTICLE]},
    {"articles": [ARTICLE | {"format": "markdown"}, {"id": "b", "title": "Menu", "uri": "gs://bkt/bots/b/kb/menu.html"}]},
    {"knowledgeBase": {"uri": "gs://bkt/bots/b/kb/"}},
    {"articles": [ARTICLE], "maxWords": 120, "overlap": 119},
], ids=["folder", "inline", "formats and uri", "knowledge base uri", "lengths"])
def test_accepts_kb_index_params(params: dict[str, Any]) -> None:
    assert validate_spec(kb(**params))["params"]["botId"] == "b"


@pytest.mark.parametrize(("params", "field", "problem"), [
    ({"articles": [ARTICLE], "knowledgeBase": {"uri": "gs://bkt/x"}}, "spec.params", "at most one of articles or knowledgeBase"),
    ({"articles": "all"}, "spec.params.articles", "non-empty array of articles, got string"),
    ({"articles": [ARTICLE | {"format": "pdf"}]}, "spec.params.articles[0].format", "markdown, html, text"),
    ({"articles": [{"id": "a", "title": "t", "text": ""}]}, "spec.params.articles[0].text", "non-empty string"),
    ({"articles": [{"id": "a", "title": "t"}]}, "spec.params.articles[0]", "exactly one of text or uri"),
    ({"articles": [ARTICLE | {"body": "x"}]}, "spec.params.articles[0].body", "unknown field"),
    ({"knowledgeBase": {}}, "spec.params.knowledgeBase.uri", "required"),
    ({"knowledgeBase": {"uri": "ftp://x/y"}}, "spec.params.knowledgeBase.uri", "gs://"),
    ({"knowledgeBase": {"uri": "gs://bkt/x", "articles": []}}, "spec.params.knowledgeBase.articles", "unknown field"),
    ({"maxWords": 8}, "spec.params.maxWords", "between 16 and 400"),
    ({"maxWords": 40, "overlap": 40}, "spec.params.overlap", "between 0 and 39"),
    ({"overlap": -1}, "spec.params.overlap", "between 0 and 79"),
], ids=["both sources", "articles not a list", "bad format", "empty text", "no text or uri", "unknown article field",
        "kb without uri", "kb bad uri", "kb unknown field", "passages too short", "overlap not shorter", "negative overlap"])
def test_reports_kb_index_problems_at_their_paths(params: dict[str, Any], field: str, problem: str) -> None:
    found = problems_of(kb(**params))
    assert field in found, found
    assert problem in found[field]


def test_every_problem_is_reported_at_once() -> None:
    found = problems_of(kb(articles=[{"id": "a"}, ARTICLE | {"id": "a", "format": "doc"}], maxWords=1))
    assert {"spec.params.articles[0].title", "spec.params.articles[0]", "spec.params.articles[1].id",
            "spec.params.articles[1].format", "spec.params.maxWords"} <= set(found)


def test_a_bots_kb_spec_is_made_from_defaults_under_its_id() -> None:
    spec = kb_spec_for_bot("acme", defaults={"priority": "low", "params": {"maxWords": 100}})
    assert (spec["id"], spec["type"], spec["priority"], spec["concurrency"]) == ("kb-acme", "kb-index", "low", "Replace")
    assert spec["params"] == {"maxWords": 100, "botId": "acme"}
