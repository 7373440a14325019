"""The trainer as a Job of the plane: env in, data from the store (confined to its bot and
capped in size), artifacts back to the store under its own run only (the status function
promotes the model once the run's record says succeeded), CloudEvents to ``$K_SINK``, and the exit code the Job's
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
from jobplane.errors import NotFoundError, Problem
from jobplane.settings import DEFAULT_MAX_DATA_BYTES, data_prefixes
from jobplane.store import ObjectStore

from . import __version__, metrics
from .data import BadDataError, Example, data_hash, parse, to_project, validate
from .holdout import DEFAULT_FRACTION, TEST_FILE, hold_out
from .inputs import read_data, run_store
from .report import FINAL_RETRY_SECONDS, Reporter
from .train import Hooks, Progress, TrainConfig, TrainResult, train

log = logging.getLogger("jobplane_trainer")


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
    data_prefixes: tuple[str, ...] = ()
    """Store URI prefixes, besides ``bots/{botId}/``, the run may read data from."""
    max_data_bytes: int = DEFAULT_MAX_DATA_BYTES
    """Largest data object the run reads."""
    traceparent: str = ""
    """The run's W3C trace context (``TRACEPARENT``); every callback carries it back."""

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
        problems: list[Problem] = []
        prefixes = data_prefixes(env.get(c.ENV_DATA_PREFIXES, ""), problems)
        raw_max = env.get(c.ENV_MAX_DATA_BYTES, "")
        max_data = int(raw_max) if raw_max.isdigit() and int(raw_max) > 0 else DEFAULT_MAX_DATA_BYTES
        if problems:
            raise BadDataError(problems, what="job environment")
        return cls(
            run_id=env[c.ENV_RUN_ID], spec_id=env.get(c.ENV_SPEC_ID, ""),
            bot_id=env.get(c.ENV_BOT_ID) or str(params.get("botId", "")), job_type=env.get(c.ENV_JOB_TYPE, "training"),
            sink=env.get(c.ENV_SINK, ""), token=env.get(c.ENV_TOKEN, ""), store_url=env[c.ENV_STORE], params=params,
            final_retry_s=final_retry_s,
            data_prefixes=prefixes, max_data_bytes=max_data, traceparent=env.get(c.ENV_TRACEPARENT, ""),
        )


def checkpoint_key(run_id: str) -> str:
    return f"runs/{run_id}/checkpoint/train.ckpt"


def read_training_data(store: ObjectStore, params: Mapping[str, Any], *, bot_id: str = "",
                       prefixes: tuple[str, ...] = (), limit: int = DEFAULT_MAX_DATA_BYTES) -> list[Any]:
    """The examples named by ``params.trainingData.uri`` (confined, size-capped), parsed and validated."""
    uri = (params.get("trainingData") or {}).get("uri") if isinstance(params.get("trainingData"), Mapping) else None
    if not isinstance(uri, str) or not uri:
        raise BadDataError([Problem("params.trainingData.uri", "must name the training data in the store")])
    bot = bot_id or str(params.get("botId", ""))
    raw, name = read_data(store, uri, field="params.trainingData.uri", bot_id=bot, prefixes=prefixes, limit=limit)
    examples = parse(raw, name=name)
    validate(examples)
    return examples


def execute(env: JobEnv, reporter: Reporter, *, stop: threading.Event) -> dict[str, Any]:
    """Train the bot named by ``env`` and write its artifacts under its run; the succeeded
    event's data. The trainer never promotes: the status function does, once the run's record
    says ``succeeded`` (``jobplane.promotion``); ``model`` tells it what the pointer carries."""
    store = run_store(env.store_url, run_id=env.run_id, bot_id=env.bot_id)
    reporter.progress(Progress("prepare", 0.5, "reading training data"), force=True)
    examples = read_training_data(store, env.params, bot_id=env.bot_id, prefixes=env.data_prefixes,
                                  limit=env.max_data_bytes)
    hooks = Hooks(
        progress=reporter.progress,
        should_stop=stop.is_set,
        save_checkpoint=lambda b: store.write(checkpoint_key(env.run_id), b, content_type="application/octet-stream"),
        load_checkpoint=lambda: _maybe_read(store, checkpoint_key(env.run_id)),
    )
    cfg = TrainConfig.from_params(env.params)
    training, test = split_for_test(examples, env.params, seed=cfg.seed)
    result = train(training, cfg=cfg, hooks=hooks, test=test or None)
    result.metrics |= {"testSize": len(test), "heldOutTestSplit": float(env.params.get("testSplit", DEFAULT_FRACTION))}
    reporter.progress(Progress("upload", 97.0, "writing artifacts"), force=True)
    dhash = data_hash(examples)
    artifacts = write_artifacts(store, env, result, dhash=dhash, test=test, trained_on=data_hash(training))
    model = {"format": inference.FORMAT, "threshold": result.meta["threshold"], "trainingDataHash": f"sha256:{dhash}",
             "trainerVersion": __version__}
    return {"metrics": result.summary | {"threshold": result.meta["threshold"]}, "artifacts": artifacts,
            "promote": env.params.get("promote") is not False, "model": model, "botId": env.bot_id,
            "timings": result.timings}


def split_for_test(examples: list[Example], params: Mapping[str, Any], *, seed: int) -> tuple[list[Example], list[Example]]:
    """``(training, test)``: the test split (``params.testSplit``, default 10 % per intent,
    ``holdout``) is kept out of training and the refit; the model's figures are measured on it."""
    return hold_out(examples, fraction=float(params.get("testSplit", DEFAULT_FRACTION)), seed=seed)


def _maybe_read(store: ObjectStore, key: str) -> bytes | None:
    try:
        return store.read(key).data
    except NotFoundError:
        return None


def write_artifacts(store: ObjectStore, env: JobEnv, result: TrainResult, *, dhash: str, test: list[Example] | None = None,
                    trained_on: str | None = None) -> dict[str, str]:
    """model.npz, metrics.json, confusion_matrix.{json,png}, model_card.json, the validation
    examples and the held-out test split (``test.json``) under the run."""
    prefix = c.run_artifacts_prefix(env.run_id)
    card = model_card(env, result, dhash=dhash) | {"trainedOnHash": f"sha256:{trained_on or dhash}", "testSize": len(test or ())}
    files: dict[str, tuple[str, bytes, str]] = {
        "model": (inference.MODEL_FILE, result.model, "application/octet-stream"),
        "metrics": ("metrics.json", _json(result.metrics), "application/json"),
        "confusionMatrix": ("confusion_matrix.json", _json(result.confusion), "application/json"),
        "confusionMatrixPng": ("confusion_matrix.png", metrics.heatmap_png(result.confusion["matrix"]), "image/png"),
        "modelCard": ("model_card.json", _json(card), "application/json"),
        "validation": ("validation.json", _json(to_project(result.validation)), "application/json"),
        "test": (TEST_FILE, _json(to_project(test or [])), "application/json"),
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


def _json(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False).encode()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
