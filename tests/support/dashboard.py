"""Runs, figures and models written straight into a store, for the dashboard's page tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs
from jobplane.store.base import ObjectStore

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LABELS = ["greet", "goodbye", "book_table"]
MATRIX = [[3, 1, 0], [0, 2, 0], [1, 0, 4]]


def seed_run(store: ObjectStore, spec: dict[str, Any], *, n: int = 0, **fields: Any) -> dict[str, Any]:
    """The ``n``-th run of ``spec`` (one minute apart), stored with its index; ``fields``
    replace the record's (state, progress, metrics…)."""
    trigger = {"type": ev.BOT_CHANGED, "source": "/platform/bots", "id": f"evt-{n}", "subject": spec["params"]["botId"]}
    run = runs.new_run(spec=spec, trigger=trigger, requested_by="alice@example.com", now=T0 + timedelta(minutes=n))
    run.update(fields)
    runs.create_run(store, run)
    return run


def seed_figures(store: ObjectStore, run_id: str) -> None:
    """metrics.json and confusion_matrix.json as the trainer writes them, and two progress events."""
    prefix = c.run_artifacts_prefix(run_id)
    figures = {
        "accuracy": 0.818, "evaluatedOn": "test",
        "intents": {"accuracy": 0.818, "per_intent": {
            "greet": {"precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4},
            "goodbye": {"precision": 0.667, "recall": 1.0, "f1": 0.8, "support": 2},
            "book_table": {"precision": 1.0, "recall": 0.8, "f1": 0.889, "support": 5}}},
        "entities": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 2,
                     "per_entity": {"party_size": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 2}}},
    }
    store.write(prefix + "metrics.json", json.dumps(figures).encode())
    store.write(prefix + "confusion_matrix.json", json.dumps({"labels": LABELS, "matrix": MATRIX}).encode())
    store.write(prefix + "model.npz", b"PK\x03\x04 not really a model", content_type="application/octet-stream")
    for i, (progress, phase) in enumerate([(10, "prepare"), (100, "succeeded")]):
        event = {"type": ev.RUN_PROGRESS, "time": f"2026-12-01T09:0{i}:00Z", "data": {"progress": progress, "phase": phase,
                                                                                      "message": f"step {i}"}}
        store.write(f"{c.run_events_prefix(run_id)}{i:016d}-e{i}", json.dumps(event).encode())
