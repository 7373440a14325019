"""The fake API server's state: objects keyed by resource/namespace/name, one resourceVersion
counter, an event log for watches, a queue of injected faults, and controller hooks that move
Jobs the way the Job controller would (pods, Suspended, Complete, Failed)."""

from __future__ import annotations

import copy
import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import validation as v
from .selectors import field_matcher, label_matcher
from .status import ApiError, invalid

Obj = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    group_version: str
    plural: str
    kind: str
    namespaced: bool
    check: Callable[[Obj], list[v.Cause]]

    @property
    def group(self) -> str:
        return self.group_version.rpartition("/")[0]

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = {
    "jobs": Resource("batch/v1", "jobs", "Job", True, v.check_job),
    "pods": Resource("v1", "pods", "Pod", True, v.check_pod),
    "namespaces": Resource("v1", "namespaces", "Namespace", False, v.check_namespace),
    "workloads": Resource("kueue.x-k8s.io/v1beta2", "workloads", "Workload", True, v.check_workload),
}


@dataclass
class Fault:
    """An injected answer for the next matching request (e.g. 429 with Retry-After)."""

    status: int
    method: str | None = None
    resource: str | None = None
    retry_after: int | None = None
    delay: float = 0.0
    message: str = "injected fault"

    def matches(self, method: str, resource: str) -> bool:
        return self.method in (None, method) and self.resource in (None, resource)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge patch is approximated by it)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class ClusterState:
    """Thread-safe; every mutation bumps the resourceVersion and appends a watch event."""

    auto_pods: bool = True
    """Act as the Job controller on create: a pod for a running Job, Suspended for a suspended one."""
    faults: deque[Fault] = field(default_factory=deque)
    requests: list[tuple[str, str]] = field(default_factory=list)
    closed: bool = False
    created_ns: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """When each object was stored, by ``time.monotonic_ns()`` (one clock for every process on
    the machine): a benchmark's "trigger to Job created" ends here."""

    def __post_init__(self) -> None:
        self.cond = threading.Condition()
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.events: list[tuple[int, str, str, Obj]] = []
        self._rv = itertools.count(1000)
        self.rv = 1000
        for ns in ("default", "kube-system"):
            self.create("namespaces", "", {"metadata": {"name": ns}})

    # ---- faults ------------------------------------------------------------------------
    def fail_next(self, count: int = 1, *, status: int = 429, method: str | None = None,
                  resource: str | None = None, retry_after: int | None = None, delay: float = 0.0) -> None:
        with self.cond:
            for _ in range(count):
                self.faults.append(Fault(status, method, resource, retry_after, delay))

    def take_fault(self, method: str, resource: str) -> Fault | None:
        with self.cond:
            self.requests.append((method, resource))
            for fault in self.faults:
                if fault.matches(method, resource):
                    self.faults.remove(fault)
                    return fault
        return None

    def count(self, method: str, resource: str) -> int:
        with self.cond:
            return sum(1 for r in self.requests if r == (method, resource))

    # ---- bookkeeping -------------------------------------------------------------------
    def _bump(self, res: Resource, kind: str, obj: Obj) -> Obj:
        self.rv = next(self._rv)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.events.append((self.rv, res.plural, kind, copy.deepcopy(obj)))
        self.cond.notify_all()
        return copy.deepcopy(obj)

    def _key(self, res: Resource, ns: str, name: str) -> tuple[str, str, str]:
        return (res.plural, ns if res.namespaced else "", name)

    def _not_found(self, res: Resource, name: str) -> ApiError:
        return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found',
                        details={"name": name, "group": res.group, "kind": res.plural})

    def _require_namespace(self, res: Resource, ns: str) -> None:
        if res.namespaced and ("namespaces", "", ns) not in self.objects:
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                           details={"name": ns, "kind": "namespaces"})

    # ---- verbs -------------------------------------------------------------------------
    def create(self, plural: str, ns: str, body: Obj) -> Obj:
        res = RESOURCES[plural]
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        with self.cond:
            self._require_namespace(res, ns)
            if res.namespaced and meta.get("namespace") not in (None, "", ns):
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            causes = res.check(obj)
            if causes:
                raise invalid(res, meta.get("name", ""), causes)
            key = self._key(res, ns, meta["name"])
            if key in self.objects:
                raise ApiError(409, "AlreadyExists", f'{res.qualified} "{meta["name"]}" already exists',
                               details={"name": meta["name"], "group": res.group, "kind": res.plural})
            self._default(res, obj, ns)
            self.objects[key] = obj
            self.created_ns[key] = time.monotonic_ns()
            created = self._bump(res, "ADDED", obj)
            if plural == "jobs" and self.auto_pods:
                self._start_job(ns, meta["name"])
            return created

    def _default(self, res: Resource, obj: Obj, ns: str) -> None:
        meta = obj["metadata"]
        obj["apiVersion"], obj["kind"] = res.group_version, res.kind
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
        if res.namespaced:
            meta["namespace"] = ns
        if res.plural == "jobs":
            spec = obj["spec"]
            uid = meta["uid"]
            for k, d in (("backoffLimit", 6), ("completions", 1), ("parallelism", 1), ("suspend", False),
                         ("completionMode", "NonIndexed"), ("manualSelector", False)):
                spec.setdefault(k, d)
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            labels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
            labels.update({"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
                           "batch.kubernetes.io/job-name": meta["name"], "job-name": meta["name"]})
            obj["status"] = {}
        if res.plural == "pods":
            obj.setdefault("status", {"phase": "Pending"})
        if res.plural == "namespaces":
            obj["spec"], obj["status"] = {"finalizers": ["kubernetes"]}, {"phase": "Active"}

    def get(self, plural: str, ns: str, name: str) -> Obj:
        res = RESOURCES[plural]
        with self.cond:
            obj = self.objects.get(self._key(res, ns, name))
            if obj is None:
                raise self._not_found(res, name)
            return copy.deepcopy(obj)

    def list(self, plural: str, ns: str | None, *, label_selector: str | None = None,
             field_selector: str | None = None) -> tuple[list[Obj], int]:
        res = RESOURCES[plural]
        labels_ok, fields_ok = label_matcher(label_selector), field_matcher(field_selector)
        with self.cond:
            items = [copy.deepcopy(o) for (p, n, _), o in sorted(self.objects.items())
                     if p == res.plural and (ns is None or n == ns)
                     and labels_ok(o["metadata"].get("labels") or {}) and fields_ok(o)]
            return items, self.rv

    def replace(self, plural: str, ns: str, name: str, body: Obj, *, status_only: bool = False) -> Obj:
        res = RESOURCES[plural]
        with self.cond:
            current = self.objects.get(self._key(res, ns, name))
            if current is None:
                raise self._not_found(res, name)
            sent_rv = (body.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": '
                               "the object has been modified; please apply your changes to the latest version and try again")
            new = copy.deepcopy(current)
            if status_only:
                new["status"] = copy.deepcopy(body.get("status") or {})
            else:
                new.update({k: copy.deepcopy(val) for k, val in body.items() if k not in ("metadata", "status")})
                new["metadata"]["labels"] = copy.deepcopy((body.get("metadata") or {}).get("labels", current["metadata"].get("labels")))
            return self._store_update(res, ns, name, current, new)

    def patch(self, plural: str, ns: str, name: str, patch: Obj, *, status_only: bool = False) -> Obj:
        res = RESOURCES[plural]
        with self.cond:
            current = self.objects.get(self._key(res, ns, name))
            if current is None:
                raise self._not_found(res, name)
            if status_only:
                patch = {"status": patch.get("status", {})}
            new = merge_patch(current, patch)
            new["metadata"] = {**new["metadata"], **{k: current["metadata"][k] for k in ("uid", "name", "creationTimestamp") if k in current["metadata"]}}
            return self._store_update(res, ns, name, current, new)

    def _store_update(self, res: Resource, ns: str, name: str, current: Obj, new: Obj) -> Obj:
        causes = res.check(new)
        if causes:
            raise invalid(res, name, causes)
        if new.get("spec") != current.get("spec"):
            new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        self.objects[self._key(res, ns, name)] = new
        result = self._bump(res, "MODIFIED", new)
        if res.plural == "jobs" and self.auto_pods and current["spec"].get("suspend") and not new["spec"].get("suspend"):
            self._resume_job(ns, name)
        return result

    def delete(self, plural: str, ns: str, name: str, *, propagation: str | None = None,
               preconditions: Obj | None = None) -> Obj:
        res = RESOURCES[plural]
        with self.cond:
            key = self._key(res, ns, name)
            obj = self.objects.get(key)
            if obj is None:
                raise self._not_found(res, name)
            for field_name in ("uid", "resourceVersion"):
                want = (preconditions or {}).get(field_name)
                if want and want != obj["metadata"].get(field_name):
                    raise ApiError(409, "Conflict", f"Precondition failed: {field_name} in precondition: {want}, "
                                   f"{field_name} in object meta: {obj['metadata'].get(field_name)}")
            # batch/v1 Jobs orphan their pods unless told otherwise (kept for compatibility).
            policy = propagation or ("Orphan" if plural == "jobs" else "Background")
            self._handle_dependents(obj, policy)
            del self.objects[key]
            gone = copy.deepcopy(obj)
            gone["metadata"]["deletionTimestamp"] = now_rfc3339()
            if policy == "Foreground":
                gone["metadata"]["finalizers"] = ["foregroundDeletion"]
            self._bump(res, "DELETED", gone)
            if policy == "Foreground":
                return copy.deepcopy(gone)
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": name, "group": res.group, "kind": res.plural, "uid": obj["metadata"]["uid"]}}

    def _handle_dependents(self, owner: Obj, policy: str) -> None:
        uid = owner["metadata"]["uid"]
        pods = RESOURCES["pods"]
        for key, pod in list(self.objects.items()):
            refs = pod["metadata"].get("ownerReferences") or []
            if key[0] != "pods" or not any(r.get("uid") == uid for r in refs):
                continue
            if policy == "Orphan":
                pod["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                self._bump(pods, "MODIFIED", pod)
            else:
                del self.objects[key]
                pod["metadata"]["deletionTimestamp"] = now_rfc3339()
                self._bump(pods, "DELETED", pod)

    # ---- watch -------------------------------------------------------------------------
    def watch(self, plural: str, ns: str | None, *, since: int | None, label_selector: str | None,
              field_selector: str | None, timeout: float) -> Iterator[tuple[str, Obj]]:
        """Events after ``since``; with no ``since``, synthetic ADDED events for what exists first."""
        labels_ok, fields_ok = label_matcher(label_selector), field_matcher(field_selector)
        deadline = time.monotonic() + timeout
        if since is None:
            items, since = self.list(plural, ns, label_selector=label_selector, field_selector=field_selector)
            for item in items:
                yield "ADDED", item
        while not self.closed:
            with self.cond:
                pending = [(rv, kind, obj) for rv, p, kind, obj in self.events
                           if rv > since and p == plural and (ns is None or obj["metadata"].get("namespace", "") == ns)]
                if not pending:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    self.cond.wait(min(left, 0.5))
                    continue
            for rv, kind, obj in pending:
                since = rv
                if labels_ok(obj["metadata"].get("labels") or {}) and fields_ok(obj):
                    yield kind, copy.deepcopy(obj)

    def oldest_rv(self) -> int:
        with self.cond:
            return self.events[0][0] if self.events else self.rv

    # ---- the Job controller, by hand ---------------------------------------------------
    def _start_job(self, ns: str, name: str) -> None:
        job = self.objects[("jobs", ns, name)]
        if job["spec"].get("suspend"):
            self._set_job_status(ns, name, conditions=[condition("Suspended", "JobSuspended", "Job suspended")])
            return
        self._resume_job(ns, name)

    def _resume_job(self, ns: str, name: str) -> None:
        job = self.objects[("jobs", ns, name)]
        template = copy.deepcopy(job["spec"]["template"])
        pod = {"metadata": {"generateName": f"{name}-", "labels": template["metadata"].get("labels", {}),
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                                 "uid": job["metadata"]["uid"], "controller": True,
                                                 "blockOwnerDeletion": True}]},
               "spec": template["spec"]}
        pod["metadata"]["name"] = f"{name}-{uuid.uuid4().hex[:5]}"
        pod_res = RESOURCES["pods"]
        self._default(pod_res, pod, ns)
        self.objects[("pods", ns, pod["metadata"]["name"])] = pod
        self._bump(pod_res, "ADDED", pod)
        conditions = [c for c in job["status"].get("conditions", []) if c["type"] != "Suspended"]
        if any(c["type"] == "Suspended" for c in job["status"].get("conditions", [])):
            conditions.append(condition("Suspended", "JobResumed", "Job resumed", status="False"))
        self._set_job_status(ns, name, conditions=conditions, active=1, startTime=now_rfc3339())

    def _set_job_status(self, ns: str, name: str, *, conditions: list[Obj] | None = None, **fields: Any) -> Obj:
        key = ("jobs", ns, name)
        if key not in self.objects:
            raise self._not_found(RESOURCES["jobs"], name)
        job = self.objects[key]
        if conditions is not None:
            job["status"]["conditions"] = conditions
        job["status"].update(fields)
        return self._bump(RESOURCES["jobs"], "MODIFIED", job)

    def set_job_status(self, ns: str, name: str, *, conditions: list[Obj] | None = None, **fields: Any) -> Obj:
        """Hook: set a Job's status conditions (and other status fields) as the controller would."""
        with self.cond:
            return self._set_job_status(ns, name, conditions=conditions, **fields)

    def complete_job(self, ns: str, name: str) -> Obj:
        conds = [condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
                 condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods")]
        with self.cond:
            self._set_pod_phase(ns, name, "Succeeded")
            return self._set_job_status(ns, name, conditions=conds, active=0, succeeded=1, completionTime=now_rfc3339())

    def fail_job(self, ns: str, name: str, *, reason: str = "BackoffLimitExceeded",
                 message: str = "Job has reached the specified backoff limit") -> Obj:
        conds = [condition("FailureTarget", reason, message), condition("Failed", reason, message)]
        with self.cond:
            self._set_pod_phase(ns, name, "Failed")
            return self._set_job_status(ns, name, conditions=conds, active=0, failed=1)

    def _set_pod_phase(self, ns: str, job_name: str, phase: str) -> None:
        for (p, n, _), pod in list(self.objects.items()):
            if p == "pods" and n == ns and pod["metadata"].get("labels", {}).get("job-name") == job_name:
                pod["status"]["phase"] = phase
                self._bump(RESOURCES["pods"], "MODIFIED", pod)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


def condition(type_: str, reason: str, message: str, *, status: str = "True") -> Obj:
    now = now_rfc3339()
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastProbeTime": now, "lastTransitionTime": now}
