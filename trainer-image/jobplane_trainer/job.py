"""The trainer as a Job of the plane: env in, data from the store, artifacts and the promoted
model pointer back to the store, CloudEvents to ``$K_SINK``, and the exit code the Job's
podFailurePolicy reads (bad data → no retries; SIGTERM → checkpoint, a retry resumes).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jobplane import conventions as c
from jobplane import inference
from jobplane.errors import NotFoundError, PreconditionFailedError, Problem
from jobplane.store import ObjectStore, open_store, resolve_uri

from . import __version__, metrics
from .data import BadDataError, data_hash, parse, to_project, validate
from .report import FINAL_RETRY_SECONDS, Reporter
from .train import Hooks, Progress, TrainConfig, TrainResult, train

log = logging.getLogger("jobplane_trainer")
DEFAULT_MARGIN = 0.02
"""A new model is promoted unless its macro-F1 is worse than the current one's by more."""


@dataclass(frozen=True)
class JobEnv:
    """The Job's container env (``conventions.ENV_*``), read once at start."""

    run_id: str
    spec_id: str
    bot_id: str
    job_type: str
    sink: str
    token: str
    store_url: str
    params: dict[str, Any]
    final_retry_s: float = FINAL_RETRY_SECONDS
    """How long the final event is retried (``JOBPLANE_FINAL_RETRY_SECONDS``)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> JobEnv:
        missing = [n for n in (c.ENV_RUN_ID, c.ENV_STORE) if not env.get(n)]
        if missing:
            raise BadDataError([Problem(n, "must be set") for n in missing], what="job environment")
        try:
            params = json.loads(env.get(c.ENV_PARAMS) or "{}")
        except json.JSONDecodeError as e:
            raise BadDataError([Problem(c.ENV_PARAMS, f"not valid JSON: {e}")], what="job environment") from e
        try:
            final_retry_s = float(env.get(c.ENV_FINAL_RETRY) or FINAL_RETRY_SECONDS)
        except ValueError as e:
            raise BadDataError([Problem(c.ENV_FINAL_RETRY, "must be a number of seconds")], what="job environment") from e
        return cls(
            run_id=env[c.ENV_RUN_ID], spec_id=env.get(c.ENV_SPEC_ID, ""),
            bot_id=env.get(c.ENV_BOT_ID) or str(params.get("botId", "")), job_type=env.get(c.ENV_JOB_TYPE, "training"),
            sink=env.get(c.ENV_SINK, ""), token=env.get(c.ENV_TOKEN, ""), store_url=env[c.ENV_STORE], params=params,
            final_retry_s=final_retry_s,
        )


def checkpoint_key(run_id: str) -> str:
    return f"runs/{run_id}/checkpoint/train.ckpt"


def read_training_data(store: ObjectStore, params: Mapping[str, Any]) -> list[Any]:
    """The examples named by ``params.trainingData.uri``, parsed and validated."""
    uri = (params.get("trainingData") or {}).get("uri") if isinstance(params.get("trainingData"), Mapping) else None
    if not isinstance(uri, str) or not uri:
        raise BadDataError([Problem("params.trainingData.uri", "must name the training data in the store")])
    data_store, key = resolve_uri(uri, store=store)
    try:
        raw = data_store.read(key).data
    except NotFoundError as e:
        raise BadDataError([Problem("params.trainingData.uri", f"no object at {uri}")]) from e
    examples = parse(raw, name=key.rsplit("/", 1)[-1])
    validate(examples)
    return examples


def execute(env: JobEnv, reporter: Reporter, *, stop: threading.Event) -> dict[str, Any]:
    """Train the bot named by ``env``, write artifacts, gate and promote; the succeeded event's data."""
    store = open_store(env.store_url)
    reporter.progress(Progress("prepare", 0.5, "reading training data"), force=True)
    examples = read_training_data(store, env.params)
    hooks = Hooks(
        progress=reporter.progress,
        should_stop=stop.is_set,
        save_checkpoint=lambda b: store.write(checkpoint_key(env.run_id), b, content_type="application/octet-stream"),
        load_checkpoint=lambda: _maybe_read(store, checkpoint_key(env.run_id)),
    )
    result = train(examples, cfg=TrainConfig.from_params(env.params), hooks=hooks)
    reporter.progress(Progress("upload", 97.0, "writing artifacts"), force=True)
    artifacts = write_artifacts(store, env, result, dhash=data_hash(examples))
    margin = float(env.params.get("promotionMargin", DEFAULT_MARGIN))
    promoted, gate = promote(store, env=env, result=result, artifacts=artifacts, margin=margin, dhash=data_hash(examples))
    return {"metrics": result.summary | {"threshold": result.meta["threshold"]}, "artifacts": artifacts,
            "promoted": promoted, "gate": gate, "modelUri": artifacts["model"], "botId": env.bot_id, "timings": result.timings}


def _maybe_read(store: ObjectStore, key: str) -> bytes | None:
    try:
        return store.read(key).data
    except NotFoundError:
        return None


def write_artifacts(store: ObjectStore, env: JobEnv, result: TrainResult, *, dhash: str) -> dict[str, str]:
    """model.npz, metrics.json, confusion_matrix.{json,png}, model_card.json under the run."""
    prefix = c.run_artifacts_prefix(env.run_id)
    card = model_card(env, result, dhash=dhash)
    files: dict[str, tuple[str, bytes, str]] = {
        "model": (inference.MODEL_FILE, result.model, "application/octet-stream"),
        "metrics": ("metrics.json", _json(result.metrics), "application/json"),
        "confusionMatrix": ("confusion_matrix.json", _json(result.confusion), "application/json"),
        "confusionMatrixPng": ("confusion_matrix.png", metrics.heatmap_png(result.confusion["matrix"]), "image/png"),
        "modelCard": ("model_card.json", _json(card), "application/json"),
        "validation": ("validation.json", _json(to_project(result.validation)), "application/json"),
    }
    out = {}
    for name, (fname, data, ctype) in files.items():
        store.write(prefix + fname, data, content_type=ctype)
        out[name] = store.uri(prefix + fname)
    return out


def model_card(env: JobEnv, result: TrainResult, *, dhash: str) -> dict[str, Any]:
    return {
        "botId": env.bot_id, "runId": env.run_id, "specId": env.spec_id, "trainerVersion": __version__,
        "format": inference.FORMAT, "trainingDataHash": f"sha256:{dhash}", "params": result.meta["config"],
        "labels": result.meta["labels"], "entityTags": result.meta["tags"], "threshold": result.meta["threshold"],
        "metrics": result.summary, "evaluatedOn": result.metrics["evaluatedOn"], "timings": result.timings,
        "createdAt": _now(),
    }


def promote(store: ObjectStore, *, env: JobEnv, result: TrainResult, artifacts: Mapping[str, str], margin: float,
            dhash: str) -> tuple[bool, dict[str, Any]]:
    """Compare-and-swap ``bots/{botId}/model.json`` to this model unless it is worse than the
    current one by more than ``margin`` (macro-F1)."""
    key = c.bot_model_key(env.bot_id)
    new = result.summary["macro_f1"]
    for _ in range(10):
        current, generation = _current_pointer(store, key)
        old = float(current["metrics"].get("macro_f1", 0.0)) if current else None
        gate = {"metric": "macro_f1", "candidate": new, "current": old, "margin": margin}
        if current and current.get("runId") == env.run_id:
            return True, gate | {"decision": "already promoted"}
        if old is not None and new < old - margin:
            return False, gate | {"decision": "kept current: candidate worse by more than the margin"}
        pointer = {"botId": env.bot_id, "runId": env.run_id, "specId": env.spec_id, "modelUri": artifacts["model"],
                   "validationUri": artifacts.get("validation"),
                   "format": inference.FORMAT, "metrics": result.summary, "threshold": result.meta["threshold"],
                   "trainingDataHash": f"sha256:{dhash}", "trainerVersion": __version__, "promotedAt": _now()}
        try:
            store.write(key, _json(pointer), if_generation_match=generation)
            return True, gate | {"decision": "promoted"}
        except PreconditionFailedError:
            continue  # another run promoted meanwhile: judge against it
    return False, {"metric": "macro_f1", "decision": "not promoted: model.json kept changing"}


def _current_pointer(store: ObjectStore, key: str) -> tuple[dict[str, Any] | None, int]:
    try:
        blob = store.read(key)
    except NotFoundError:
        return None, 0
    return json.loads(blob.data), blob.generation


def _json(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False).encode()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
