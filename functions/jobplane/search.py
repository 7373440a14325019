"""A bot's knowledge-base search: the promoted index, loaded once per index version (numpy only).

``search(rt, bot_id, query, k)`` is what the API's ``/v1/bots/{botId}:search`` calls. The
index named by ``bots/{botId}/index.json`` is cached per (store, bot); the pointer's generation
is read again at most every few seconds, so a newly promoted index is picked up, and a version
already loaded is never read twice. The query is embedded with the same MiniLM encoder the
index was built with (``jobplane.encoder``, numpy).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from . import conventions
from .encoder import Encoder
from .errors import NotFoundError, Problem, ValidationError
from .kbindex import MAX_K, KbIndex
from .store import resolve_uri

if TYPE_CHECKING:
    from .runtime import Runtime

RECHECK_SECONDS: Final = 5.0
MAX_QUERY: Final = 2000
DEFAULT_K: Final = 5


@dataclass
class _Entry:
    index: KbIndex
    pointer: dict[str, Any]
    generation: int
    checked: float


_cache: dict[tuple[str, str], _Entry] = {}
_lock = threading.Lock()


def search(rt: Runtime, bot_id: str, query: object, k: object = DEFAULT_K) -> dict[str, Any]:
    """``{"results": [{articleId, title, heading, text, score, matchedBy, …}], "index": {...}}``.

    ``NotFoundError`` when the bot has no promoted index; ``ValidationError`` for a bad query or k."""
    problems = []
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY:
        problems.append(Problem("query", f"must be a non-empty string of at most {MAX_QUERY} characters"))
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        problems.append(Problem("k", f"must be an integer between 1 and {MAX_K}, got {k!r}"))
    if problems:
        raise ValidationError(problems, what="search request")
    assert isinstance(query, str) and isinstance(k, int)
    entry = _index_for(rt, bot_id)
    results = entry.index.search(query, k, encoder=Encoder.load(rt.settings.encoder_path or None))
    return {"results": results, "index": {"runId": entry.pointer.get("runId"), "uri": entry.pointer.get("indexUri"),
                                          "passages": len(entry.index)}}


def invalidate(rt: Runtime, bot_id: str | None = None) -> None:
    """Drop the cached index of ``bot_id`` (every bot when None)."""
    with _lock:
        for key in [key for key in _cache if key[0] == rt.store.url and bot_id in (None, key[1])]:
            del _cache[key]


def _index_for(rt: Runtime, bot_id: str) -> _Entry:
    key = (rt.store.url, bot_id)
    now = time.monotonic()
    with _lock:
        entry = _cache.get(key)
    if entry is not None and now - entry.checked < RECHECK_SECONDS:
        return entry
    try:
        blob = rt.store.read(conventions.bot_index_key(bot_id))
    except NotFoundError as e:
        raise NotFoundError(f"bot {bot_id!r} has no promoted knowledge-base index yet") from e
    pointer = json.loads(blob.data)
    if entry is not None and entry.pointer.get("indexUri") == pointer.get("indexUri"):
        entry.checked, entry.generation = now, blob.generation
        return entry
    where, index_key = resolve_uri(str(pointer["indexUri"]), store=rt.store)
    entry = _Entry(KbIndex.from_bytes(where.read(index_key).data), pointer, blob.generation, now)
    with _lock:
        _cache[key] = entry
    return entry
