"""Who may call the plane: authentication (``JOBPLANE_AUTH``), RBAC permissions per route, and
the Host/Origin rules that close cross-site and DNS-rebinding paths. See ``base`` for the port.
"""

from __future__ import annotations

import logging

from ..settings import Settings
from .base import API_GROUP, Access, Identity, NoAccessControl, Permission, RefusedError, UnauthenticatedError
from .guard import RequestView, admit, check_request, cookie_name, credential
from .permissions import required
from .token import TokenAccess, same_token

__all__ = [
    "API_GROUP", "Access", "Identity", "NoAccessControl", "Permission", "RefusedError",
    "RequestView", "TokenAccess", "UnauthenticatedError", "admit", "check_request", "cookie_name", "credential",
    "open_access", "required", "same_token",
]

log = logging.getLogger(__name__)


def open_access(settings: Settings) -> Access:
    """The adapter ``settings.auth`` names (the kubernetes client is imported only for it)."""
    if settings.auth == "none":
        log.warning("JOBPLANE_AUTH=none: the API takes every request WITHOUT AUTHENTICATION")
        return NoAccessControl()
    if settings.auth == "token":
        return TokenAccess(settings.api_token)
    from ..launcher.kubernetes import load_api_client
    from .kubernetes import KubernetesAccess

    return KubernetesAccess(load_api_client, namespace=settings.namespace)
