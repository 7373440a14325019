"""The result cache: a training run whose inputs match a succeeded run's reuses that run's model.

A run's inputs are what goes into its model: the training data's content (the SHA-256 of the
stored object's bytes, so a bot reverted to an earlier revision, or the same examples sent
again, hashes the same), the effective params (the content hashes of ``trainingData`` and ``testData`` stand
for their URIs), the trainer image and the trainer version. Their SHA-256 is
the run's ``cacheKey``, recorded on the run at launch. When such a run succeeds, the status
function writes ``cache/{type}/{cacheKey}.json`` naming it (``remember``), so a lookup is one
read of a key derived from the inputs, never a listing. A later run with the same key ends
``skipped`` with reason ``CacheHit``, ``reusedRun``/``cachedFrom`` naming the run whose model
and metrics it points at, and no Job (``launching``); the bot's model pointer is moved to that
model when it names another (``point_model_at``: a bot reverted to an earlier revision gets
that revision's model back). ``force: true`` on the request trains anyway.

Other job types hook in through ``HASHERS`` (``kb-index``'s per-article cache is its own;
it can register a hasher of its inputs here and reuse ``lookup``/``remember``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from . import conventions as c
from . import runs
from .errors import NotFoundError, PermanentError, PreconditionFailedError
from .settings import Settings
from .store import split_uri
from .store.base import ObjectStore

log = logging.getLogger(__name__)

PREFIX: Final = "cache/"
REASON: Final = "CacheHit"
FORCE_FIELD: Final = "force"
TRAINER_VERSION: Final = "0.1.0"
"""The trainer's ``jobplane_trainer.__version__`` (checked equal by a test): a new trainer
release changes every key, so nothing trained by an older trainer is reused."""
DATA_PARAMS: Final = ("trainingData", "testData")
"""Params naming data: their content hashes stand for them in the key."""
NOT_INPUTS: Final = frozenset({*DATA_PARAMS, "force"})
"""Params that are not inputs as such (the data's content hashes stand for the data's URIs)."""
CAS_ATTEMPTS: Final = 10
RECORD_FIELDS: Final = ("cacheKey", "reusedRun", "cachedFrom", "metrics", "artifacts", "modelUri")
"""What a run record carries of the cache (its key; on a hit, what it reuses)."""

Hasher = Callable[[Mapping[str, Any], ObjectStore, Settings], "str | None"]


@dataclass(frozen=True)
class Hit:
    """A succeeded run with the same inputs: its id, metrics and artifacts."""

    key: str
    run: runs.Run


def entry_key(job_type: str, key: str) -> str:
    return f"{PREFIX}{job_type}/{key}.json"


def data_hash(uri: str, store: ObjectStore) -> str | None:
    """``sha256:`` of the object's bytes when ``uri`` names an object in ``store``; None for
    data elsewhere (not cached) or absent (the run fails on its own)."""
    try:
        url, key = split_uri(uri, base_url=store.url)
    except PermanentError:
        return None
    if url != store.url:
        return None
    try:
        return "sha256:" + hashlib.sha256(store.read(key).data).hexdigest()
    except NotFoundError:
        return None


def training_key(spec: Mapping[str, Any], store: ObjectStore, settings: Settings) -> str | None:
    """The cache key of a training spec's inputs; None when they cannot be told (data that is
    not an object of this store)."""
    params = spec.get("params") or {}
    contents: dict[str, str] = {}
    for name in DATA_PARAMS:
        data = params.get(name)
        if data is None and name != "trainingData":
            continue
        content = data_hash(str(data["uri"]), store) if isinstance(data, Mapping) and isinstance(data.get("uri"), str) else None
        if content is None:
            return None
        contents[name] = content
    inputs = {
        "type": spec.get("type"),
        "data": contents,
        "params": {k: v for k, v in params.items() if k not in NOT_INPUTS},
        "image": settings.image_for(str(spec.get("type"))),
        "trainerVersion": TRAINER_VERSION,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


HASHERS: Final[dict[str, Hasher]] = {"training": training_key}
"""Job type → the key of a spec's inputs. Types without one are never cached."""


def key_for(spec: Mapping[str, Any], store: ObjectStore, settings: Settings) -> str | None:
    hasher = HASHERS.get(str(spec.get("type")))
    return hasher(spec, store, settings) if hasher else None


def lookup(store: ObjectStore, job_type: str, key: str) -> Hit | None:
    """The succeeded run this key names: two reads (the entry, then the run's record to see
    it still stands: retention may have removed it)."""
    if not key:
        return None
    try:
        entry = json.loads(store.read(entry_key(job_type, key)).data)
        run = runs.get_run(store, str(entry["runId"]))
    except (NotFoundError, KeyError, ValueError):
        return None
    if run.get("state") != "succeeded" or run.get("cacheKey") != key:
        return None
    return Hit(key=key, run=run)


def remember(store: ObjectStore, run: Mapping[str, Any]) -> bool:
    """Name a succeeded run under its ``cacheKey`` (status, at the final callback). A newer
    run with the same inputs (a forced retrain) takes the entry over; an older one does not."""
    key = run.get("cacheKey")
    if run.get("state") != "succeeded" or not isinstance(key, str):
        return False
    entry = {"runId": run["id"], "specId": run.get("specId"), "botId": run.get("botId"),
             "createdAt": run.get("createdAt"), "finishedAt": run.get("finishedAt")}
    body = json.dumps(entry, sort_keys=True).encode()
    target = entry_key(str(run["type"]), key)
    for _ in range(CAS_ATTEMPTS):
        try:
            blob = store.read(target)
            current = json.loads(blob.data)
            if (str(current.get("createdAt")), str(current.get("runId"))) >= (str(run.get("createdAt")), str(run["id"])):
                return False
            generation = blob.generation
        except NotFoundError:
            generation = 0
        try:
            store.write(target, body, if_generation_match=generation)
            return True
        except PreconditionFailedError:
            continue
    return False


def reused(run: runs.Run, hit: Hit, *, now: datetime) -> runs.Run:
    """``run`` ended ``skipped``/``CacheHit``, pointing at ``hit``'s model and metrics."""
    source = hit.run
    new = runs.transition(run, "skipped", reason=REASON, now=now)
    new["message"] = f"inputs match run {source['id']}: its model is reused, no Job"
    new["reusedRun"] = source["id"]
    new["cachedFrom"] = {"runId": source["id"], "specId": source.get("specId"), "cacheKey": hit.key,
                         "finishedAt": source.get("finishedAt")}
    new["cacheKey"] = hit.key
    new["metrics"] = source.get("metrics")
    new["artifacts"] = dict(source.get("artifacts") or {})
    if source.get("modelUri") or (source.get("artifacts") or {}).get("model"):
        new["modelUri"] = source.get("modelUri") or source["artifacts"]["model"]
    return new


def point_model_at(store: ObjectStore, run: Mapping[str, Any], *, now: datetime) -> bool:
    """Move the bot's model pointer to the model a ``CacheHit`` run reuses, unless it names
    that run already. The pointer's order is the deciding run's creation time, so a hit
    never moves it back behind a model promoted for a newer change."""
    bot, source = run.get("botId"), run.get("reusedRun")
    model_uri = run.get("modelUri")
    if not bot or not source or not model_uri:
        return False
    key = c.bot_model_key(str(bot))
    pointer = {"botId": bot, "runId": source, "specId": run.get("specId"), "modelUri": model_uri,
               "validationUri": (run.get("artifacts") or {}).get("validation"),
               "metrics": run.get("metrics") or {}, "cachedFrom": source, "reusedBy": run["id"],
               "runCreatedAt": run.get("createdAt"), "promotedAt": runs.rfc3339(now)}
    for _ in range(CAS_ATTEMPTS):
        try:
            blob = store.read(key)
            current, generation = json.loads(blob.data), blob.generation
        except NotFoundError:
            current, generation = None, 0
        if current and current.get("runId") == source:
            return False
        if current and str(current.get("runCreatedAt") or "") > str(run.get("createdAt")):
            return False  # a newer change's model stands
        try:
            store.write(key, json.dumps(pointer, indent=1, sort_keys=True).encode(), if_generation_match=generation)
            log.info("bot %s: model pointer moved to run %s (cache hit %s)", bot, source, run["id"])
            return True
        except PreconditionFailedError:
            continue
    return False
