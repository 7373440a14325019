"""Which permission each API route needs: the one table ``kubernetes`` mode asks RBAC about.

Resources ``specs``, ``runs``, ``bots`` of API group ``jobplane.dev`` with verbs get, list,
create, update, delete; actions are subresources with verb ``create``: ``specs/runs``
(trigger), ``runs/cancel``, ``bots/predict``, ``bots/search``; ``runs/artifacts`` (get: download
a run's artifacts); ``events`` (the CloudEvents catalogue: get, list); operators' ``deadletters`` (list) and
``deadletters/replay`` (create); the audit trail ``audit`` (list) and ``metrics`` (get: the
Prometheus scrape, a credential like any other). The manifests' ClusterRoles
(``jobplane-viewer``, ``jobplane-editor``) grant exactly these. HEAD is checked as GET.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .base import Permission

OPEN_PATHS: Final = frozenset({"/healthz", "/openapi.json", "/login", "/logout", "/favicon.ico"})
"""Served without a credential: health, the API description, and the login page that turns a
token into the session cookie. The dashboard's pages read the store, so they need one (a
browser without it is sent to the login page)."""
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Rule:
    method: str
    pattern: re.Pattern[str]
    verb: str
    resource: str
    subresource: str = ""

    def permission(self, match: re.Match[str]) -> Permission:
        return Permission(self.verb, self.resource, self.subresource, match.groupdict().get("name") or "")


def _rule(method: str, path: str, verb: str, resource: str, subresource: str = "") -> Rule:
    pattern = re.compile(path.replace("{name}", r"(?P<name>[^/:]+)").replace("{other}", r"[^/:]+"))
    return Rule(method, pattern, verb, resource, subresource)


RULES: Final[tuple[Rule, ...]] = (
    _rule("GET", "/v1/specs", "list", "specs"),
    _rule("POST", "/v1/specs", "create", "specs"),
    _rule("GET", "/v1/specs/{name}", "get", "specs"),
    _rule("PUT", "/v1/specs/{name}", "update", "specs"),
    _rule("DELETE", "/v1/specs/{name}", "delete", "specs"),
    _rule("POST", "/v1/specs/{name}/runs", "create", "specs", "runs"),
    _rule("GET", "/v1/specs/{other}/runs", "list", "runs"),
    _rule("GET", "/v1/runs/{name}", "get", "runs"),
    _rule("POST", "/v1/runs/{name}:cancel", "create", "runs", "cancel"),
    _rule("GET", "/v1/runs/{name}/artifacts/{other}", "get", "runs", "artifacts"),
    _rule("GET", "/v1/bots/{name}/model", "get", "bots"),
    _rule("GET", "/v1/bots/{other}/runs", "list", "runs"),
    _rule("POST", "/v1/bots/{name}:predict", "create", "bots", "predict"),
    _rule("POST", "/v1/bots/{name}:search", "create", "bots", "search"),
    _rule("GET", "/", "list", "specs"),  # the dashboard's pages, as the API calls they make
    _rule("GET", "/runs/{name}", "get", "runs"),
    _rule("GET", "/bots/{name}", "get", "bots"),
    _rule("GET", "/v1/events", "list", "events"),
    _rule("GET", "/v1/events/{name}/schema", "get", "events"),
    _rule("GET", "/v1/asyncapi.json", "get", "events"),
    _rule("GET", "/v1/deadletters", "list", "deadletters"),
    _rule("POST", "/v1/deadletters:replay", "create", "deadletters", "replay"),
    _rule("POST", "/v1/deadletters/{name}:replay", "create", "deadletters", "replay"),
    _rule("GET", "/v1/audit", "list", "audit"),
    _rule("GET", "/metrics", "get", "metrics"),
)
"""(method, path) → (verb, resource, subresource, name from the path)."""


def is_open(path: str) -> bool:
    return (path.rstrip("/") or "/") in OPEN_PATHS


def required(method: str, path: str) -> Permission | None:
    """The permission ``method path`` needs; None when no rule covers it."""
    method = "GET" if method == "HEAD" else method
    path = path.rstrip("/") or "/"
    for rule in RULES:
        match = rule.pattern.fullmatch(path)
        if match and rule.method == method:
            return rule.permission(match)
    return None
