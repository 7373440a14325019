"""The reconcile function: a PingSource fires it every minute; it ends the runs whose Jobs
died without reporting (see ``jobplane.reconcile``). Answers 204: the pass wrote what it found."""

from __future__ import annotations

import logging

import flask

from .. import events as ev
from ..reconcile import reconcile
from ..runtime import Runtime
from .common import event_endpoint

log = logging.getLogger(__name__)


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    return event_endpoint(request, lambda event: on_event(event, rt=rt))


def on_event(event: ev.Event, *, rt: Runtime) -> ev.Event | None:
    """Any event starts a pass (the PingSource's data is not needed); transient failures
    answer 503 through ``event_endpoint`` so the delivery is retried."""
    report = reconcile(rt.store, rt.launcher, now=rt.clock())
    if report.failed or report.errors:
        log.info("reconcile: checked %d, failed %s, errors %d", report.checked, report.failed, len(report.errors))
    return None
