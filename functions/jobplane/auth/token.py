"""``JOBPLANE_AUTH=token``: one random bearer token, kept in ``{data-dir}/api.token`` (0600).

The embedded plane makes it at first start (``settings.embedded_defaults``, as it does the
callback key). Whoever can read the file (the user who ran ``jobplane up``) holds the plane;
the CLI, the demo and the tests read it from there, a browser gets it once through the login
URL and keeps it in a cookie.
"""

from __future__ import annotations

import hmac
from typing import Final

from .base import Identity, Permission, UnauthenticatedError

TOKEN_USER: Final = "jobplane:token-holder"


def same_token(given: str, expected: str) -> bool:
    """Constant-time comparison; an empty expected token matches nothing."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


class TokenAccess:
    """The holder of the one token may do everything; nobody else may do anything."""

    mode = "token"

    def __init__(self, token: str) -> None:
        self._token = token

    def authenticate(self, credential: str) -> Identity:
        if not credential:
            raise UnauthenticatedError("authentication required: send Authorization: Bearer <token> "
                                       "(the token is in the plane's data dir, api.token)")
        if not same_token(credential, self._token):
            raise UnauthenticatedError("the bearer token is not this plane's", invalid=True)
        return Identity(user=TOKEN_USER)

    def authorize(self, who: Identity, permission: Permission | None) -> None:
        return None
