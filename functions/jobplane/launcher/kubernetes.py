"""The cloud adapter of the launcher port: batch/v1 Jobs through the official client.

It only sends what ``manifests.build_job`` built and reads Jobs back; what it adds is the
error policy: an existing Job is success (a redelivered event), 429/5xx/timeouts are retried a
bounded number of times honouring ``Retry-After`` and then raised as ``UnavailableError`` (the
function answers 5xx so the broker retries), and 4xx like 422 are permanent, carrying the
server's message cut short.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError as Urllib3Error

from .. import queueing
from ..errors import ForbiddenError, PermanentError, UnavailableError, short
from ..settings import Settings
from .base import JobState, JobStatus

log = logging.getLogger(__name__)

RETRYABLE_STATUS: Final = frozenset({401, 429, 500, 502, 503, 504})
"""401 too: an in-cluster token rotates and the next read of it succeeds."""
FAILED_REASONS: Final = ("BackoffLimitExceeded", "DeadlineExceeded", "PodFailurePolicy")
LIST_PAGE: Final = 500
KUEUE_GROUP: Final = "kueue.x-k8s.io"
KUEUE_VERSION: Final = "v1beta2"
LABEL_JOB_UID: Final = "kueue.x-k8s.io/job-uid"
"""Kueue's label on the Workload it makes for a Job: the Job's uid."""
VISIBILITY_PATH: Final = "/apis/visibility.kueue.x-k8s.io/v1beta1/namespaces/{ns}/localqueues/{queue}/pendingworkloads"
DELETE_PROPAGATION: Final = "Background"
"""batch/v1 Jobs orphan their pods by default; Background makes the garbage collector take them."""

Obj = dict[str, Any]


class KubernetesLauncher:
    """Implements ``Launcher`` against one namespace of a Kubernetes API server."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        namespace: str,
        attempts: int = 4,
        backoff: float = 0.2,
        max_delay: float = 5.0,
        timeout: tuple[float, float] = (5.0, 30.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.namespace = namespace
        self._api = api_client
        self._batch = client.BatchV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._attempts = max(1, attempts)
        self._backoff, self._max_delay, self._timeout = backoff, max_delay, timeout
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings, *, api_client: client.ApiClient | None = None,
                      **kw: Any) -> KubernetesLauncher:
        """In-cluster config when running in a pod, else ``KUBECONFIG`` (or ``~/.kube/config``)."""
        return cls(api_client or load_api_client(), namespace=settings.namespace, **kw)

    # ---- the port ------------------------------------------------------------------------
    def launch(self, job: Mapping[str, Any]) -> JobStatus:
        name = str(job["metadata"]["name"])
        try:
            obj = self._call("create", name, lambda **kw: self._batch.create_namespaced_job(
                self.namespace, cast(Any, dict(job)), **kw))
        except ApiException as e:
            if e.status != 409:
                raise permanent(e, verb="create", what=name) from e
            log.info("job %s exists already; treating the launch as done", name)
            return to_status(self._read(name), created=False)
        return to_status(obj, created=True)

    def describe(self, name: str) -> JobStatus:
        try:
            job = self._read(name)
        except ApiException as e:
            if e.status == 404:
                return JobStatus(name=name, namespace=self.namespace, state="missing")
            raise permanent(e, verb="read", what=name) from e
        status = to_status(job)
        if status.state != "queued":
            return status
        uid = str((job.get("metadata") or {}).get("uid") or "")
        workloads = self._workloads(f"{LABEL_JOB_UID}={uid}" if uid else None)
        return with_queue(status, workloads.get(name), positions=self._positions)

    def cancel(self, name: str) -> None:
        try:
            self._call("delete", name, lambda **kw: self._batch.delete_namespaced_job(
                name, self.namespace, propagation_policy=DELETE_PROPAGATION, **kw))
        except ApiException as e:
            if e.status != 404:
                raise permanent(e, verb="delete", what=name) from e

    def list(self, labels: Mapping[str, str]) -> list[JobStatus]:
        """All pages (``LIST_PAGE`` Jobs each), so a namespace of thousands stays cheap per call."""
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        found: list[JobStatus] = []
        token: str | None = None
        while True:
            body = self._list_page(selector, token)
            found += [to_status(item) for item in body.get("items") or []]
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                break
        if not any(s.state == "queued" for s in found):
            return found
        workloads = self._workloads(None)  # one list, and one visibility call per queue
        cache: dict[str, dict[str, int]] = {}
        return [with_queue(s, workloads.get(s.name), positions=lambda q: cache.setdefault(q, self._positions(q)))
                if s.state == "queued" else s for s in found]

    # ---- Kueue: the Workload holding a suspended Job -------------------------------------------
    def _workloads(self, selector: str | None) -> dict[str, Obj]:
        """Workloads of the namespace by the Job that owns them; empty when Kueue is not served
        (the Job is then queued with no Workload: reason ``Suspended``)."""
        try:
            body = self._call("list", "workloads", lambda **kw: self._custom.list_namespaced_custom_object(
                KUEUE_GROUP, KUEUE_VERSION, self.namespace, "workloads", label_selector=selector or "", **kw))
        except (ApiException, PermanentError) as e:
            log.info("no Kueue Workloads readable (%s): queued Jobs show no reason", e)
            return {}
        found: dict[str, Obj] = {}
        for item in body.get("items") or []:
            owner = queueing.owner_job(item)
            if owner:
                found[owner] = item
        return found

    def _positions(self, queue: str) -> dict[str, int]:
        """Workload name → position in its LocalQueue, from Kueue's visibility API; empty when it
        is not served. One try, no retries: the position is a nicety."""
        path = VISIBILITY_PATH.format(ns=self.namespace, queue=queue)
        try:
            method, url, headers, body_in, post = self._api.param_serialize(
                "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
            resp = self._api.call_api(method, url, headers, body_in, post, _request_timeout=self._timeout)
            resp.read()  # type: ignore[no-untyped-call]
            if resp.status != 200:
                return {}
            body = parse_body(resp.data)
        except (ApiException, Urllib3Error, OSError, ValueError) as e:
            log.debug("visibility API for %s: %s", queue, e)
            return {}
        return {str((i.get("metadata") or {}).get("name")): int(i.get("positionInLocalQueue") or 0)
                for i in body.get("items") or []}

    def _list_page(self, selector: str, token: str | None) -> Obj:
        try:
            return self._call("list", selector, lambda **kw: self._batch.list_namespaced_job(
                self.namespace, label_selector=selector, limit=LIST_PAGE, _continue=token, **kw))
        except ApiException as e:
            raise permanent(e, verb="list", what=selector) from e

    # ---- calls and their errors ------------------------------------------------------------
    def _read(self, name: str) -> Obj:
        return self._call("read", name, lambda **kw: self._batch.read_namespaced_job(name, self.namespace, **kw))

    def _call(self, verb: str, what: str, fn: Callable[..., Any]) -> Obj:
        """Run one API call, retrying transient failures; 404 and 409 come back as
        ``ApiException`` for the caller to decide, other 4xx as ``PermanentError``."""
        for attempt in range(1, self._attempts + 1):
            try:
                resp = fn(_preload_content=False, _request_timeout=self._timeout)
                return parse_body(resp.data)
            except ApiException as e:
                if e.status in (404, 409):
                    raise
                if e.status not in RETRYABLE_STATUS:
                    raise permanent(e, verb=verb, what=what) from e
                failure: Exception = e
                delay = retry_after(e) or self._delay(attempt)
            except (Urllib3Error, OSError) as e:
                failure, delay = e, self._delay(attempt)
            if attempt < self._attempts:
                log.warning("%s %s failed (%s); retry %d in %.2fs", verb, what, describe_failure(failure), attempt, delay)
                self._sleep(min(delay, self._max_delay))
        raise UnavailableError(f"Kubernetes API: {verb} job {what} failed {self._attempts} times: "
                               f"{describe_failure(failure)}") from failure

    def _delay(self, attempt: int) -> float:
        return float(self._backoff * 2 ** (attempt - 1) * (0.5 + random.random()))


def load_api_client(*, kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster config, else ``kubeconfig`` (default: ``$KUBECONFIG``, read now and not at
    the client's import, else ``~/.kube/config``)."""
    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except ConfigException:
        path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        try:
            config.load_kube_config(config_file=path, client_configuration=cfg)  # type: ignore[no-untyped-call]
        except (ConfigException, OSError) as e:
            raise UnavailableError(f"no Kubernetes config: not in a cluster and no usable KUBECONFIG ({e})") from e
    return client.ApiClient(cfg)


def parse_body(data: bytes | None) -> Obj:
    if not data:
        return {}
    value = json.loads(data)
    return value if isinstance(value, dict) else {}


def status_message(e: ApiException) -> str:
    """The ``message`` of the server's Status body, else the raw body, cut short."""
    try:
        return short(str(json.loads(e.body or b"{}").get("message") or e.body or e.reason))
    except (ValueError, AttributeError):
        return short(str(e.body or e.reason))


def describe_failure(e: Exception) -> str:
    if isinstance(e, ApiException):
        return f"{e.status} {status_message(e)}"
    return short(f"{type(e).__name__}: {e}")


def retry_after(e: ApiException) -> float | None:
    raw = (e.headers or {}).get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def permanent(e: ApiException, *, verb: str, what: str) -> PermanentError:
    message = f"Kubernetes API refused to {verb} job {what} ({e.status}): {status_message(e)}"
    if e.status == 403:
        return ForbiddenError(message)
    return PermanentError(message)


def to_status(job: Mapping[str, Any], *, created: bool = False) -> JobStatus:
    """A Job's conditions → state and reason (Complete, Failed + reason, Suspended = queued)."""
    meta, status = job.get("metadata") or {}, job.get("status") or {}
    state, reason, message = job_state(job)
    return JobStatus(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        state=state,
        reason=reason,
        message=message,
        failed_pods=int(status.get("failed") or 0),
        labels=dict(meta.get("labels") or {}),
        created=created,
    )


def with_queue(status: JobStatus, workload: Mapping[str, Any] | None, *,
               positions: Callable[[str], Mapping[str, int]]) -> JobStatus:
    """A queued Job's status with where it waits: its Workload's verdict (``queueing``) and its
    position in the LocalQueue; no Workload yet: ``Suspended``."""
    from dataclasses import replace

    if workload is None:
        return replace(status, queue=queueing.suspended(status.labels.get("kueue.x-k8s.io/queue-name"), since=None))
    info = queueing.from_workload(workload)
    name = str((workload.get("metadata") or {}).get("name"))
    if info.verdict == "queued" and info.queue:
        info = replace(info, position=positions(info.queue).get(name))
    if info.verdict == "admitted":  # admitted, the Job not unsuspended yet: it is starting
        return replace(status, state="running", queue=None)
    return replace(status, queue=info)


def job_state(job: Mapping[str, Any]) -> tuple[JobState, str | None, str | None]:
    conditions = {c.get("type"): c for c in (job.get("status") or {}).get("conditions") or []
                  if c.get("status") == "True"}
    for kind in ("Complete", "SuccessCriteriaMet"):
        if kind in conditions:
            return "succeeded", None, conditions[kind].get("message")
    for kind in ("Failed", "FailureTarget"):
        if kind in conditions:
            return "failed", conditions[kind].get("reason") or "Failed", conditions[kind].get("message")
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        return "missing", "Deleted", "the Job is being deleted"
    if "Suspended" in conditions or (job.get("spec") or {}).get("suspend"):
        return "queued", None, None
    return "running", None, None
