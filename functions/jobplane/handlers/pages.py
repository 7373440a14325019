"""The dashboard's pages, rendered on the server from the store with Jinja (autoescaped).

``/`` lists specs and their runs, ``/runs/{runId}`` shows one run, ``/bots/{botId}`` one bot.
Their lists are in the HTML, so they work without JavaScript; the pages' one script keeps
progress live (polling the API) and drives the try-it and search boxes. Links are relative to
the page, so the dashboard works at ``/`` and behind any path prefix. A browser without a
session is sent to the login page instead of an API error.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import flask
import jinja2

from .. import dashboard
from ..errors import NotFoundError
from .login import PAGE_HEADERS

if TYPE_CHECKING:
    from ..runtime import Runtime

_ID: Final = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
PAGE_PATHS: Final = re.compile(r"/|/runs/[^/:]+|/bots/[^/:]+")
"""The pages: a browser without a session gets a redirect to the login page here."""

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("jobplane", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters["stamp"] = dashboard.stamp


def overview(request: flask.Request, rt: Runtime, params: dict[str, str]) -> flask.Response:
    token = request.args.get("pageToken", "")
    if token and not _ID.fullmatch(token):
        token = ""
    view = dashboard.overview(rt.store, now=datetime.now(UTC), page_token=token)
    return render("overview.html", request, **view)


def run_page(request: flask.Request, rt: Runtime, params: dict[str, str]) -> flask.Response:
    run_id = _checked(params["run_id"], "run")
    try:
        view = dashboard.run_page(rt.store, run_id)
    except NotFoundError:
        return render("missing.html", request, status=404, what=f"No run {run_id!r}.")
    return render("run.html", request, **view)


def bot_page(request: flask.Request, rt: Runtime, params: dict[str, str]) -> flask.Response:
    bot_id = _checked(params["bot_id"], "bot")
    try:
        view = dashboard.bot_page(rt.store, bot_id)
    except NotFoundError as e:
        return render("missing.html", request, status=404, what=str(e))
    return render("bot.html", request, **view)


def _checked(value: str, what: str) -> str:
    if not _ID.fullmatch(value):
        raise NotFoundError(f"no {what} {value!r}")
    return value


def root_of(path: str) -> str:
    """The relative URL of the dashboard's root from ``path`` (``./`` at ``/``, ``../`` one level down)."""
    depth = path.strip("/").count("/")
    return "../" * depth if depth else "./"


def render(template: str, request: flask.Request, *, status: int = 200, **context: Any) -> flask.Response:
    """The page, with a policy that runs only its own script (this response's nonce): were
    anything to slip past autoescaping, a browser would still not run it."""
    nonce = secrets.token_urlsafe(16)
    html = _templates.get_template(template).render(root=root_of(request.path), nonce=nonce, **context)
    policy = (f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
              "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    return flask.Response(html, status=status, mimetype="text/html",
                          headers={**PAGE_HEADERS, "Content-Security-Policy": policy})


def is_page(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") and PAGE_PATHS.fullmatch(path.rstrip("/") or "/") is not None


def to_login(request: flask.Request) -> flask.Response:
    """303 to the login page, relative to the page asked for."""
    return flask.Response(status=303, headers={"Location": root_of(request.path) + "login", **PAGE_HEADERS})
