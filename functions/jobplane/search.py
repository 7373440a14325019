"""A bot's knowledge-base search: the promoted index, loaded once per index version (numpy only).

``search(rt, bot_id, query, k)`` is what the API's ``/v1/bots/{botId}:search`` calls. The
index named by ``bots/{botId}/index.json`` is cached per (store, bot) (``jobplane.pointers``): a
newly promoted index is picked up within seconds, and a version already loaded is never read twice. The query is embedded with the same MiniLM encoder the
index was built with (``jobplane.encoder``, numpy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from . import conventions
from .encoder import Encoder
from .errors import Problem, ValidationError
from .kbindex import MAX_K, KbIndex
from .pointers import PointerCache

if TYPE_CHECKING:
    from .runtime import Runtime

MAX_QUERY: Final = 2000
DEFAULT_K: Final = 5


indexes: PointerCache[KbIndex] = PointerCache(
    pointer_key=conventions.bot_index_key, uri_field="indexUri", parse=lambda data, rt: KbIndex.from_bytes(data),
    missing="knowledge-base index")
"""Each bot's promoted index, by (store, bot)."""


def search(rt: Runtime, bot_id: str, query: object, k: object = DEFAULT_K) -> dict[str, Any]:
    """``{"results": [{articleId, title, heading, text, score, matchedBy, …}], "index": {...}}``.

    ``NotFoundError`` when the bot has no promoted index; ``ValidationError`` for a bad query or k."""
    problems = []
    if isinstance(k, float) and k.is_integer():
        k = int(k)  # JSON has one number type: 5.0 is the integer 5
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY:
        problems.append(Problem("query", f"must be a non-empty string of at most {MAX_QUERY} characters"))
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        problems.append(Problem("k", f"must be an integer between 1 and {MAX_K}, got {k!r}"))
    if problems:
        raise ValidationError(problems, what="search request")
    assert isinstance(query, str) and isinstance(k, int)
    entry = indexes.get(rt, bot_id)
    results = entry.value.search(query, k, encoder=Encoder.load(rt.settings.encoder_path or None))
    return {"results": results, "index": {"runId": entry.pointer.get("runId"), "uri": entry.pointer.get("indexUri"),
                                          "passages": len(entry.value)}}


def invalidate(rt: Runtime, bot_id: str | None = None) -> None:
    """Drop the cached index of ``bot_id`` (every bot when None)."""
    indexes.invalidate(rt, bot_id)
