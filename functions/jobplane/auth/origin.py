"""No cross-site or DNS-rebinding path: a Host allow-list and an Origin check.

A web page the user visits can send simple requests (``text/plain`` POSTs need no CORS
preflight) to ``127.0.0.1``, and a rebinding DNS name can make the browser treat the plane as
the attacker's own origin. So every request must name an allowed Host (loopback names by
default, ``JOBPLANE_ALLOWED_HOSTS`` to change them), and a state-changing request that carries
an ``Origin`` must carry this very host's. Browsers always send ``Origin`` on cross-site POSTs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from ..settings import LOOPBACK_HOSTS
from .base import RefusedError

__all__ = ["LOOPBACK_HOSTS", "check_host", "check_origin", "host_allowed", "split_host"]

_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}


def split_host(host: str) -> tuple[str, str]:
    """``"127.0.0.1:8080"`` → ``("127.0.0.1", "8080")``; IPv6 keeps its brackets; lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else ""
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name.rstrip("."), port
    return host.rstrip("."), ""


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether the ``Host`` header names one of ``allowed``: ``name`` (any port), ``name:port``,
    ``*.domain`` (any subdomain), or ``*`` (anything; with ``kubernetes`` auth behind an ingress)."""
    if not host:
        return False
    name, port = split_host(host)
    for entry in allowed:
        entry = entry.strip().lower()
        want_name, want_port = split_host(entry)
        if entry == "*" or (want_name.startswith("*.") and name.endswith(want_name[1:])):
            return True
        if want_name == name and want_port in ("", port):
            return True
    return False


def check_host(host: str, allowed: Iterable[str]) -> None:
    if not host_allowed(host, allowed):
        raise RefusedError(f"Host {host!r} is not one this plane answers to (JOBPLANE_ALLOWED_HOSTS)")


def check_origin(origin: str | None, host: str, *, required: bool = False) -> None:
    """``origin`` must be ``scheme://host`` of the request's own ``Host``; a missing one is
    refused only when ``required`` (a change authenticated by cookie)."""
    if origin is None:
        if required:
            raise RefusedError("a change made with the session cookie must carry an Origin header")
        return
    parts = urlsplit(origin.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise RefusedError(f"Origin {origin!r} is not this plane's")
    name, port = split_host(parts.netloc)
    want_name, want_port = split_host(host)
    default = _DEFAULT_PORTS[parts.scheme]
    if name != want_name or (port or default) != (want_port or default):
        raise RefusedError(f"Origin {origin!r} does not match Host {host!r}: cross-site changes are refused")
