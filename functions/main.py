"""functions-framework source: one HTTP target per Knative Service (conventions.SERVICE_TARGETS).

Each target is a thin call into ``jobplane.handlers.<name>.handle(request, runtime)``. Handler
modules are imported inside the target so that one missing optional module (``predict`` needs
the trainer package, for instance) never breaks the others.
"""

from __future__ import annotations

import importlib

import flask
import functions_framework

from jobplane import runtime


def _handle(name: str, request: flask.Request) -> flask.Response:
    module = importlib.import_module(f"jobplane.handlers.{name}")
    response: flask.Response = module.handle(request, runtime.current())
    return response


@functions_framework.http
def launch(request: flask.Request) -> flask.Response:
    """CloudEvents that start runs: bot.changed, ping, run.requested."""
    return _handle("launch", request)


@functions_framework.http
def status(request: flask.Request) -> flask.Response:
    """CloudEvents from Jobs: run.progress, run.succeeded, run.failed."""
    return _handle("status", request)


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    """The HTTP API (/v1/...), /openapi.json, /healthz and the dashboard."""
    return _handle("api", request)


@functions_framework.http
def predict(request: flask.Request) -> flask.Response:
    """Serves a bot's newest model; also takes model.ready CloudEvents."""
    return _handle("predict", request)


@functions_framework.http
def reconcile(request: flask.Request) -> flask.Response:
    """Marks runs whose Job died without reporting as failed (periodic ping)."""
    return _handle("reconcile", request)


@functions_framework.http
def deadletter(request: flask.Request) -> flask.Response:
    """Records events the broker gave up on."""
    return _handle("deadletter", request)
