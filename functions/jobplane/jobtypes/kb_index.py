"""The ``kb-index`` job type: a bot's knowledge-base articles → passages → MiniLM embeddings
and a BM25 index, searched by ``/v1/bots/{botId}:search`` (``jobplane.search``).

The example of a job type (README "Adding a job type"): ``KbIndexParams`` in
``schemas/jobplane.json`` says its params; this module checks what a schema cannot and says
the defaults; ``jobtypes/__init__.py`` registers it; the trainer image's
``jobplane_trainer/jobtypes.py`` maps the type to its entry point ``jobplane_trainer.kb_index``;
its Kueue queue is ``knative/components/kueue/local_queue_kb_index.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .. import schemas
from ..errors import Problem
from .base import MAX_REPORTED, JobType, Problems

ARTICLE_FORMATS: Final = tuple(schemas.source_defs()["Article"]["properties"]["format"]["enum"])
KB_PREFIX: Final = "kb-"
"""A bot's knowledge-base spec is ``kb-{botId}``."""
DEFAULT_WORDS: Final = 80


def check_params(params: Mapping[str, Any], path: str, problems: Problems) -> None:
    """``articles`` inline, or ``knowledgeBase.uri`` (a JSON document or a folder), or neither:
    then the bot's own folder ``bots/{botId}/kb/`` is indexed. Here: unique article ids, and
    passages' ``overlap`` shorter than ``maxWords``."""
    _unique_ids(params.get("articles"), f"{path}.articles", problems)
    given = params.get("maxWords")
    words = given if isinstance(given, int) and not isinstance(given, bool) and 16 <= given <= 400 else DEFAULT_WORDS
    overlap = params.get("overlap")
    if isinstance(overlap, int) and not isinstance(overlap, bool) and not 0 <= overlap <= words - 1:
        problems.append(Problem(f"{path}.overlap", f"must be between 0 and {words - 1}, got {overlap}"))


def validate_articles(articles: object, *, field: str, problems: Problems) -> None:
    """Problems with a list of knowledge-base articles ``{id, title, text | uri, format?}``."""
    problems.extend(schemas.problems(articles, "Articles", field, limit=MAX_REPORTED))
    _unique_ids(articles, field, problems)


def _unique_ids(articles: object, field: str, problems: Problems) -> None:
    if not isinstance(articles, list):
        return
    seen: set[str] = set()
    for i, article in enumerate(articles[:MAX_REPORTED]):
        article_id = article.get("id") if isinstance(article, Mapping) else None
        if isinstance(article_id, str) and article_id in seen:
            problems.append(Problem(f"{field}[{i}].id", f"duplicate article id {article_id!r}"))
        if isinstance(article_id, str):
            seen.add(article_id)


JOB_TYPE: Final = JobType(name="kb-index", params_schema="KbIndexParams", check_params=check_params,
                          entrypoint="jobplane_trainer.kb_index:execute", queue="kb-index",
                          resources={"gpus": 0, "cpu": "1", "memory": "2Gi"}, timeout_seconds=1800,
                          bot_spec_prefix=KB_PREFIX)
