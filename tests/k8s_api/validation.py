"""Server-side rules the OpenAPI schema does not express, checked as the API server checks
them on create (a 422 ``Invalid`` with one cause per field), so the launcher is tested against
what a real cluster refuses: names, labels, restart policy, GPU quantities, deadlines."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SUFFIX = {"": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_NATIVE_PREFIXES = ("", "kubernetes.io/", "requests.")

Cause = tuple[str, str]  # (field, message)


def quantity(raw: Any) -> Decimal | None:
    m = _QUANTITY.match(str(raw))
    if not m:
        return None
    try:
        return Decimal(m.group(1)) * Decimal(_SUFFIX[m.group(2) or ""])
    except InvalidOperation:
        return None


def check_name(name: Any, *, field: str = "metadata.name") -> list[Cause]:
    if not name:
        return [(field, "Required value: name or generateName is required")]
    problems = []
    if len(name) > 63:
        problems.append((field, f'Invalid value: "{name}": must be no more than 63 characters'))
    if not DNS1123_LABEL.match(name):
        problems.append((field, f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case '
                                "alphanumeric characters or '-', and must start and end with an alphanumeric character"))
    return problems


def check_labels(labels: Any, *, field: str) -> list[Cause]:
    problems: list[Cause] = []
    for key, value in (labels or {}).items():
        name = key.split("/", 1)[-1]
        if not LABEL_NAME.match(name) or len(name) > 63:
            problems.append((f"{field}", f'Invalid value: "{key}": name part must consist of alphanumeric characters'))
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
            problems.append((f"{field}", f'Invalid value: "{value}": a valid label must be an empty string or '
                                         "consist of alphanumeric characters, '-', '_' or '.', at most 63 characters"))
    return problems


def is_extended(resource: str) -> bool:
    """Extended resources (``nvidia.com/gpu``) cannot be overcommitted: whole numbers, request == limit."""
    return "/" in resource and not resource.startswith(("kubernetes.io/", "requests."))


def check_resources(res: Any, *, field: str) -> list[Cause]:
    requests, limits = (res or {}).get("requests") or {}, (res or {}).get("limits") or {}
    problems: list[Cause] = []
    for kind, values in (("requests", requests), ("limits", limits)):
        for name, raw in values.items():
            q = quantity(raw)
            path = f"{field}.{kind}[{name}]"
            if q is None:
                problems.append((path, f'Invalid value: "{raw}": quantities must match the regular expression'))
            elif q < 0:
                problems.append((path, f'Invalid value: "{raw}": must be greater than or equal to 0'))
            elif is_extended(name) and q != q.to_integral_value():
                problems.append((path, f'Invalid value: "{raw}": must be an integer'))
    for name, raw in requests.items():
        q, lim = quantity(raw), quantity(limits.get(name)) if name in limits else None
        path = f"{field}.requests[{name}]"
        if is_extended(name) and name not in limits:
            problems.append((f"{field}.limits", "Required value: Limit must be set for non overcommitable resources"))
        elif is_extended(name) and q is not None and lim is not None and q != lim:
            problems.append((path, f'Invalid value: "{raw}": must be equal to {name} limit of {limits[name]}'))
        elif q is not None and lim is not None and q > lim:
            problems.append((path, f'Invalid value: "{raw}": must be less than or equal to {name} limit of {limits[name]}'))
    return problems


def check_pod_spec(pod: Any, *, field: str, job: bool) -> list[Cause]:
    pod = pod or {}
    problems: list[Cause] = []
    containers = pod.get("containers") or []
    if not containers:
        problems.append((f"{field}.containers", "Required value"))
    for i, ctr in enumerate(containers):
        path = f"{field}.containers[{i}]"
        problems += check_name(ctr.get("name"), field=f"{path}.name")
        if not ctr.get("image"):
            problems.append((f"{path}.image", "Required value"))
        problems += check_resources(ctr.get("resources"), field=f"{path}.resources")
    policy = pod.get("restartPolicy", "Always")
    if job and policy not in ("Never", "OnFailure"):
        problems.append((f"{field}.restartPolicy", f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"'))
    return problems


def check_job(job: dict[str, Any]) -> list[Cause]:
    meta, spec = job.get("metadata") or {}, job.get("spec") or {}
    problems = check_name(meta.get("name")) + check_labels(meta.get("labels"), field="metadata.labels")
    template = spec.get("template") or {}
    problems += check_labels((template.get("metadata") or {}).get("labels"), field="spec.template.metadata.labels")
    problems += check_pod_spec(template.get("spec"), field="spec.template.spec", job=True)
    pod_policy = (template.get("spec") or {}).get("restartPolicy")
    if spec.get("podFailurePolicy") and pod_policy != "Never":
        problems.append(("spec.template.spec.restartPolicy",
                         f'Invalid value: "{pod_policy}": only "Never" is supported when podFailurePolicy is specified'))
    for key, minimum in (("activeDeadlineSeconds", 1), ("backoffLimit", 0), ("ttlSecondsAfterFinished", 0)):
        if key in spec and (not isinstance(spec[key], int) or spec[key] < minimum):
            problems.append((f"spec.{key}", f"Invalid value: {spec[key]}: must be greater than or equal to {minimum}"))
    return problems


def check_pod(pod: dict[str, Any]) -> list[Cause]:
    meta = pod.get("metadata") or {}
    problems = check_labels(meta.get("labels"), field="metadata.labels")
    return problems + check_pod_spec(pod.get("spec"), field="spec", job=False)


def check_namespace(ns: dict[str, Any]) -> list[Cause]:
    return check_name((ns.get("metadata") or {}).get("name"))


def check_workload(workload: dict[str, Any]) -> list[Cause]:
    """A Kueue Workload (kueue.x-k8s.io/v1beta2): a name and a queue (what the suite relies on)."""
    meta, spec = workload.get("metadata") or {}, workload.get("spec") or {}
    problems = check_name(meta.get("name")) + check_labels(meta.get("labels"), field="metadata.labels")
    if not isinstance(spec.get("queueName"), str):
        problems.append(Cause("FieldValueRequired", "spec.queueName", "Required value"))
    return problems
