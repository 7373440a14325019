"""The auth port: who is calling (``Identity``), what they want to do (``Permission``), and the
two questions every API request asks (``Access.authenticate`` then ``Access.authorize``).

Adapters: ``token.TokenAccess`` (one shared bearer token, the embedded plane),
``kubernetes.KubernetesAccess`` (TokenReview + SubjectAccessReview: Kubernetes RBAC decides)
and ``NoAccessControl`` (``JOBPLANE_AUTH=none``, only by explicit choice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from ..errors import ForbiddenError, PermanentError

API_GROUP: Final = "jobplane.dev"


class UnauthenticatedError(PermanentError):
    """No credential, or one that does not authenticate anybody (401 with ``WWW-Authenticate``)."""

    status = 401
    code = "unauthenticated"

    def __init__(self, message: str, *, invalid: bool = False) -> None:
        super().__init__(message)
        challenge = 'Bearer realm="jobplane"'
        self.headers = {"WWW-Authenticate": challenge + (', error="invalid_token"' if invalid else "")}


class RefusedError(ForbiddenError):
    """Authenticated (or not yet asked) but not allowed: a foreign Host or Origin, or RBAC said no."""


@dataclass(frozen=True)
class Identity:
    """Who the credential belongs to (a TokenReview's ``status.user``)."""

    user: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """``(key, values)`` pairs, sorted: hashable, so decisions can be cached per identity."""


@dataclass(frozen=True)
class Permission:
    """One SubjectAccessReview's resource attributes (API group ``jobplane.dev``)."""

    verb: str
    resource: str
    subresource: str = ""
    name: str = ""

    def __str__(self) -> str:
        what = self.resource + (f"/{self.subresource}" if self.subresource else "")
        return f"{self.verb} {what}.{API_GROUP}" + (f" {self.name!r}" if self.name else "")


class Access(Protocol):
    """Authenticates a bearer credential, then authorizes one permission for its holder."""

    mode: str

    def authenticate(self, credential: str) -> Identity:
        """The holder of ``credential``; ``UnauthenticatedError`` when it is empty or wrong,
        ``UnavailableError`` when the authority cannot be asked now."""
        ...

    def authorize(self, who: Identity, permission: Permission | None) -> None:
        """Return when ``who`` may; ``RefusedError`` otherwise. ``None``: a route with no
        permission in the table (refused where permissions are checked at all)."""
        ...


class NoAccessControl:
    """``JOBPLANE_AUTH=none``: everybody may do everything."""

    mode = "none"

    def authenticate(self, credential: str) -> Identity:
        return Identity(user="system:anonymous")

    def authorize(self, who: Identity, permission: Permission | None) -> None:
        return None
