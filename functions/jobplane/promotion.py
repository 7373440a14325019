"""Promotion: the status function, not the trainer, moves a bot's model pointer (and its
search index pointer ``bots/{botId}/index.json`` for a kb-index run).

``bots/{botId}/model.json`` only ever names a run whose record is ``succeeded``: promotion
happens after the terminal callback was merged, from the stored record (terminal states are
sticky, so a run the reconciler failed, a cancelled or a superseded one never gets here,
whatever its trainer sends). The pointer is written by compare-and-swap on its generation and
never moves back to a run created before the one it names; a newer model replaces the current
one unless its macro-F1 is worse by more than ``MARGIN``. The model's URI is the run's own
artifact, derived from the run id, never taken from the callback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from . import conventions as c
from . import runs
from .errors import NotFoundError, PreconditionFailedError
from .store.base import ObjectStore

log = logging.getLogger(__name__)

MARGIN: Final = 0.02
"""A new model is promoted unless its macro-F1 is worse than the current one's by more."""
MODEL_FILE: Final = "model.npz"
VALIDATION_FILE: Final = "validation.json"
CAS_ATTEMPTS: Final = 10
PROMOTED_TYPES: Final = ("training", "kb-index")
"""Job types whose succeeded run moves a bot pointer: the model, the search index."""
INDEX_FILE: Final = "kb_index.npz"
INDEX_MANIFEST: Final = "kb_index.json"
MODEL_FIELDS: Final = ("format", "threshold", "trainingDataHash", "trainerVersion")
"""What the trainer reports about its model that the pointer carries (scalars only)."""


def settled(run: Mapping[str, Any]) -> bool:
    """Terminal, and for a succeeded run whose model or index may be promoted, the decision
    made (``gate``): what a follower waits for before it uses the bot's model. The record reads
    ``succeeded`` a moment before promotion judges it (promotion trusts only a stored success)."""
    if not runs.is_terminal(run):
        return False
    awaits = run.get("state") == "succeeded" and run.get("type") in PROMOTED_TYPES and bool(run.get("botId"))
    return not awaits or "gate" in run


def promote(store: ObjectStore, run: runs.Run, *, data: Mapping[str, Any], now: datetime) -> runs.Run:
    """Judge a finished training run's model and move the pointer if it wins; the run's
    record notes the decision (``promoted``, ``gate``). Anything but a ``succeeded`` training
    run of a bot is returned as it is."""
    if run.get("state") != "succeeded" or run.get("type") not in PROMOTED_TYPES or not run.get("botId"):
        return run
    stored = runs.read_record(store, str(run["id"]))  # the stored truth, not the callback's view
    if stored.run.get("state") != "succeeded" or "gate" in stored.run:
        return stored.run  # not succeeded, or decided by an earlier delivery of this callback
    if data.get("promote") is False:
        promoted, gate = False, {"decision": "not requested (params.promote: false)"}
    elif stored.run.get("type") == "kb-index":
        promoted, gate = promote_index(store, stored.run, data=data, now=now)
    else:
        promoted, gate = _move_pointer(store, stored.run, data=data, now=now)
    return _note(store, stored, promoted=promoted, gate=gate)


def promote_index(store: ObjectStore, run: runs.Run, *, data: Mapping[str, Any], now: datetime) -> tuple[bool, dict[str, Any]]:
    """``bots/{botId}/index.json`` to this run's index (the trainer checked it; a failed check
    fails the run, which never gets here), unless the current one is a newer run's."""
    key = c.bot_index_key(str(run["botId"]))
    prefix = c.run_artifacts_prefix(str(run["id"]))
    metrics = data.get("metrics") if isinstance(data.get("metrics"), Mapping) else {}
    pointer = {"botId": run["botId"], "runId": run["id"], "specId": run.get("specId"), "runCreatedAt": run.get("createdAt"),
               "indexUri": store.uri(prefix + INDEX_FILE), "manifestUri": store.uri(prefix + INDEX_MANIFEST),
               "metrics": {k: v for k, v in (metrics or {}).items() if isinstance(v, int) and not isinstance(v, bool)},
               "promotedAt": runs.rfc3339(now)}
    for _ in range(CAS_ATTEMPTS):
        current, generation = _current(store, key)
        if current and current.get("runId") == run["id"]:
            return True, {"decision": "already promoted"}
        if current and _newer(store, current, than=run):
            return False, {"decision": f"kept current: run {current.get('runId')} is newer"}
        try:
            store.write(key, json.dumps(pointer, indent=1, sort_keys=True).encode(), if_generation_match=generation)
            return True, {"decision": "promoted"}
        except PreconditionFailedError:
            continue
    return False, {"decision": "not promoted: index.json kept changing"}


def pointer_for(store: ObjectStore, run: Mapping[str, Any], *, data: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The pointer naming ``run``'s model: URIs from the run id, figures from the callback."""
    prefix = c.run_artifacts_prefix(str(run["id"]))
    metrics = data.get("metrics") if isinstance(data.get("metrics"), Mapping) else {}
    model = data.get("model") if isinstance(data.get("model"), Mapping) else {}
    pointer: dict[str, Any] = {
        "botId": run["botId"], "runId": run["id"], "specId": run.get("specId"),
        "runCreatedAt": run.get("createdAt"), "modelUri": store.uri(prefix + MODEL_FILE),
        "validationUri": store.uri(prefix + VALIDATION_FILE),
        "metrics": {k: v for k, v in (metrics or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)},
        "promotedAt": runs.rfc3339(now),
    }
    for name in MODEL_FIELDS:
        value = (model or {}).get(name)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            pointer[name] = value
    return pointer


def _move_pointer(store: ObjectStore, run: runs.Run, *, data: Mapping[str, Any], now: datetime) -> tuple[bool, dict[str, Any]]:
    key = c.bot_model_key(str(run["botId"]))
    pointer = pointer_for(store, run, data=data, now=now)
    candidate = float(pointer["metrics"].get("macro_f1", 0.0))
    for _ in range(CAS_ATTEMPTS):
        current, generation = _current(store, key)
        old = float(current["metrics"].get("macro_f1", 0.0)) if current and isinstance(current.get("metrics"), Mapping) else None
        gate: dict[str, Any] = {"metric": "macro_f1", "candidate": candidate, "current": old, "margin": MARGIN}
        if current and current.get("runId") == run["id"]:
            return True, gate | {"decision": "already promoted"}
        if current and _newer(store, current, than=run):
            return False, gate | {"decision": f"kept current: run {current.get('runId')} is newer"}
        if old is not None and candidate < old - MARGIN:
            return False, gate | {"decision": "kept current: candidate worse by more than the margin"}
        try:
            store.write(key, json.dumps(pointer, indent=1, sort_keys=True).encode(), if_generation_match=generation)
            return True, gate | {"decision": "promoted"}
        except PreconditionFailedError:
            continue  # another run promoted meanwhile: judge against it
    return False, {"metric": "macro_f1", "decision": "not promoted: model.json kept changing"}


def _current(store: ObjectStore, key: str) -> tuple[dict[str, Any] | None, int]:
    try:
        blob = store.read(key)
    except NotFoundError:
        return None, 0
    return json.loads(blob.data), blob.generation


def _newer(store: ObjectStore, current: Mapping[str, Any], *, than: Mapping[str, Any]) -> bool:
    """Whether the pointer's run was created after ``than`` (ties: by run id, as launch orders)."""
    created = current.get("runCreatedAt")
    if not isinstance(created, str):  # a pointer from before runCreatedAt: ask its run's record
        try:
            created = str(runs.get_run(store, str(current.get("runId"))).get("createdAt"))
        except (NotFoundError, ValueError):
            return False
    return (created, str(current.get("runId"))) > (str(than.get("createdAt")), str(than["id"]))


def _note(store: ObjectStore, stored: runs.Stored, *, promoted: bool, gate: Mapping[str, Any]) -> runs.Run:
    """Record the decision on the (terminal) run; the model's URI only when it was promoted."""
    run_id = str(stored.run["id"])
    model_uri = store.uri(c.run_artifacts_prefix(run_id) + MODEL_FILE)

    index_uri = store.uri(c.run_artifacts_prefix(run_id) + INDEX_FILE)

    def mutate(r: runs.Run) -> runs.Run:
        r["promoted"], r["gate"] = promoted, dict(gate)
        if promoted and r.get("type") == "kb-index":
            r["indexUri"] = index_uri
        elif promoted:
            r["modelUri"] = model_uri
        return r

    run = runs.update_run(store, run_id, mutate, known=stored)
    log.info("run %s: %s", run_id, gate.get("decision"))
    return run
