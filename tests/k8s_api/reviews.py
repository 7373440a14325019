"""TokenReview and SubjectAccessReview, answered from a small table: which token is which user
(and groups), and which subject may do which verb on which resource in which namespace. Enough
for a plane that delegates authentication and authorization to the API server (``system:
auth-delegator``), as kube-rbac-proxy does; every review is counted, so caching can be seen."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


@dataclass(frozen=True)
class Grant:
    """A RoleBinding's effect: ``subject`` (a user, or ``group:NAME``) may ``verb`` on
    ``resource`` (``specs`` or ``specs/runs``) of ``group`` in ``namespace``; ``*`` matches any."""

    subject: str
    verb: str
    resource: str
    namespace: str = "*"
    group: str = "jobplane.dev"


@dataclass
class Reviews:
    users: dict[str, Obj] = field(default_factory=dict)
    """token → ``{"username", "uid", "groups", "extra"}``."""
    grants: list[Grant] = field(default_factory=list)
    token_reviews: int = 0
    access_reviews: list[Obj] = field(default_factory=list)
    """Each SubjectAccessReview's spec, in order."""

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def add_user(self, token: str, username: str, *, groups: tuple[str, ...] = (), uid: str = "") -> None:
        with self.lock:
            self.users[token] = {"username": username, "uid": uid or f"uid-{username}",
                                 "groups": [*groups, "system:authenticated"]}

    def grant(self, subject: str, verb: str, resource: str, *, namespace: str = "*") -> None:
        with self.lock:
            self.grants.append(Grant(subject, verb, resource, namespace))

    def answer(self, path: str, body: Obj) -> Obj | None:
        """The review's answer for ``POST path``; None when ``path`` is no review."""
        if path == TOKEN_REVIEWS:
            return self._token_review(body)
        if path == ACCESS_REVIEWS:
            return self._access_review(body)
        return None

    def _token_review(self, body: Obj) -> Obj:
        token = str((body.get("spec") or {}).get("token") or "")
        with self.lock:
            self.token_reviews += 1
            user = self.users.get(token)
        status: Obj = {"authenticated": True, "user": user} if user else {"authenticated": False,
                                                                           "error": "invalid bearer token"}
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "metadata": {},
                "spec": body.get("spec") or {}, "status": status}

    def _access_review(self, body: Obj) -> Obj:
        spec = body.get("spec") or {}
        attrs = spec.get("resourceAttributes") or {}
        resource = attrs.get("resource", "") + (f"/{attrs['subresource']}" if attrs.get("subresource") else "")
        subjects = {spec.get("user")} | {f"group:{g}" for g in spec.get("groups") or []}
        with self.lock:
            self.access_reviews.append(spec)
            allowed = any(g.subject in subjects and _match(g.verb, attrs.get("verb")) and _match(g.resource, resource)
                          and _match(g.namespace, attrs.get("namespace")) and _match(g.group, attrs.get("group"))
                          for g in self.grants)
        status: Obj = {"allowed": allowed}
        if allowed:
            status["reason"] = f'RBAC: allowed by RoleBinding for "{spec.get("user")}"'
        return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "metadata": {},
                "spec": spec, "status": status}


def _match(pattern: str, value: Any) -> bool:
    return pattern == "*" or pattern == value
