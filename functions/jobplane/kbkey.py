"""What a ``kb-index`` run's index depends on, for the result cache (``jobplane.cache``): the
content hash of each article it would index and the params that shape the passages.

The articles are found as the Job finds them (``jobplane_trainer.kb_index.read_articles``):
inline in ``params.articles``, from ``params.knowledgeBase.uri`` (a JSON document
``{"articles": [...]}``, or a folder ending in ``/``, one object per article), or, with
neither, from ``bots/{botId}/kb/``; every URI confined to the bot's own prefix of the plane's
store, as the Job confines it. An article's hash is the SHA-256 of the bytes the Job would read
for it (its text inline, else its object's bytes) with its id, title, format and, for an
object, its name (the Job infers the format from it). Anything the Job would refuse (a URI
elsewhere, an object that is not there, a document that is not one) has no key: the run is
not cached and fails on its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from . import conventions as c
from .errors import NotFoundError, PermanentError
from .store import split_uri
from .store.base import ObjectStore

PARAM_DEFAULTS: Final = {"maxWords": 80, "overlap": 20}
"""The passage params and the trainer's defaults (``jobplane_trainer.kbtext``): an omitted
param and its default give the same key."""

READERS: Final = 16
"""Article reads in flight while a folder is hashed (its own pool: the launch may itself run
on ``jobplane.workers``' threads)."""


class Unkeyed(Exception):
    """The articles cannot be told from here (the Job would refuse them)."""


def inputs(params: Mapping[str, Any], store: ObjectStore) -> dict[str, Any] | None:
    """``{"articles": [...], "params": {...}}`` of a kb-index spec's params; None when unkeyed."""
    bot = str(params.get("botId") or "")
    try:
        articles = _articles(params, bot, store)
    except Unkeyed:
        return None
    effective = {name: params.get(name, default) for name, default in PARAM_DEFAULTS.items()}
    return {"botId": bot, "articles": articles, "params": effective}


def _articles(params: Mapping[str, Any], bot: str, store: ObjectStore) -> list[dict[str, Any]]:
    if "articles" in params:
        return [_article(a, bot, store) for a in _listed(params["articles"])]
    kb = params.get("knowledgeBase")
    if isinstance(kb, Mapping):
        key = _confined(kb.get("uri"), bot, store)
        if key.endswith("/"):
            return _folder(key, store)
        doc = _json(_read(key, store))
        return [_article(a, bot, store) for a in _listed(doc.get("articles") if isinstance(doc, Mapping) else None)]
    return _folder(c.bot_kb_prefix(bot), store)


def _article(given: object, bot: str, store: ObjectStore) -> dict[str, Any]:
    if not isinstance(given, Mapping):
        raise Unkeyed
    meta = {k: given.get(k) for k in ("id", "title", "format")}
    if "text" in given:
        return meta | {"sha256": _sha(str(given["text"]).encode())}
    key = _confined(given.get("uri"), bot, store)
    return meta | {"name": key.rsplit("/", 1)[-1], "sha256": _sha(_read(key, store))}


def _folder(prefix: str, store: ObjectStore) -> list[dict[str, Any]]:
    """One article per object under ``prefix``: its name and its bytes' hash (read ``READERS``
    at a time: on GCS each read is a round trip)."""
    try:
        names = sorted(store.list(prefix))
    except PermanentError as e:
        raise Unkeyed from e
    with ThreadPoolExecutor(min(READERS, max(1, len(names))), thread_name_prefix="jobplane-kbkey") as pool:
        hashes = list(pool.map(lambda name: _sha(_read(name, store)), names))
    return [{"name": name[len(prefix):], "sha256": digest} for name, digest in zip(names, hashes, strict=True)]


def _confined(uri: object, bot: str, store: ObjectStore) -> str:
    """The key of ``uri``, which must be under ``bots/{botId}/`` of ``store`` (as the Job checks)."""
    if not isinstance(uri, str) or not bot:
        raise Unkeyed
    try:
        url, key = split_uri(uri, base_url=store.url)
    except PermanentError as e:
        raise Unkeyed from e
    if url != store.url or not key.startswith(f"bots/{bot}/") or ".." in key.split("/"):
        raise Unkeyed
    return key


def _read(key: str, store: ObjectStore) -> bytes:
    try:
        return store.read(key).data
    except (NotFoundError, PermanentError) as e:
        raise Unkeyed from e


def _json(data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError as e:
        raise Unkeyed from e


def _listed(value: object) -> list[object]:
    if not isinstance(value, list):
        raise Unkeyed
    return value


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
