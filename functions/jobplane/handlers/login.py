"""The dashboard's login: a token in, an HttpOnly, SameSite=Strict session cookie out.

``jobplane up`` prints ``http://127.0.0.1:PORT/login#token=…``. The token rides in the URL's
fragment, which browsers never send to a server (so it stays out of access logs, proxies and
Referer headers); the login page's script reads it, clears it from the address bar and
``POST``s it here, and the answer sets the cookie that the dashboard's data calls carry. The
page also takes a pasted token (a Kubernetes token in ``kubernetes`` mode).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

import flask

from .. import auth
from ..errors import Problem, ValidationError
from .common import read_body

if TYPE_CHECKING:
    from ..runtime import Runtime

MAX_LOGIN_BYTES: Final = 16 * 1024
"""A Kubernetes ServiceAccount token is 1–2 KiB."""
PAGE_HEADERS: Final = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
"""The plane's HTML pages: never inside another site's frame (no clickjacking of Run/Cancel)."""


def login_page(request: flask.Request, rt: Runtime, params: dict[str, str]) -> flask.Response:
    html = resources.files("jobplane").joinpath("static/login.html").read_bytes()
    return flask.Response(html, status=200, mimetype="text/html", headers=PAGE_HEADERS)


def login(request: flask.Request, rt: Runtime, params: dict[str, str]) -> flask.Response:
    """``{"token": "…"}`` → 204 with the session cookie when the token authenticates, else 401."""
    token = _token_of(read_body(request, limit=MAX_LOGIN_BYTES))
    rt.access.authenticate(token)
    view = auth.RequestView.from_environ(request.environ)
    response = flask.Response(status=204)
    response.set_cookie(auth.cookie_name(view.host), token, httponly=True, samesite="Strict", path="/",
                        secure=view.secure)
    return response


def logout(request: flask.Request, rt: Runtime, params: dict[str, str]) -> flask.Response:
    view = auth.RequestView.from_environ(request.environ)
    response = flask.Response(status=204)
    response.delete_cookie(auth.cookie_name(view.host), path="/", httponly=True, samesite="Strict", secure=view.secure)
    return response


def _token_of(raw: bytes) -> str:
    try:
        body: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValidationError([Problem("body", f"not valid JSON: {e}")], what="login request") from e
    if not isinstance(body, dict) or not isinstance(body.get("token"), str) or set(body) != {"token"}:
        raise ValidationError([Problem("body.token", 'required: {"token": "<the plane\'s API token>"}')],
                              what="login request")
    return str(body["token"]).strip()
