"""The embedded plane's front door checks, before it routes a request anywhere.

Host and Origin are checked on every path, so the broker ingress (``/default/default``) is no
rebinding or cross-site target either; ``/_functions/*`` (what the cluster keeps
cluster-local) take the plane's own token, which the local broker and cron send. The api
function runs ``guard.admit`` itself, so it is guarded the same on a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ..errors import JobplaneError
from ..settings import Settings
from .guard import RequestView, check_request
from .token import TokenAccess

FUNCTIONS_PREFIX: Final = "/_functions/"

Guard = Callable[[Mapping[str, Any]], JobplaneError | None]


def front_door_guard(settings: Settings) -> Guard:
    """``guard(environ)``: None to let the request through, else the error to answer."""
    functions = TokenAccess(settings.api_token)

    def guard(environ: Mapping[str, Any]) -> JobplaneError | None:
        request = RequestView.from_environ(environ)
        try:
            check_request(request, settings=settings)
            if request.path.startswith(FUNCTIONS_PREFIX) and settings.auth != "none":
                functions.authenticate(request.bearer())
        except JobplaneError as e:
            return e
        return None

    return guard


def function_headers(base_url: str, settings: Settings) -> Callable[[str], dict[str, str]]:
    """The headers the local broker and cron add to a delivery to ``url``: the plane's token,
    for its own ``/_functions/*`` only (never sent to a Trigger's outside URI)."""
    prefix = base_url.rstrip("/") + FUNCTIONS_PREFIX
    header = {"Authorization": f"Bearer {settings.api_token}"}

    def headers_for(url: str) -> dict[str, str]:
        return dict(header) if settings.api_token and url.startswith(prefix) else {}

    return headers_for
