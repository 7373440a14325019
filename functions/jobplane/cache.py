"""The result cache: a run whose inputs match a succeeded run's reuses that run's model or index.

A training run's inputs are what goes into its model: the training data's content (the SHA-256 of the
stored object's bytes, so a bot reverted to an earlier revision, or the same examples sent
again, hashes the same), the effective params (the content hashes of ``trainingData`` and ``testData`` stand
for their URIs), the trainer image and the trainer version. A ``kb-index`` run's inputs are the
content hashes of its articles, read as its Job reads them (``jobplane.kbkey``), the passage
params with their defaults, the image and the trainer version. Their SHA-256 is
the run's ``cacheKey``, recorded on the run at launch. When such a run succeeds, the status
function writes ``cache/{type}/{cacheKey}.json`` naming it (``remember``), so a lookup is one
read of a key derived from the inputs, never a listing. A later run with the same key ends
``skipped`` with reason ``CacheHit``, ``reusedRun``/``cachedFrom`` naming the run whose model
(or index) and metrics it points at, and no Job (``launching``); the bot's model pointer (or
index pointer ``bots/{botId}/index.json``) is moved to that run's when it names another
(``point_bot_at``: a bot reverted to an earlier revision gets that revision's model back),
never back behind a newer change's. ``force: true`` on the request trains (indexes) anyway.

Only what the promotion gate let through is reused (``standing``). A bot's succeeded run is
reused as it stands when it was promoted. When the gate judged its model and refused it (worse
than the current one by more than the margin), or promotion was not requested, the same inputs
would make the same model and be refused again: a later run is still a ``CacheHit`` with no Job,
but the pointer stays where it is, and the run's message and ``cachedFrom.promoted: false`` say
so (``force: true`` trains again). When the gate never judged it (its pointer named a newer
run's model or index at the time, or the decision is not made yet), the lookup is a miss: the
run trains or indexes again and is judged on its own, so a bot reverted to such inputs still
gets a model of them.
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
from . import kbkey, promotion, runs
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
RECORD_FIELDS: Final = ("cacheKey", "reusedRun", "cachedFrom", "metrics", "artifacts", "modelUri", "indexUri")
"""What a run record carries of the cache (its key; on a hit, what it reuses)."""

Hasher = Callable[[Mapping[str, Any], ObjectStore, Settings], "str | None"]


@dataclass(frozen=True)
class Hit:
    """A succeeded run with the same inputs: its id, metrics and artifacts; ``promoted``:
    whether its model or index may become the bot's (``standing``)."""

    key: str
    run: runs.Run
    promoted: bool = True


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
    return _digest(spec, {"data": contents, "params": {k: v for k, v in params.items() if k not in NOT_INPUTS}}, settings)


def kb_index_key(spec: Mapping[str, Any], store: ObjectStore, settings: Settings) -> str | None:
    """The cache key of a kb-index spec's inputs (``jobplane.kbkey``); None when its articles
    cannot be told (the Job would refuse them)."""
    found = kbkey.inputs(spec.get("params") or {}, store)
    return None if found is None else _digest(spec, found, settings)


def _digest(spec: Mapping[str, Any], inputs: Mapping[str, Any], settings: Settings) -> str:
    """SHA-256 of a run's inputs with its type, image and trainer version."""
    job_type = str(spec.get("type"))
    whole = {"type": job_type, **inputs, "image": settings.image_for(job_type), "trainerVersion": TRAINER_VERSION}
    return hashlib.sha256(json.dumps(whole, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


HASHERS: Final[dict[str, Hasher]] = {"training": training_key, "kb-index": kb_index_key}
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
    found = standing(run)
    return None if found == UNJUDGED else Hit(key=key, run=run, promoted=found == PROMOTED)


PROMOTED: Final = "promoted"
REFUSED: Final = "refused"
UNJUDGED: Final = "unjudged"


def standing(run: Mapping[str, Any]) -> str:
    """How a succeeded run may be reused (see the module's docstring): ``PROMOTED`` (or it has
    no bot pointer to move), ``REFUSED`` (judged and refused, or promotion not requested: a hit
    that leaves the pointer alone) or ``UNJUDGED`` (a miss)."""
    if not run.get("botId") or run.get("type") not in promotion.PROMOTED_TYPES or run.get("promoted") is True:
        return PROMOTED
    gate = run.get("gate")
    if not isinstance(gate, Mapping):
        return UNJUDGED  # the decision is not made yet
    if str(gate.get("decision", "")).startswith("not requested"):
        return REFUSED
    candidate, current, margin = gate.get("candidate"), gate.get("current"), gate.get("margin", promotion.MARGIN)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (candidate, current, margin))
    if numbers and float(candidate) < float(current) - float(margin):  # type: ignore[arg-type]
        return REFUSED
    return UNJUDGED  # kept because a newer run's stood, or the pointer kept changing


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
    what = "index" if source.get("type") == "kb-index" else "model"
    new = runs.transition(run, "skipped", reason=REASON, now=now)
    new["message"] = f"inputs match run {source['id']}: its {what} is reused, no Job"
    if not hit.promoted:
        decision = (source.get("gate") or {}).get("decision") or "not promoted"
        new["message"] = (f"inputs match run {source['id']}, whose {what} was not promoted ({decision}): "
                          f"no Job, and the bot keeps its current {what} (force: true runs again)")
    new["reusedRun"] = source["id"]
    new["cachedFrom"] = {"runId": source["id"], "specId": source.get("specId"), "cacheKey": hit.key,
                         "finishedAt": source.get("finishedAt"), "promoted": hit.promoted}
    new["cacheKey"] = hit.key
    new["metrics"] = source.get("metrics")
    new["artifacts"] = dict(source.get("artifacts") or {})
    for field, artifact in (("modelUri", "model"), ("indexUri", "index")) if hit.promoted else ():  # as promotion._note
        if source.get(field) or new["artifacts"].get(artifact):
            new[field] = source.get(field) or new["artifacts"][artifact]
    return new


def point_bot_at(store: ObjectStore, run: Mapping[str, Any], *, now: datetime) -> bool:
    """Move the bot's model pointer (a kb-index run: its index pointer) to what a ``CacheHit``
    run reuses, unless it names that run already or the reused run was not promoted
    (``cachedFrom.promoted: false``). The pointer's order is the deciding run's creation time,
    so a hit never moves it back behind a model or index promoted for a newer change."""
    bot, source = run.get("botId"), run.get("reusedRun")
    pointed = _pointer(run)
    if not bot or not source or pointed is None or (run.get("cachedFrom") or {}).get("promoted") is False:
        return False
    key, body = pointed
    pointer = {"botId": bot, "runId": source, "specId": run.get("specId"), **body,
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
            return False  # a newer change's model or index stands
        try:
            store.write(key, json.dumps(pointer, indent=1, sort_keys=True).encode(), if_generation_match=generation)
            log.info("bot %s: %s moved to run %s (cache hit %s)", bot, key, source, run["id"])
            return True
        except PreconditionFailedError:
            continue
    return False


def _pointer(run: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The bot pointer a hit of ``run``'s type moves, and what it names; None without one."""
    bot, artifacts = str(run.get("botId")), run.get("artifacts") or {}
    if run.get("type") == "kb-index":
        return (c.bot_index_key(bot), {"indexUri": run["indexUri"], "manifestUri": artifacts.get("manifest")}) \
            if run.get("indexUri") else None
    return (c.bot_model_key(bot), {"modelUri": run["modelUri"], "validationUri": artifacts.get("validation")}) \
        if run.get("modelUri") else None
