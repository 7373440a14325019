"""What every function target shares: the CloudEvent endpoint contract and JSON responses.

Knative's broker reads a delivery's HTTP status to decide between done, retry and dead
letter (DESIGN.md, "CloudEvents"). ``event_endpoint`` is the one place that maps the plane's
errors onto those statuses, so no handler can answer a status the broker misreads (a 409 on a
duplicate, a 404 for a spec that will never exist, functions-framework's ``OK`` body).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

import flask
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .. import logs, metrics, tracing
from ..errors import RETRY_AFTER_SECONDS, JobplaneError, PermanentError, PreconditionFailedError, TransientError
from ..events import Event, from_http, to_http
from ..limits import BODY_LIMIT_KEY, DEFAULT_MAX_EVENT_BYTES, read_capped, too_large

log = logging.getLogger(__name__)

MAX_EVENT_BYTES: Final = DEFAULT_MAX_EVENT_BYTES
"""Largest body where no door set one (``functions/main.py`` guards every function's app
with ``Settings.max_event_bytes``)."""
BROKER_RETRIES: Final = frozenset({404, 408, 409, 429})
"""4xx statuses Knative's broker retries; a permanent error must not answer them."""


class MethodNotAllowedError(PermanentError):
    """The path exists but not with this method (405)."""

    status = 405
    code = "method_not_allowed"


def event_endpoint(request: flask.Request, fn: Callable[[Event], Event | None]) -> flask.Response:
    """Parse the CloudEvent in ``request``, call ``fn``, answer as the broker expects.

    ``None`` → 204 with no body; an ``Event`` → 200 carrying it in binary mode (a reply that
    re-enters the broker); errors → the status that tells the broker to retry or not.
    """
    if request.method != "POST":
        return error_response(MethodNotAllowedError(f"event endpoints take POST, got {request.method}"))
    try:
        event = from_http(dict(request.headers), read_body(request))
    except PermanentError as e:
        log.warning("rejected malformed event: %s", e.message)
        metrics.event_malformed()
        return error_response(e)
    trace = tracing.of_event(event.source, event.id, event.extensions)
    with logs.bound(eventType=event.type, eventSource=event.source, eventId=event.id, traceparent=trace):
        response = _answer_event(event, fn)
    metrics.event_handled(event.type, response.status_code)
    return response


def _answer_event(event: Event, fn: Callable[[Event], Event | None]) -> flask.Response:
    try:
        reply = fn(event)
    except Exception as e:  # noqa: BLE001 - the status depends on the kind; see event_status
        return _event_error(e, event)
    if reply is None:
        return flask.Response(status=204)
    headers, body = to_http(reply)
    return flask.Response(body, status=200, headers=headers)


def read_body(request: flask.Request, *, limit: int | None = None) -> bytes:
    """The request body, read at most ``limit + 1`` bytes far (``Content-Length`` or chunked);
    ``PayloadTooLargeError`` when over ``limit`` (default: the door's, ``app.guard_body``)."""
    limit = limit or request.environ.get(BODY_LIMIT_KEY) or MAX_EVENT_BYTES
    try:
        return read_capped(request.stream, limit, declared=request.content_length)
    except RequestEntityTooLarge:
        raise too_large(limit, request.content_length) from None


def event_status(err: BaseException) -> int:
    """The status an event endpoint answers for ``err`` (DESIGN.md's delivery rules)."""
    if isinstance(err, TransientError | PreconditionFailedError):
        return 503
    if isinstance(err, PermanentError):
        return 400 if err.status in BROKER_RETRIES else err.status
    return 500


def _event_error(err: Exception, event: Event) -> flask.Response:
    status = event_status(err)
    what = f"{event.type} {event.source} {event.id}"
    if status >= 500 and not isinstance(err, JobplaneError):
        log.exception("unexpected error handling %s", what)
    elif status >= 500:
        log.warning("transient failure handling %s (the broker will retry): %s", what, err)
    else:
        log.warning("permanent failure handling %s (not retried): %s", what, err)
    return error_response(err, status=status)


def json_response(
    obj: Any, status: int = 200, *, headers: Mapping[str, str] | None = None
) -> flask.Response:
    """``obj`` as a JSON response."""
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    response = flask.Response(body, status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(err: BaseException, *, status: int | None = None) -> flask.Response:
    """The API's error shape ``{"error": {"code", "message", "details"}}`` for ``err``; a 503
    (a retry can fix it) carries ``Retry-After``.

    Unexpected exceptions answer 500 with a generic message: their text may hold internals.
    """
    if isinstance(err, JobplaneError):
        response = json_response(err.to_body(), status or err.status)
    else:
        body = {"error": {"code": "internal", "message": "internal error", "details": []}}
        response = json_response(body, status or 500)
    if response.status_code == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response



HTTP_CODES: Final = {
    400: "invalid", 404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
}


def http_error_response(err: Exception) -> flask.Response:
    """Werkzeug's own errors (no route, wrong method, body over ``MAX_CONTENT_LENGTH``) and
    anything no handler caught, in the API's JSON error shape instead of an HTML page."""
    if not isinstance(err, HTTPException):
        log.error("unhandled error in %s %s", flask.request.method, flask.request.path, exc_info=err)
        return error_response(err)
    status = err.code or 500
    message = err.description or err.name if status < 500 else "internal error"
    body = {"error": {"code": HTTP_CODES.get(status, "internal" if status >= 500 else "invalid"),
                      "message": message, "details": []}}
    response = json_response(body, status)
    for name, value in err.get_headers():
        if name.lower() in ("allow", "retry-after"):
            response.headers[name] = value
    if status == 503:
        response.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return response
