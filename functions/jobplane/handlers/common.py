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

from ..errors import JobplaneError, PermanentError, PreconditionFailedError, TransientError
from ..events import Event, from_http, to_http

log = logging.getLogger(__name__)

MAX_EVENT_BYTES: Final = 10 * 1024 * 1024
"""Largest event body accepted (inline training data of a small bot fits well under it)."""
BROKER_RETRIES: Final = frozenset({404, 408, 409, 429})
"""4xx statuses Knative's broker retries; a permanent error must not answer them."""


class MethodNotAllowedError(PermanentError):
    """The path exists but not with this method (405)."""

    status = 405
    code = "method_not_allowed"


class PayloadTooLargeError(PermanentError):
    """The request body is over the endpoint's limit (413)."""

    status = 413
    code = "too_large"


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
        return error_response(e)
    try:
        reply = fn(event)
    except Exception as e:  # noqa: BLE001 - the status depends on the kind; see event_status
        return _event_error(e, event)
    if reply is None:
        return flask.Response(status=204)
    headers, body = to_http(reply)
    return flask.Response(body, status=200, headers=headers)


def read_body(request: flask.Request, *, limit: int | None = None) -> bytes:
    """The request body; ``PayloadTooLargeError`` when over ``limit`` (default ``MAX_EVENT_BYTES``)."""
    limit = MAX_EVENT_BYTES if limit is None else limit
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLargeError(f"request body of {length} bytes exceeds the limit of {limit}")
    body = request.get_data()
    if len(body) > limit:
        raise PayloadTooLargeError(f"request body exceeds the limit of {limit} bytes")
    return body


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
    """The API's error shape ``{"error": {"code", "message", "details"}}`` for ``err``.

    Unexpected exceptions answer 500 with a generic message: their text may hold internals.
    """
    if isinstance(err, JobplaneError):
        return json_response(err.to_body(), status or err.status)
    body = {"error": {"code": "internal", "message": "internal error", "details": []}}
    return json_response(body, status or 500)

