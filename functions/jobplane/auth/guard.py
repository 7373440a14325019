"""The checks every API request passes before its handler runs, on the cluster and on the
embedded plane alike: allowed Host, same-origin changes, then a credential.

The credential is ``Authorization: Bearer …``, or the dashboard's session cookie (set by
``POST /login``). A change authenticated by the cookie must also carry a matching ``Origin``
(SameSite=Strict keeps the cookie off cross-site requests already; this keeps it off the rest).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from werkzeug.http import parse_cookie

from ..settings import Settings
from . import permissions
from .base import Access, Identity
from .origin import check_host, check_origin, split_host

SESSION_COOKIE: Final = "jobplane_session"
HEALTH_PATH: Final = "/healthz"
"""Exempt from the Host check: kubelet probes name the pod's IP."""


@dataclass(frozen=True)
class RequestView:
    """What the checks read from an HTTP request."""

    method: str
    path: str
    host: str
    origin: str | None
    authorization: str
    cookies: Mapping[str, str]
    secure: bool

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> RequestView:
        scheme = str(environ.get("HTTP_X_FORWARDED_PROTO") or environ.get("wsgi.url_scheme") or "http")
        return cls(
            method=str(environ.get("REQUEST_METHOD") or "GET").upper(),
            path=str(environ.get("PATH_INFO") or "/"),
            host=str(environ.get("HTTP_HOST") or ""),
            origin=environ.get("HTTP_ORIGIN"),
            authorization=str(environ.get("HTTP_AUTHORIZATION") or ""),
            cookies=parse_cookie(str(environ.get("HTTP_COOKIE") or "")),
            secure=scheme.split(",")[0].strip().lower() == "https",
        )

    @property
    def changes(self) -> bool:
        return self.method in permissions.UNSAFE_METHODS

    def bearer(self) -> str:
        scheme, _, value = self.authorization.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""


def cookie_name(host: str) -> str:
    """One cookie per port: browsers share cookies across a host's ports, planes do not."""
    port = split_host(host)[1]
    return f"{SESSION_COOKIE}_{port}" if port else SESSION_COOKIE


def credential(request: RequestView) -> tuple[str, bool]:
    """(the bearer token, whether it came from the session cookie)."""
    bearer = request.bearer()
    if bearer:
        return bearer, False
    cookie = request.cookies.get(cookie_name(request.host), "")
    return cookie, bool(cookie)


def check_request(request: RequestView, *, settings: Settings) -> None:
    """Host allow-list for every path but health; the Origin rule for changes."""
    if request.path != HEALTH_PATH:
        check_host(request.host, settings.allowed_hosts)
    if request.changes:
        by_cookie = credential(request)[1] and not permissions.is_open(request.path)
        check_origin(request.origin, request.host, required=by_cookie)


def admit(request: RequestView, *, settings: Settings, access: Access) -> Identity | None:
    """Run the checks; the caller's identity, or None for an open path (health, the dashboard
    shell, the API description, login). Raises ``RefusedError`` (403) or
    ``UnauthenticatedError`` (401)."""
    check_request(request, settings=settings)
    if permissions.is_open(request.path):
        return None
    return access.authenticate(credential(request)[0])
