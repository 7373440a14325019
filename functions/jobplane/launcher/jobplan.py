"""A batch/v1 Job manifest read for running it locally (pure): the command and env, the
retry policy (``backoffLimit``, ``podFailurePolicy``), the deadline, as the kubelet and the Job
controller would read them."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..conventions import ENV_SCRATCH
from ..errors import PermanentError

DEFAULT_BACKOFF_LIMIT: Final = 6
"""Kubernetes' default ``spec.backoffLimit``."""
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


@dataclass(frozen=True)
class JobPlan:
    """What ``launch`` takes from a manifest: enough to run and judge it locally."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    container: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    backoff_limit: int
    deadline_s: float | None
    failure_rules: tuple[Mapping[str, Any], ...]
    ttl_s: float | None = None
    """``ttlSecondsAfterFinished``: a recovered Job that ended longer ago is gone."""


def plan_job(job: Mapping[str, Any]) -> JobPlan:
    """The local plan of a batch/v1 Job manifest; PermanentError when it cannot run."""
    meta = job.get("metadata") or {}
    spec = job.get("spec") or {}
    pod = ((spec.get("template") or {}).get("spec")) or {}
    containers = pod.get("containers") or []
    name = meta.get("name")
    if not name or not containers:
        raise PermanentError("Job manifest needs metadata.name and spec.template.spec.containers[0]")
    c = containers[0]
    argv = [*(c.get("command") or []), *(c.get("args") or [])]
    if not argv:
        raise PermanentError(f"Job {name}: containers[0] has neither command nor args")
    env = {e["name"]: str(e["value"]) for e in c.get("env") or [] if "value" in e}
    deadline = spec.get("activeDeadlineSeconds")
    ttl = spec.get("ttlSecondsAfterFinished")
    return JobPlan(
        name=str(name),
        namespace=str(meta.get("namespace") or "default"),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
        container=str(c.get("name") or ""),
        argv=tuple(expand_refs(a, env) for a in argv),
        env=env,
        backoff_limit=int(spec.get("backoffLimit", DEFAULT_BACKOFF_LIMIT)),
        deadline_s=float(deadline) if deadline is not None else None,
        failure_rules=tuple((spec.get("podFailurePolicy") or {}).get("rules") or ()),
        ttl_s=float(ttl) if ttl is not None else None,
    )


def expand_refs(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names are replaced, unknown ones kept, ``$$`` → ``$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, str(text))


def rule_action(rules: Sequence[Mapping[str, Any]], *, exit_code: int | None, container: str,
                conditions: Collection[str] = ()) -> str:
    """The action of the first ``podFailurePolicy`` rule matching a failed pod (``Count`` if none).
    ``exit_code``: None when the pod has none (it vanished); ``conditions``: the pod's condition
    types that are true."""
    index = rule_index(rules, exit_code=exit_code, container=container, conditions=conditions)
    return "Count" if index is None else str(rules[index].get("action", "Count"))


def rule_index(rules: Sequence[Mapping[str, Any]], *, exit_code: int | None, container: str,
               conditions: Collection[str] = ()) -> int | None:
    """The index of the first rule matching the failed pod; None when none does."""
    for i, rule in enumerate(rules):
        if _matches_codes(rule.get("onExitCodes"), exit_code, container) or _matches_conditions(
            rule.get("onPodConditions"), conditions
        ):
            return i
    return None


def _matches_codes(on_codes: Mapping[str, Any] | None, exit_code: int | None, container: str) -> bool:
    if not on_codes or not exit_code or on_codes.get("containerName") not in (None, container):
        return False
    matched = exit_code in {int(v) for v in on_codes.get("values") or []}
    return not matched if on_codes.get("operator", "In") == "NotIn" else matched


def _matches_conditions(patterns: Sequence[Mapping[str, Any]] | None, conditions: Collection[str]) -> bool:
    return any(p.get("type") in conditions and str(p.get("status", "True")) == "True" for p in patterns or ())


def local_env(plan: JobPlan, job_dir: Path, *, path: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The manifest's env plus PATH, with the writable places moved into the Job's directory."""
    env = {**extra, **plan.env, "PATH": path}
    for var, sub in ((ENV_SCRATCH, "scratch"), ("TMPDIR", "tmp"), ("HOME", "home")):
        d = job_dir / sub
        d.mkdir(parents=True, exist_ok=True)
        env[var] = str(d)
    return env
