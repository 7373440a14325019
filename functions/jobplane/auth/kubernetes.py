"""``JOBPLANE_AUTH=kubernetes``: Kubernetes RBAC decides who may do what, as kube-rbac-proxy
and Argo Workflows' client mode do.

The caller's bearer token goes to a TokenReview (who is it?), then each request to a
SubjectAccessReview in the plane's namespace (may they ``verb`` this ``resource`` of API
group ``jobplane.dev``?; see ``permissions.RULES``). The api's ServiceAccount needs the
``system:auth-delegator`` ClusterRole for both. Answers are cached for a few seconds in a
bounded cache, so a dashboard polling every second costs the API server little; a revoked
binding takes effect within the TTL.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Final

from cachetools import TTLCache
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from ..errors import JobplaneError, UnavailableError, short
from .base import API_GROUP, Identity, Permission, RefusedError, UnauthenticatedError

log = logging.getLogger(__name__)

CACHE_TTL: Final = 10.0
"""Seconds a review's answer is reused (kube-rbac-proxy's default is 5 min for allowed)."""
CACHE_SIZE: Final = 4096
REQUEST_TIMEOUT: Final = (3.0, 5.0)

_UNAUTHENTICATED: Final = Identity(user="")
"""The cached answer for a token the TokenReview did not authenticate."""


class KubernetesAccess:
    """TokenReview + SubjectAccessReview through the official client, answers cached."""

    mode = "kubernetes"

    def __init__(
        self,
        api_client: Callable[[], client.ApiClient],
        *,
        namespace: str,
        ttl: float = CACHE_TTL,
        size: int = CACHE_SIZE,
    ) -> None:
        self.namespace = namespace
        self._api_client = api_client
        self._client: client.ApiClient | None = None
        self._lock = threading.Lock()
        self._identities: TTLCache[bytes, Identity] = TTLCache(maxsize=size, ttl=ttl)
        self._decisions: TTLCache[tuple[Identity, Permission], str] = TTLCache(maxsize=size, ttl=ttl)

    def authenticate(self, credential: str) -> Identity:
        if not credential:
            raise UnauthenticatedError("authentication required: send Authorization: Bearer <a Kubernetes token> "
                                       "(e.g. kubectl create token)")
        key = hashlib.sha256(credential.encode()).digest()
        with self._lock:
            who = self._identities.get(key)
        if who is None:
            who = self._review_token(credential)
            with self._lock:
                self._identities[key] = who
        if who is _UNAUTHENTICATED or not who.user:
            raise UnauthenticatedError("the bearer token did not authenticate (TokenReview)", invalid=True)
        return who

    def authorize(self, who: Identity, permission: Permission | None) -> None:
        if permission is None:
            raise RefusedError("no RBAC permission is defined for this route, so nobody may call it")
        with self._lock:
            denial = self._decisions.get((who, permission))
        if denial is None:
            denial = self._review_access(who, permission)
            with self._lock:
                self._decisions[(who, permission)] = denial
        if denial:
            raise RefusedError(f"{who.user!r} may not {permission} in namespace {self.namespace!r}{denial}")

    # --- the reviews ---

    def _review_token(self, credential: str) -> Identity:
        body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=credential))
        review = self._call("TokenReview", lambda api: client.AuthenticationV1Api(api).create_token_review(
            body, _request_timeout=REQUEST_TIMEOUT))
        status = review.status
        if status is None or not status.authenticated or status.user is None:
            return _UNAUTHENTICATED
        user = status.user
        extra = tuple(sorted((k, tuple(v or ())) for k, v in (user.extra or {}).items()))
        return Identity(user=user.username or "", groups=tuple(user.groups or ()), uid=user.uid or "", extra=extra)

    def _review_access(self, who: Identity, permission: Permission) -> str:
        """'' when allowed, else ``: reason`` (or '') to append to the refusal."""
        attributes = client.V1ResourceAttributes(
            namespace=self.namespace, group=API_GROUP, verb=permission.verb, resource=permission.resource,
            subresource=permission.subresource or None, name=permission.name or None)
        spec = client.V1SubjectAccessReviewSpec(
            user=who.user, groups=list(who.groups) or None, uid=who.uid or None,
            extra={k: list(v) for k, v in who.extra} or None, resource_attributes=attributes)
        review = self._call("SubjectAccessReview", lambda api: client.AuthorizationV1Api(api)
                            .create_subject_access_review(client.V1SubjectAccessReview(spec=spec),
                                                          _request_timeout=REQUEST_TIMEOUT))
        status = review.status
        if status is not None and status.allowed and not status.denied:
            return ""
        reason = (status.reason if status is not None else "") or ""
        return f": {short(reason, 200)}" if reason else " (grant it with a RoleBinding to jobplane-viewer or jobplane-editor)"

    def _call(self, what: str, fn: Callable[[client.ApiClient], Any]) -> Any:
        try:
            return fn(self._api())
        except ApiException as e:
            if e.status in (401, 403):
                log.error("the Kubernetes API refused this plane's %s (%s): the api's ServiceAccount needs the "
                          "system:auth-delegator ClusterRole", what, e.status)
                raise JobplaneError(f"cannot check credentials: the Kubernetes API refused the {what}") from e
            raise UnavailableError(f"cannot check credentials now: {what} failed ({e.status})") from e
        except (Urllib3Error, OSError) as e:
            raise UnavailableError(f"cannot check credentials now: {what} failed ({type(e).__name__})") from e

    def _api(self) -> client.ApiClient:
        with self._lock:
            if self._client is None:
                self._client = self._api_client()
            return self._client
