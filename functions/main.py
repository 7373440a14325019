"""functions-framework source: one HTTP target per Knative Service (conventions.SERVICE_TARGETS).

Each target is a thin call into ``jobplane.handlers.<name>.handle(request, runtime)``. Handler
modules are imported inside the target so that one missing optional module (``predict`` needs
the trainer package, for instance) never breaks the others.
"""

from __future__ import annotations

import importlib

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from jobplane import runtime


SCRAPED: frozenset[str] = frozenset({"launch", "status", "reconcile", "deadletter"})
"""Cluster-local targets that answer ``GET /metrics`` themselves, without a credential (each
pod counts what it handled); the api serves its own behind RBAC, predict (public) none."""


def _handle(name: str, request: flask.Request) -> flask.Response:
    if name in SCRAPED and request.method == "GET" and request.path.rstrip("/") == "/metrics":
        from jobplane import metrics

        return flask.Response(metrics.render(), status=200, headers={"Content-Type": metrics.CONTENT_TYPE})
    module = importlib.import_module(f"jobplane.handlers.{name}")
    response: flask.Response = module.handle(request, runtime.current())
    return response


def _configure_door(app: flask.Flask) -> None:
    """What every function's app refuses before a handler runs, and how it says so: bodies
    over ``Settings.max_event_bytes`` (413 unread on ``Content-Length``; a chunked body ends
    for the app one byte past the limit), and every error Flask or Werkzeug answers itself
    (404, 405, 500) as JSON in the API's error shape, never HTML."""
    from jobplane.app import guard_body
    from jobplane.errors import JobplaneError
    from jobplane.handlers.common import http_error_response
    from jobplane.limits import DEFAULT_MAX_EVENT_BYTES

    try:
        limit = runtime.current_settings().max_event_bytes
    except JobplaneError:  # bad settings: every request says why (runtime.current raises them)
        limit = DEFAULT_MAX_EVENT_BYTES
    app.wsgi_app = guard_body(app.wsgi_app, limit)  # type: ignore[method-assign,assignment]
    app.register_error_handler(HTTPException, http_error_response)
    app.register_error_handler(Exception, http_error_response)


def _configure_logs() -> None:
    """JSON log lines (``jobplane.logs``); ``JOBPLANE_LOG_FORMAT=text`` for plain ones."""
    import os

    from jobplane import logs

    logs.configure(logs.format_from(os.environ), keep=True)


_configure_logs()
_configure_door(flask.current_app)  # functions-framework runs this file inside its app's context


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
