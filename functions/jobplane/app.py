"""One WSGI front door for the embedded plane, laid out like the cluster's URLs.

``/{namespace}/{broker}`` is the broker ingress (as Knative's broker URL), ``/_functions/{service}``
is the function a Knative Service of that name would run (Triggers' subscribers resolve there),
and everything else (``/v1/...``, ``/openapi.json``, ``/healthz``, ``/``) is the api function.
Each function is the real functions-framework app of its target in ``functions/main.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

from . import conventions as c
from .errors import JobplaneError
from .limits import BODY_LIMIT_KEY, DEFAULT_MAX_EVENT_BYTES, CappedInput, too_large

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

FUNCTIONS_PREFIX: Final = "/_functions/"
API_SERVICE: Final = "jobplane-api"
_API_FIRST_SEGMENTS: Final = frozenset({"v1", "openapi.json", "healthz", "static", "favicon.ico", "", "runs", "bots"})
"""Two-segment paths under these are the api's (``/runs/{id}``, ``/bots/{id}``: dashboard pages), not a broker's."""


def main_source() -> Path:
    """``functions/main.py``: the functions-framework source file beside the package."""
    return Path(__file__).resolve().parent.parent / "main.py"


def create_function_app(target: str, *, source: Path | None = None) -> WSGIApp:
    """The functions-framework app of ``target``. ``create_app`` writes ``os.environ``
    (FUNCTION_TARGET, FUNCTION_SIGNATURE_TYPE); the environment is restored afterwards."""
    import functions_framework

    saved = dict(os.environ)
    try:
        app: WSGIApp = functions_framework.create_app(  # type: ignore[no-untyped-call]
            target=target, source=str(source or main_source()), signature_type="http"
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return app


def function_apps(*, source: Path | None = None) -> dict[str, WSGIApp]:
    """One app per Knative Service name (``conventions.SERVICE_TARGETS``)."""
    return {service: create_function_app(target, source=source) for service, target in c.SERVICE_TARGETS.items()}


Guard = Callable[[Mapping[str, Any]], JobplaneError | None]
"""Checks a request before routing (``auth.frontdoor``): None lets it through."""


class Dispatcher:
    """Routes a request by path to the broker ingress, a function, or the api."""

    def __init__(
        self, *, broker: WSGIApp, functions: Mapping[str, WSGIApp], guard: Guard | None = None,
        max_body_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.broker = broker
        self.functions = dict(functions)
        self.api = self.functions[API_SERVICE]
        self.guard = guard
        self.max_body_bytes = max_body_bytes
        self._sized = guard_body(self._route, max_body_bytes)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        refused = self.guard(environ) if self.guard else None
        if refused is not None:
            return _error(start_response, refused)
        return self._sized(environ, start_response)

    def _route(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path.startswith(FUNCTIONS_PREFIX):
            return self._function(environ, start_response, path)
        segments = path.strip("/").split("/")
        if len(segments) == 2 and segments[0] not in _API_FIRST_SEGMENTS and "" not in segments:
            return self.broker(environ, start_response)
        return self.api(environ, start_response)

    def _function(self, environ: dict[str, Any], start_response: Callable[..., Any], path: str) -> Iterable[bytes]:
        service, _, rest = path[len(FUNCTIONS_PREFIX):].partition("/")
        app = self.functions.get(service)
        if app is None:
            error = {"code": "not_found", "message": f"no function {service!r}", "details": []}
            return json_error(start_response, "404 Not Found", {"error": error})
        environ = dict(environ)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + FUNCTIONS_PREFIX + service
        environ["PATH_INFO"] = "/" + rest
        return app(environ, start_response)


def _error(start_response: Callable[..., Any], err: JobplaneError) -> Iterable[bytes]:
    body = json.dumps(err.to_body()).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    headers += list(getattr(err, "headers", {}).items())
    start_response(f"{err.status} {HTTPStatus(err.status).phrase}", headers)
    return [body]


def build_app(
    *, broker: WSGIApp, source: Path | None = None, guard: Guard | None = None,
    max_body_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> Dispatcher:
    """The embedded plane's WSGI app; ``guard`` checks each request first (Host, Origin, the
    functions' token), then bodies over ``max_body_bytes`` are refused (``guard_body``)."""
    return Dispatcher(broker=broker, functions=function_apps(source=source), guard=guard, max_body_bytes=max_body_bytes)
def json_error(
    start_response: Callable[..., Any], status: str, body: Mapping[str, Any], headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    """Answer a WSGI request with a JSON error body (``{"error": {"code", "message", "details"}}``)."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(raw))), *headers])
    return [raw]


def guard_body(app: WSGIApp, limit: int) -> WSGIApp:
    """``app`` behind the size limit: a ``Content-Length`` over ``limit`` is answered 413 (JSON)
    without reading a byte of the body, and any body (chunked too) ends for ``app`` after
    ``limit + 1`` bytes, so a reader sees it is over and nothing reads the rest."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        declared = _content_length(environ)
        if declared is not None and declared > limit:
            return json_error(start_response, "413 Content Too Large", too_large(limit, declared).to_body(),
                              [("Connection", "close")])
        if not isinstance(environ.get("wsgi.input"), CappedInput) and "wsgi.input" in environ:
            environ["wsgi.input"] = CappedInput(environ["wsgi.input"], limit + 1)
        environ[BODY_LIMIT_KEY] = min(limit, environ.get(BODY_LIMIT_KEY, limit))
        return app(environ, start_response)

    return guarded


def _content_length(environ: Mapping[str, Any]) -> int | None:
    try:
        return int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
