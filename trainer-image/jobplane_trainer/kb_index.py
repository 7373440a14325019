"""The ``kb-index`` job: a bot's articles → passages → MiniLM embeddings + BM25 → a versioned
search index under the run's artifacts, checked; the status function then promotes it to
``bots/{botId}/index.json`` (``jobplane.promotion``).

Articles come inline (``params.articles``: ``{id, title, text | uri, format?}``), from one
object ``params.knowledgeBase.uri`` (a JSON document ``{"articles": [...]}``, or a folder URI
ending in ``/`` with one file per article), or, with neither, from the bot's own folder
``bots/{botId}/kb/``. Every URI must lie under the bot's own prefix. Incremental: an article
whose content hash equals the one in the promoted index keeps that index's passages and
embeddings (only the changed articles are embedded); the record says how many were reused.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from jobplane import conventions as c
from jobplane import kbindex
from jobplane.encoder import Encoder
from jobplane.errors import ForbiddenError, NotFoundError, PermanentError, Problem
from jobplane.store import ObjectStore, resolve_uri
from jobplane.store.scoped import ScopedStore

from . import __version__
from .data import BadDataError
from .inputs import run_store
from .kbtext import MAX_WORDS, OVERLAP, content_hash, infer_format, passages, sections
from .report import Reporter
from .stages import Progress


class IndexCheckFailed(BadDataError):
    """The index built is not fit to serve (no passages, an empty article, wrong dims)."""


# --- articles ------------------------------------------------------------------------------


def read_articles(store: ObjectStore, bot_id: str, params: Mapping[str, Any]) -> list[dict[str, str]]:
    """The articles the params name, each ``{id, title, text, format}``."""
    if "articles" in params:
        return [_article(store, bot_id, a, f"params.articles[{i}]") for i, a in enumerate(params["articles"])]
    kb = params.get("knowledgeBase")
    if isinstance(kb, Mapping):
        return _from_uri(store, bot_id, str(kb.get("uri")))
    return _from_folder(store, c.bot_kb_prefix(bot_id))


def _article(store: ObjectStore, bot_id: str, given: Mapping[str, Any], path: str) -> dict[str, str]:
    text = given.get("text")
    name = str(given.get("uri") or "")
    if text is None:
        text = _read_text(store, bot_id, name, f"{path}.uri")
    fmt = str(given.get("format") or infer_format(PurePosixPath(name).name, str(text)))
    return {"id": str(given["id"]), "title": str(given.get("title") or ""), "text": str(text), "format": fmt}


def _from_uri(store: ObjectStore, bot_id: str, uri: str) -> list[dict[str, str]]:
    where, key = _confined(store, bot_id, uri, "params.knowledgeBase.uri")
    if not key.endswith("/"):
        doc = json.loads(_read_text(store, bot_id, uri, "params.knowledgeBase.uri"))
        items = doc.get("articles") if isinstance(doc, Mapping) else None
        if not isinstance(items, list):
            raise BadDataError([Problem("params.knowledgeBase.uri", 'must name {"articles": [...]} or a folder ending in /')])
        return [_article(store, bot_id, a, f"knowledgeBase.articles[{i}]") for i, a in enumerate(items)]
    return _from_folder(where, key)


def _from_folder(where: ObjectStore, key: str) -> list[dict[str, str]]:
    """One article per object under ``key``: its path (sans extension) is its id."""
    out = []
    for name in sorted(where.list(key)):
        stem = PurePosixPath(name[len(key):])
        text = where.read(name).data.decode("utf-8", errors="replace")
        out.append({"id": str(stem.with_suffix("")), "title": stem.stem.replace("-", " ").replace("_", " "),
                    "text": text, "format": infer_format(stem.name, text)})
    return out


def _confined(store: ObjectStore, bot_id: str, uri: str, field: str) -> tuple[ObjectStore, str]:
    """The store and key of ``uri``, which must be under ``bots/{botId}/`` of the plane's store."""
    where, key = resolve_uri(uri, store=store)
    if where is not store or not key.startswith(f"bots/{bot_id}/") or ".." in key.split("/"):
        raise BadDataError([Problem(field, f"must be under the bot's own prefix bots/{bot_id}/ of the plane's store, got {uri}")])
    return where, key


def _read_text(store: ObjectStore, bot_id: str, uri: str, field: str) -> str:
    where, key = _confined(store, bot_id, uri, field)
    try:
        return where.read(key).data.decode("utf-8", errors="replace")
    except NotFoundError as e:
        raise BadDataError([Problem(field, f"no object at {uri}")]) from e


# --- passages, reuse, embeddings ------------------------------------------------------------


def article_passages(articles: Sequence[Mapping[str, str]], *, max_words: int = MAX_WORDS,
                     overlap: int = OVERLAP) -> list[dict[str, Any]]:
    """Every article's passages, ``{articleId, articleHash, title, heading, text}``."""
    out: list[dict[str, Any]] = []
    for a in articles:
        digest = content_hash(a)
        fmt = a.get("format") or infer_format("", a["text"])
        for heading, text in passages(sections(a["text"], fmt), max_words=max_words, overlap=overlap):
            out.append({"articleId": a["id"], "articleHash": digest, "title": a.get("title") or "", "heading": heading,
                        "text": text})
    return out


def previous_index(store: ObjectStore, bot_id: str) -> kbindex.KbIndex | None:
    """The bot's promoted index, if any (read from its run's artifacts, which the scoped store
    lets through for this one run; an unreadable one is ignored: everything is embedded)."""
    try:
        pointer = json.loads(store.read(c.bot_index_key(bot_id)).data)
        prefix = c.run_artifacts_prefix(str(pointer["runId"]))
        if isinstance(store, ScopedStore):
            store.allow_reads(prefix)
        return kbindex.KbIndex.from_bytes(store.read(prefix + kbindex.INDEX_FILE).data)
    except (NotFoundError, ForbiddenError, PermanentError, KeyError, ValueError, OSError):
        return None


def embed(passages_: list[dict[str, Any]], previous: kbindex.KbIndex | None, encoder: Encoder) -> tuple[np.ndarray, dict[str, int]]:
    """Embeddings for ``passages_``: a passage of an unchanged article (same content hash, and
    the same heading and text, so other passage lengths embed anew) is copied from ``previous``."""
    old: dict[tuple[str, str, str], int] = {}
    if previous is not None:
        old = {_passage_key(p): i for i, p in enumerate(previous.passages)}
    out = np.zeros((len(passages_), encoder.dim), dtype=np.float32)
    fresh: list[int] = []
    changed: set[str] = set()
    for i, p in enumerate(passages_):
        j = old.get(_passage_key(p))
        if previous is not None and j is not None:
            out[i] = previous.embeddings[j]
        else:
            fresh.append(i)
            changed.add(p["articleHash"])
    if fresh:
        out[fresh] = encoder.encode([kbindex.embedding_text(passages_[i]) for i in fresh])
    articles = {p["articleHash"] for p in passages_}
    counts = {"reusedArticles": len(articles - changed), "embeddedArticles": len(changed),
              "reusedPassages": len(passages_) - len(fresh), "embeddedPassages": len(fresh)}
    return out, counts


def _passage_key(p: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(p["articleHash"]), str(p.get("heading") or ""), str(p["text"])


def check(articles: Sequence[Mapping[str, str]], passages_: Sequence[Mapping[str, Any]], embeddings: np.ndarray,
          *, dim: int) -> None:
    """Raise ``IndexCheckFailed`` unless every article has passages and every passage a unit
    vector of the encoder's width."""
    problems = []
    if not passages_:
        problems.append(Problem("index", "no passages: every article is empty after cleaning"))
    indexed = {p["articleId"] for p in passages_}
    problems += [Problem(f"articles[{i}]", f"article {a['id']!r} has no text after cleaning")
                 for i, a in enumerate(articles) if a["id"] not in indexed]
    if embeddings.shape != (len(passages_), dim):
        problems.append(Problem("index.embeddings", f"shape must be ({len(passages_)}, {dim}), got {embeddings.shape}"))
    elif len(passages_) and not np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-3):
        problems.append(Problem("index.embeddings", "must be unit vectors"))
    if problems:
        raise IndexCheckFailed(problems, what="search index")


# --- the job --------------------------------------------------------------------------------


def execute(env: Any, reporter: Reporter, *, stop: threading.Event) -> dict[str, Any]:
    """Build, check, write and promote the bot's index; the succeeded event's data."""
    store = run_store(env.store_url, run_id=env.run_id, bot_id=env.bot_id)
    reporter.progress(Progress("prepare", 5.0, "reading articles"), force=True)
    articles = read_articles(store, env.bot_id, env.params)
    found = article_passages(articles, max_words=int(env.params.get("maxWords", MAX_WORDS)),
                             overlap=int(env.params.get("overlap", OVERLAP)))
    encoder = Encoder.load()
    reporter.progress(Progress("embed", 20.0, f"embedding {len(found)} passages of {len(articles)} articles"), force=True)
    embeddings, counts = embed(found, previous_index(store, env.bot_id), encoder)
    check(articles, found, embeddings, dim=encoder.dim)
    reporter.progress(Progress("upload", 90.0, "writing the index"), force=True)
    meta = {"botId": env.bot_id, "runId": env.run_id, "specId": env.spec_id, "encoder": {"name": "all-MiniLM-L6-v2",
            "sha256": encoder.sha256}, "trainerVersion": __version__, "createdAt": _now()}
    metrics = {"articles": len(articles), "passages": len(found), **counts}
    artifacts = write_index(store, env.run_id, found, embeddings, meta=meta, metrics=metrics, articles=articles)
    # promotion is the status function's, once the run's record says succeeded (jobplane.promotion)
    return {"metrics": metrics, "artifacts": artifacts, "promote": True, "botId": env.bot_id}


def write_index(store: ObjectStore, run_id: str, found: list[dict[str, Any]], embeddings: np.ndarray, *,
                meta: Mapping[str, Any], metrics: Mapping[str, int], articles: Sequence[Mapping[str, str]]) -> dict[str, str]:
    prefix = c.run_artifacts_prefix(run_id)
    manifest = dict(meta) | {"format": kbindex.FORMAT, "metrics": dict(metrics),
                             "articles": [{"id": a["id"], "title": a.get("title"), "format": a.get("format"),
                                           "hash": content_hash(a)} for a in articles]}
    store.write(prefix + kbindex.INDEX_FILE, kbindex.to_bytes(found, embeddings, meta=meta), content_type="application/octet-stream")
    store.write(prefix + kbindex.MANIFEST_FILE, _json(manifest), content_type="application/json")
    return {"index": store.uri(prefix + kbindex.INDEX_FILE), "manifest": store.uri(prefix + kbindex.MANIFEST_FILE)}


def _json(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False).encode()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
