"""The reconcile function: a PingSource fires it every minute; it ends the runs whose Jobs
died without reporting (see ``jobplane.reconcile``). A second PingSource, whose data is
``{"retention": "sweep"}``, makes it sweep a page of what the retention policy no longer keeps
(``jobplane.retention``). Answers 204: the pass wrote what it found."""

from __future__ import annotations

import logging

from collections.abc import Mapping

import flask

from .. import events as ev
from .. import retention
from ..reconcile import Seen, reconcile
from ..runtime import Runtime
from .common import event_endpoint

log = logging.getLogger(__name__)

SWEEP_BUDGET_S = 30.0
"""A sweep stops judging after this long: the Service answers within its 50 s timeout, and the
cursor keeps what was done (knative/base/service_reconciler.yaml)."""

_seen: dict[tuple[str, int], Seen] = {}
"""What this process's passes saw of the Jobs, per (store, launcher): a pass reads only the runs
whose Jobs ended, vanished or moved since (``jobplane.reconcile.Seen``)."""


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    return event_endpoint(request, lambda event: on_event(event, rt=rt))


def on_event(event: ev.Event, *, rt: Runtime) -> ev.Event | None:
    """The retention tick sweeps; any other event starts a reconciler pass (its data is not
    needed). Transient failures answer 503 through ``event_endpoint`` so the delivery is retried."""
    if isinstance(event.data, Mapping) and ev.RETENTION_PING_FIELD in event.data:
        swept = retention.sweep(rt.store, rt.settings.retention, now=rt.clock(), budget_s=SWEEP_BUDGET_S)
        if swept.deleted or swept.raced:
            log.info("retention: %s", "; ".join(retention.describe(swept)[:1] + (["raced"] if swept.raced else [])))
        return None
    launcher = rt.launcher
    seen = _seen.setdefault((rt.store.url, id(launcher)), Seen())
    report = reconcile(rt.store, launcher, now=rt.clock(), seen=seen)
    if report.failed or report.errors:
        log.info("reconcile: checked %d (read %d), failed %s, errors %d", report.checked, report.read, report.failed,
                 len(report.errors))
    return None
