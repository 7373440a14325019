"""The status function: callbacks from Jobs (run.progress, run.succeeded, run.failed) into
run records; for a succeeded training run, the promotion of its model (``jobplane.promotion``:
only here, after the stored record says ``succeeded``, never by the trainer) and a
``dev.jobplane.model.ready`` reply when the pointer moved.

Thin by design: the token check, the append-only log and the coalesced record writes live in
``jobplane.progress``; this module only picks the path by event type and builds the reply.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import flask

from .. import events as ev
from .. import cache, logs, progress, promotion
from ..errors import PermanentError
from ..runtime import Runtime
from .common import event_endpoint

SOURCE: Final = "/jobplane/status"

log = logging.getLogger(__name__)


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    return event_endpoint(request, lambda event: on_event(event, rt=rt))


def on_event(event: ev.Event, *, rt: Runtime) -> ev.Event | None:
    """Merge one callback; the reply, if any, re-enters the broker."""
    if event.type == ev.RUN_LAUNCHED:
        return None  # the launch function already recorded it when it created the Job
    if event.type not in progress.CALLBACK_TYPES:
        raise PermanentError(f"status takes run.progress/succeeded/failed callbacks, got {event.type!r}")
    run_id = progress.run_id_of(event)
    logs.bind(runId=run_id)  # with the event's traceparent (event_endpoint): the Job's hop of the run's trace
    progress.authorize(event, run_id, key=rt.settings.callback_key, store=rt.store, now=rt.clock())
    final = progress.ingest(event, run_id, store=rt.store, now=rt.clock())
    log.log(logging.DEBUG if event.type == ev.RUN_PROGRESS else logging.INFO, "run %s: %s", run_id, event.type)
    if final is None:
        return None
    cache.remember(rt.store, final)  # a succeeded run's inputs name it from now on (before the gate: see promotion.settled)
    if event.type == ev.RUN_SUCCEEDED:
        data = event.data if isinstance(event.data, Mapping) else {}
        final = promotion.promote(rt.store, final, data=data, now=rt.clock())
    return model_ready(final)


def model_ready(run: Mapping[str, Any]) -> ev.Event | None:
    """``dev.jobplane.model.ready`` for a succeeded run that promoted its model, else None."""
    if run.get("state") != "succeeded" or not run.get("promoted") or not run.get("botId"):
        return None
    if run.get("type", "training") != "training":
        return None  # a kb-index run promotes a search index, not a model
    artifacts = run.get("artifacts") or {}
    data = {
        "botId": run["botId"],
        "runId": run["id"],
        "modelUri": run.get("modelUri") or artifacts.get("model"),
        "metrics": run.get("metrics") or {},
    }
    return ev.new_event(ev.MODEL_READY, source=SOURCE, subject=str(run["botId"]), data=data,
                        id=f"{run['id']}-model-ready")
