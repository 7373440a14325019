"""The ``kb-index`` job type: a bot's knowledge-base articles → passages → MiniLM embeddings
and a BM25 index, searched by ``/v1/bots/{botId}:search`` (``jobplane.search``).

The example of a job type (README "Adding a job type"): this module checks the params and
says the defaults; ``jobtypes/__init__.py`` registers it; the trainer image's
``jobplane_trainer/jobtypes.py`` maps the type to its entry point ``jobplane_trainer.kb_index``;
its Kueue queue is ``knative/components/kueue/local_queue_kb_index.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .. import checks as ck
from ..errors import Problem
from .base import MAX_BOT_ID, MAX_REPORTED, JobType, Problems

ARTICLE_FORMATS: Final = ("markdown", "html", "text")
KB_PREFIX: Final = "kb-"
"""A bot's knowledge-base spec is ``kb-{botId}``."""


def check_params(params: Mapping[str, Any], path: str, problems: Problems, *, require_data: bool) -> None:
    """``articles`` inline, or ``knowledgeBase.uri`` (a JSON document or a folder), or neither:
    then the bot's own folder ``bots/{botId}/kb/`` is indexed."""
    ck.unknown(params, {"botId", "articles", "knowledgeBase", "maxWords", "overlap"}, path, problems)
    if ck.required(params, "botId", path, problems):
        ck.label(params["botId"], f"{path}.botId", problems, max_len=MAX_BOT_ID)
    if "articles" in params and "knowledgeBase" in params:
        problems.append(Problem(path, "must have at most one of articles or knowledgeBase"))
    if "articles" in params:
        validate_articles(params["articles"], field=f"{path}.articles", problems=problems)
    if "knowledgeBase" in params:
        kb = ck.mapping(params["knowledgeBase"], f"{path}.knowledgeBase", problems)
        if kb is not None:
            ck.unknown(kb, {"uri"}, f"{path}.knowledgeBase", problems)
            if ck.required(kb, "uri", f"{path}.knowledgeBase", problems):
                ck.uri(kb["uri"], f"{path}.knowledgeBase.uri", problems)
    words = ck.integer(params["maxWords"], f"{path}.maxWords", problems, low=16, high=400) if "maxWords" in params else 80
    if "overlap" in params:
        ck.integer(params["overlap"], f"{path}.overlap", problems, low=0, high=max(0, (words or 80) - 1))


def validate_articles(articles: object, *, field: str, problems: Problems) -> None:
    """Problems with a list of knowledge-base articles ``{id, title, text | uri, format?}``."""
    if not isinstance(articles, list) or not articles:
        problems.append(Problem(field, f"must be a non-empty array of articles, got {ck.kind(articles)}"))
        return
    seen: set[str] = set()
    for i, article in enumerate(articles[:MAX_REPORTED]):
        _article(article, f"{field}[{i}]", seen, problems)


def _article(value: object, path: str, seen: set[str], problems: Problems) -> None:
    article = ck.mapping(value, path, problems)
    if article is None:
        return
    ck.unknown(article, {"id", "title", "text", "uri", "format"}, path, problems)
    article_id = ck.string(article.get("id"), f"{path}.id", problems, max_len=200)
    if article_id is not None and article_id in seen:
        problems.append(Problem(f"{path}.id", f"duplicate article id {article_id!r}"))
    seen.add(article_id or "")
    ck.string(article.get("title"), f"{path}.title", problems, max_len=1000)
    if "format" in article:
        ck.choice(article["format"], f"{path}.format", problems, ARTICLE_FORMATS)
    if ("text" in article) == ("uri" in article):
        problems.append(Problem(path, "must have exactly one of text or uri"))
    elif "text" in article:
        ck.string(article["text"], f"{path}.text", problems, max_len=1_000_000)
    else:
        ck.uri(article["uri"], f"{path}.uri", problems)



JOB_TYPE: Final = JobType(name="kb-index", check_params=check_params, entrypoint="jobplane_trainer.kb_index:execute",
                          queue="kb-index", resources={"gpus": 0, "cpu": "1", "memory": "2Gi"}, timeout_seconds=1800,
                          bot_spec_prefix=KB_PREFIX)
