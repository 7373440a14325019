"""Which data a run may read: the one check every path that makes a run calls.

A run reads data by URI (``trainingData.uri``, ``testData.uri``, a KB article's ``uri``). Each
must lie in the plane's own store under the run's bot's ``bots/{botId}/``, or under a prefix
the operator allowed (``Settings.data_prefixes``), compared as plain strings: no ``..`` or
``.`` part, no empty part, no percent-encoding, query, fragment, backslash or control
character, so no spelling of a URI reaches outside the prefix it starts with. The launch
function checks every run it makes (``bot.changed``, ``run.requested``, pings, fan-out), the
API checks specs before storing them, and the trainer checks again before it reads.

The answer never depends on the store: nothing is read to decide, and the message is the same
whatever the URI names (no existence oracle) and never shows the store's location.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from .errors import Problem, ValidationError

URI_FIELDS: Final = ("trainingData", "testData", "knowledgeBase")
"""Params whose value is ``{"uri"}`` or inline data."""
_FORBIDDEN: Final = frozenset("%?#\\")


def problem(path: str, bot_id: str | None) -> Problem:
    """The one refusal, the same for every URI that is not allowed."""
    own = f"bots/{bot_id}/" if bot_id else "bots/{botId}/"
    return Problem(path, f"must name an object under {own} in the plane's store, or under a data prefix "
                         "the operator allowed (JOBPLANE_DATA_PREFIXES)")


def allowed(uri: object, *, bot_id: str | None, store_url: str, prefixes: Sequence[str] = ()) -> bool:
    """Whether a run of ``bot_id`` may read ``uri`` (pure: decided from the strings alone)."""
    if not isinstance(uri, str):
        return False
    roots = [*prefixes]
    if bot_id:
        roots.append(f"{store_url.rstrip('/')}/bots/{bot_id}/")
    return any(uri.startswith(root) and _plain_key(uri[len(root):]) for root in roots if root.endswith("/"))


def _plain_key(rest: str) -> bool:
    """A relative object name: non-empty parts, none ``.`` or ``..``, nothing encoded."""
    parts = rest.split("/")
    return (bool(rest) and not any(p in ("", ".", "..") for p in parts)
            and not any(ch in _FORBIDDEN or ord(ch) < 0x21 or ch == "\x7f" for ch in rest))


def uris_of(params: Mapping[str, Any], *, path: str) -> Iterator[tuple[str, object]]:
    """``(field path, uri)`` for every data URI in a spec's params."""
    for name in URI_FIELDS:
        value = params.get(name)
        if isinstance(value, Mapping) and "uri" in value:
            uri = value["uri"]  # a knowledge base may name a folder: checked as the folder's name
            yield f"{path}.{name}.uri", uri.rstrip("/") if isinstance(uri, str) and name == "knowledgeBase" else uri
    articles = params.get("articles")
    if isinstance(articles, list):
        for i, article in enumerate(articles):
            if isinstance(article, Mapping) and "uri" in article:
                yield f"{path}.articles[{i}].uri", article["uri"]


def problems_in(params: Mapping[str, Any], *, path: str, store_url: str, prefixes: Sequence[str] = ()) -> list[Problem]:
    """A problem per data URI in ``params`` that the run's bot (``params.botId``) may not read."""
    bot_id = params.get("botId")
    bot = bot_id if isinstance(bot_id, str) else None
    return [problem(field, bot) for field, uri in uris_of(params, path=path)
            if not allowed(uri, bot_id=bot, store_url=store_url, prefixes=prefixes)]


def check_params(params: Mapping[str, Any], *, path: str = "spec.params", store_url: str,
                 prefixes: Sequence[str] = (), what: str = "job spec") -> None:
    """Raise ``ValidationError`` (400) naming every data URI the run may not read."""
    found = problems_in(params, path=path, store_url=store_url, prefixes=prefixes)
    if found:
        raise ValidationError(found, what=what)


def check_spec(spec: Mapping[str, Any], *, store_url: str, prefixes: Sequence[str] = ()) -> None:
    params = spec.get("params")
    if isinstance(params, Mapping):
        check_params(params, store_url=store_url, prefixes=prefixes)
