"""Pure builder of the batch/v1 Job that runs one run of a job spec.

The Kubernetes launcher sends this dict to the API server and the local launcher runs the very
same dict as a process, so everything a Job needs (env, limits, failure policy) is decided here,
once, with no I/O: same spec + run + settings → same manifest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from . import conventions as c
from . import queueing, tracing
from .errors import PermanentError
from .runs import parse_rfc3339
from .settings import Settings
from .tokens import callback_token, expiry_for

CONTAINER_NAME: Final = "trainer"
"""The Job's only container; the podFailurePolicy's exit-code rule names it."""
GPU_RESOURCE: Final = "nvidia.com/gpu"
RUN_AS_USER: Final = 10001
PRIORITY_CLASSES: Final[dict[str, str]] = {
    "high": "jobplane-high",
    "normal": "jobplane-normal",
    "low": "jobplane-low",
}
"""PriorityClass per spec priority (the knative/ manifests create them)."""
KUEUE_QUEUES: Final[dict[str, str]] = queueing.LOCAL_QUEUES
"""Kueue LocalQueue per job type, in the Jobs' namespace (``queueing.local_queue`` picks)."""
LABEL_KUEUE_PRIORITY: Final = "kueue.x-k8s.io/priority-class"
"""Kueue orders a queue by WorkloadPriorityClass (named like the spec priority), not by PriorityClass."""
SCRATCH_VOLUME: Final = "scratch"
SHM_VOLUME: Final = "dshm"
SHM_SIZE: Final = "1Gi"
"""/dev/shm for GPU Jobs: PyTorch data loaders share tensors through it."""
MAX_PARAMS_BYTES: Final = 32 * 1024
"""JOBPLANE_PARAMS beyond this belongs in the store (a Job object is capped near 1.5 MB)."""
DEFAULT_RESOURCES: Final[dict[str, Any]] = {"gpus": 0, "cpu": "2", "memory": "4Gi"}


def build_job(spec: Mapping[str, Any], run: Mapping[str, Any], *, settings: Settings) -> dict[str, Any]:
    """The batch/v1 Job for ``run`` of ``spec``; its name is the run id (a DNS-1123 label)."""
    job_type = str(spec["type"])
    labels = job_labels(spec, run)
    job_meta_labels = dict(labels)
    if settings.kueue:
        priority = run_priority(spec, run)
        job_meta_labels[c.LABEL_KUEUE_QUEUE] = queueing.local_queue(job_type, priority)
        job_meta_labels[LABEL_KUEUE_PRIORITY] = priority
    job_spec: dict[str, Any] = {
        "backoffLimit": int(spec.get("retries", 2)),
        "activeDeadlineSeconds": int(spec.get("timeoutSeconds", 3600)),
        "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
        "completions": 1,
        "parallelism": 1,
        "podFailurePolicy": pod_failure_policy(),
        "template": {
            "metadata": {"labels": labels},
            "spec": pod_spec(spec, run, settings=settings),
        },
    }
    if settings.kueue:
        job_spec["suspend"] = True
    metadata: dict[str, Any] = {"name": str(run["id"]), "namespace": settings.namespace, "labels": job_meta_labels}
    trace = job_traceparent(run)
    if trace:
        metadata["annotations"] = {c.ANNOTATION_TRACEPARENT: trace}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}


def job_traceparent(run: Mapping[str, Any]) -> str | None:
    """The Job's hop of the run's trace (``tracing.child``: same trace, a parent id of the run's
    own), or None for a run that carries none (a record from before tracing)."""
    trace = run.get("traceparent")
    return tracing.child(str(trace), seed=str(run["id"])) if trace else None


def job_labels(spec: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, str]:
    """The labels of DESIGN.md, on the Job and its pods (what ``Launcher.list`` selects by)."""
    labels = {
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
        c.LABEL_RUN_ID: str(run["id"]),
        c.LABEL_SPEC_ID: str(spec["id"]),
        c.LABEL_TYPE: str(spec["type"]),
    }
    bot_id = bot_id_of(spec, run)
    if bot_id:
        labels[c.LABEL_BOT_ID] = bot_id
    return labels


def bot_id_of(spec: Mapping[str, Any], run: Mapping[str, Any]) -> str | None:
    bot = run.get("botId") or (spec.get("params") or {}).get("botId")
    return str(bot) if bot else None


def pod_failure_policy() -> dict[str, Any]:
    """Bad data fails the Job at once (a retry cannot help); a node drain or preemption is
    not the trainer's fault, so it does not count against ``backoffLimit``."""
    return {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": CONTAINER_NAME,
                    "operator": "In",
                    "values": [c.EXIT_BAD_DATA],
                },
            },
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]
    }


def pod_spec(spec: Mapping[str, Any], run: Mapping[str, Any], *, settings: Settings) -> dict[str, Any]:
    gpus = gpu_count(spec)
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container(spec, run, settings=settings)],
        "volumes": volumes(gpus),
    }
    priority = run_priority(spec, run)
    pod["priorityClassName"] = PRIORITY_CLASSES.get(priority, f"jobplane-{priority}")
    if settings.service_account:
        pod["serviceAccountName"] = settings.service_account
    if gpus:
        pod["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
        if settings.node_selector:
            pod["nodeSelector"] = dict(settings.node_selector)
    return pod


def container(spec: Mapping[str, Any], run: Mapping[str, Any], *, settings: Settings) -> dict[str, Any]:
    mounts = [{"name": SCRATCH_VOLUME, "mountPath": c.SCRATCH_PATH}]
    if gpu_count(spec):
        mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})
    return {
        "name": CONTAINER_NAME,
        "image": settings.image_for(str(spec["type"])),
        "imagePullPolicy": "IfNotPresent",
        "command": list(settings.command),
        "env": job_env(spec, run, settings=settings),
        "resources": resources(spec),
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }


def volumes(gpus: int) -> list[dict[str, Any]]:
    vols: list[dict[str, Any]] = [{"name": SCRATCH_VOLUME, "emptyDir": {}}]
    if gpus:
        vols.append({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}})
    return vols


def run_priority(spec: Mapping[str, Any], run: Mapping[str, Any]) -> str:
    """The spec's priority, except for the weekly batch's runs (``low``: ``queueing``)."""
    source = (run.get("trigger") or {}).get("source")
    return queueing.effective_priority(str(spec.get("priority", "normal")), trigger_source=source)


def gpu_count(spec: Mapping[str, Any]) -> int:
    return int(_resources_of(spec).get("gpus", 0) or 0)


def resources(spec: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Requests equal limits (Guaranteed QoS); GPUs as whole-number strings, as the API wants."""
    res = _resources_of(spec)
    amounts = {"cpu": str(res.get("cpu", DEFAULT_RESOURCES["cpu"])),
               "memory": str(res.get("memory", DEFAULT_RESOURCES["memory"]))}
    gpus = gpu_count(spec)
    if gpus:
        amounts[GPU_RESOURCE] = str(gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _resources_of(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return {**DEFAULT_RESOURCES, **(spec.get("resources") or {})}


def job_env(spec: Mapping[str, Any], run: Mapping[str, Any], *, settings: Settings) -> list[dict[str, str]]:
    """Plain ``value`` entries only (the local launcher reads them as they are)."""
    run_id = str(run["id"])
    params = json.dumps(job_params(spec, run), sort_keys=True, separators=(",", ":"))
    if len(params.encode()) > MAX_PARAMS_BYTES:
        raise PermanentError(f"params: {len(params.encode())} bytes as JSON, at most {MAX_PARAMS_BYTES}; "
                             "pass large inputs (articles, data) by uri")
    env = {
        c.ENV_SINK: settings.sink,
        c.ENV_RUN_ID: run_id,
        c.ENV_SPEC_ID: str(spec["id"]),
        c.ENV_BOT_ID: bot_id_of(spec, run) or "",
        c.ENV_JOB_TYPE: str(spec["type"]),
        c.ENV_TOKEN: callback_token(settings.callback_key, run_id, expires=token_expiry(spec, run)),
        c.ENV_STORE: settings.store_url,
        c.ENV_PARAMS: params,
        c.ENV_SCRATCH: c.SCRATCH_PATH,
        "TMPDIR": c.SCRATCH_PATH,
        "HOME": c.SCRATCH_PATH,
        "PYTHONUNBUFFERED": "1",
        c.ENV_MAX_DATA_BYTES: str(settings.max_data_bytes),
    }
    if settings.data_prefixes:
        env[c.ENV_DATA_PREFIXES] = ",".join(settings.data_prefixes)
    trace = job_traceparent(run)
    if trace:
        env[c.ENV_TRACEPARENT] = trace
    return [{"name": k, "value": v} for k, v in env.items()]


def token_expiry(spec: Mapping[str, Any], run: Mapping[str, Any]) -> int:
    """The run's callback token expires a margin after its Job's deadline (from its creation)."""
    if not isinstance(run.get("createdAt"), str):
        raise PermanentError("run.createdAt: required (the callback token expires after the run's deadline)")
    created = parse_rfc3339(str(run["createdAt"]))
    return expiry_for(created, deadline_s=int(spec.get("timeoutSeconds", 3600)))


def job_params(spec: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's params with the run's overrides; training data by URI only, never inline
    (an env var has a size limit and the pod spec is readable by anyone who can list Jobs)."""
    params = {**(spec.get("params") or {}), **(run.get("params") or {})}
    data = params.get("trainingData")
    if isinstance(data, Mapping):
        if "uri" not in data:
            raise PermanentError(
                "params.trainingData: must be stored and passed by uri before launch, got inline examples"
            )
        params["trainingData"] = {"uri": str(data["uri"])}
    return params
