"""The Kubernetes Pod Security Standards' ``restricted`` profile as a check on a PodSpec, so the
manifests' pods can be judged without a cluster the way Pod Security Admission judges them
in a namespace labelled ``pod-security.kubernetes.io/enforce: restricted``.

It follows the profile's controls (baseline and restricted) for Linux pods: no host
namespaces, ports or paths, no privileged containers, only the allowed volume types, no
privilege escalation, non-root, a RuntimeDefault or Localhost seccomp profile, and every
capability dropped (NET_BIND_SERVICE alone may be added back). Controls about fields the
manifests never set (sysctls, SELinux, AppArmor, procMount) are checked for absence only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

ALLOWED_VOLUMES: Final = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
ALLOWED_SECCOMP: Final = frozenset({"RuntimeDefault", "Localhost"})
ADDABLE_CAPABILITIES: Final = frozenset({"NET_BIND_SERVICE"})
UNCHECKED_FIELDS: Final = ("sysctls", "seLinuxOptions", "appArmorProfile", "procMount", "windowsOptions")
"""Fields whose allowed values the profile restricts; the manifests set none of them."""


def violations(pod: Mapping[str, Any]) -> list[str]:
    """Every way ``pod`` (a PodSpec) breaks the restricted profile; empty when it complies."""
    out = [f"spec.{f}: must not be true" for f in ("hostNetwork", "hostPID", "hostIPC") if pod.get(f)]
    for volume in pod.get("volumes") or []:
        kind = next((k for k in volume if k != "name"), "")
        if kind not in ALLOWED_VOLUMES:
            out.append(f"volume {volume.get('name')!r}: type {kind!r} is not allowed")
    pod_ctx = pod.get("securityContext") or {}
    out += [f"spec.securityContext.{f}: must be unset" for f in UNCHECKED_FIELDS if f in pod_ctx]
    if pod_ctx.get("runAsUser") == 0:
        out.append("spec.securityContext.runAsUser: must not be 0")
    for where, container in _containers(pod):
        out += [f"{where}: {problem}" for problem in _container_violations(container, pod_ctx)]
    return out


def _containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in pod.get(field) or []:
            yield f"{field}[{container.get('name')}]", container


def _container_violations(container: Mapping[str, Any], pod_ctx: Mapping[str, Any]) -> Iterator[str]:
    ctx = container.get("securityContext") or {}
    yield from (f"securityContext.{f}: must be unset" for f in UNCHECKED_FIELDS if f in ctx)
    if ctx.get("privileged"):
        yield "securityContext.privileged: must not be true"
    if any(p.get("hostPort") for p in container.get("ports") or []):
        yield "ports: hostPort must be unset"
    if ctx.get("allowPrivilegeEscalation") is not False:
        yield "securityContext.allowPrivilegeEscalation: must be false"
    if ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is not True:
        yield "securityContext.runAsNonRoot: must be true (here or on the pod)"
    if ctx.get("runAsUser") == 0:
        yield "securityContext.runAsUser: must not be 0"
    seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
    if seccomp not in ALLOWED_SECCOMP:
        yield f"securityContext.seccompProfile.type: must be RuntimeDefault or Localhost, got {seccomp!r}"
    caps = ctx.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        yield "securityContext.capabilities.drop: must include ALL"
    added = set(caps.get("add") or []) - ADDABLE_CAPABILITIES
    if added:
        yield f"securityContext.capabilities.add: only NET_BIND_SERVICE may be added, got {sorted(added)}"
