"""A bot's history of runs in a store, for the retention sweep's tests: runs of every age, kind
and state, with their artifacts, progress logs, data revisions and cache entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from support.specs import make_spec

from jobplane import cache, runs
from jobplane import conventions as c
from jobplane.store.base import ObjectStore

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
BOT = "b1"


def data_key(revision: str) -> str:
    return f"{c.bot_data_prefix(BOT)}{revision}.json"


def put_run(store: ObjectStore, name: str, *, days: float, spec_id: str = f"train-{BOT}", job_type: str = "training",
            bot: str | None = BOT, state: str = "succeeded", data: str | None = None,
            cache_key: str | None = None, now: datetime = NOW) -> str:
    """A run created ``days`` before ``now``, with a progress entry and an artifact."""
    spec = make_spec(id=spec_id, type=job_type, params={"botId": bot})
    run = runs.new_run(spec=spec, trigger={"type": "t", "source": "/test", "id": name}, requested_by="test",
                       now=now - timedelta(days=days))
    run["state"] = state
    if data:
        run["params"] = {"trainingData": {"uri": store.uri(data_key(data))}}
        store.write(data_key(data), b'{"examples": []}')
    if cache_key:
        run["cacheKey"] = cache_key
        store.write(cache.entry_key(job_type, cache_key), json.dumps({"runId": run["id"]}).encode())
    run["artifacts"] = {"model": store.uri(f"runs/{run['id']}/artifacts/model.npz")}
    runs.create_run(store, run)
    store.write(f"runs/{run['id']}/artifacts/model.npz", b"model")
    store.write(f"runs/{run['id']}/events/00000001", b"{}")
    return str(run["id"])


def point_model_at(store: ObjectStore, run_id: str) -> None:
    store.write(c.bot_model_key(BOT), json.dumps({"botId": BOT, "runId": run_id}).encode())


HISTORY: dict[str, dict[str, Any]] = {
    "ancient": {"days": 450, "data": "r0"},
    "promoted": {"days": 420, "data": "r1"},
    "active": {"days": 410, "state": "running", "data": "r2"},
    "failed-old": {"days": 300, "state": "failed", "data": "r8"},
    "cached-old": {"days": 200, "data": "r4", "cache_key": "k4"},
    "kept-3": {"days": 140, "data": "r5", "cache_key": "k5"},
    "young-2": {"days": 20, "data": "r8"},
    "young-1": {"days": 10, "data": "r9"},
    "test-ancient": {"days": 410, "spec_id": "nightly", "job_type": "bot-test"},
    "test-old": {"days": 100, "spec_id": "nightly", "job_type": "bot-test"},
    "test-young": {"days": 9, "spec_id": "nightly", "job_type": "bot-test"},
    "sweep-summary": {"days": 500, "spec_id": "retrain-all", "bot": None},
}
"""A bot with a year and more of history (``keep_trainings`` is 3): name → ``put_run`` arguments."""


def build(store: ObjectStore, *, now: datetime = NOW) -> dict[str, str]:
    """``HISTORY`` in ``store``, the bot's training spec naming r9, its model the promoted run's."""
    ids = {name: put_run(store, name, now=now, **kwargs) for name, kwargs in HISTORY.items()}
    store.write(c.spec_key(f"train-{BOT}"), json.dumps(make_spec(
        id=f"train-{BOT}", params={"botId": BOT, "trainingData": {"uri": store.uri(data_key("r9"))}})).encode())
    store.write(data_key("r3"), b"{}")  # a revision no run names: left alone
    point_model_at(store, ids["promoted"])
    return ids


def snapshot(store: ObjectStore) -> dict[str, bytes]:
    """Every object but the sweep's own, with the store's location taken out of their bytes."""
    return {key: store.read(key).data.replace(store.url.encode(), b"STORE") for key in store.list("")
            if not key.startswith("retention/")}


def exists(store: ObjectStore, key: str) -> bool:
    return bool(list(store.list(key)))
