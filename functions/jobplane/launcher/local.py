"""The embedded launcher: run the very batch/v1 Job manifest Kubernetes would get, as local
processes.

The embedded plane has no cluster, yet it must behave like one where the run lifecycle can
tell: a crashing trainer is restarted as a new pod up to ``backoffLimit`` times, an exit code
that a ``podFailurePolicy`` rule marks ``FailJob`` fails the Job at once, and a Job running
past ``activeDeadlineSeconds`` is killed. The failure reasons are the ones Kubernetes writes
into the Job's ``Failed`` condition (``BackoffLimitExceeded``, ``PodFailurePolicy``,
``DeadlineExceeded``), so the status function maps both adapters the same way.

What differs from a cluster, on purpose:

- The container runs as a subprocess of ``containers[0].command + args`` (no shell), with
  exactly the manifest's plain ``value`` env entries plus ``PATH``; ``valueFrom`` entries are
  skipped. ``JOBPLANE_SCRATCH``, ``TMPDIR`` and ``HOME`` point into the Job's own directory
  (``{workdir}/{job}/``), which is also the working directory; stdout and stderr of attempt
  N go to ``{workdir}/{job}/attempt-N.log``. ``python``/``python3`` as the command run under
  this interpreter (the image's Python is this venv's here).
- ``$(VAR)`` references in command and args are expanded from that env, as the kubelet does.
- ``spec.suspend`` is ignored: nothing (no Kueue) would ever resume the Job locally.
- Images, resources, tolerations, security contexts and volumes have no local meaning.
- ``onPodConditions`` rules never match: a local process has no disruption conditions.
- Deleting (``cancel``) removes the Job at once; ``describe`` then says ``missing``, as the
  API server would once the Job is gone.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from ..conventions import ENV_SCRATCH
from ..errors import PermanentError, short
from .base import JobState, JobStatus

log = logging.getLogger(__name__)

DEFAULT_BACKOFF_LIMIT: Final = 6
"""Kubernetes' default ``spec.backoffLimit``."""
START_ERROR_EXIT: Final = 128
"""Exit code the kubelet reports for a container that could not start (``StartError``)."""
MAX_RESTART_DELAY: Final = 60.0
"""Cap of the doubling pause between a failed pod and its replacement, seconds."""
REASON_BACKOFF: Final = "BackoffLimitExceeded"
REASON_DEADLINE: Final = "DeadlineExceeded"
REASON_POLICY: Final = "PodFailurePolicy"
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_PYTHONS = frozenset({"python", "python3"})

OnFinished = Callable[[JobStatus], None]


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


@dataclass
class _Job:
    plan: JobPlan
    dir: Path
    state: JobState = "running"
    reason: str | None = None
    message: str | None = None
    failed_pods: int = 0
    proc: subprocess.Popen[bytes] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def status(self, *, created: bool = False) -> JobStatus:
        p = self.plan
        return JobStatus(
            name=p.name, namespace=p.namespace, state=self.state, reason=self.reason,
            message=self.message, failed_pods=self.failed_pods, labels=dict(p.labels), created=created,
        )


# --- reading the manifest (pure) ------------------------------------------------------------


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
    )


def expand_refs(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names are replaced, unknown ones kept, ``$$`` → ``$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, str(text))


def rule_action(rules: Sequence[Mapping[str, Any]], *, exit_code: int, container: str) -> str:
    """The action of the first ``podFailurePolicy`` rule matching a failed pod (``Count`` if none)."""
    for rule in rules:
        on_codes = rule.get("onExitCodes")
        if not on_codes or exit_code == 0:
            continue
        if on_codes.get("containerName") not in (None, container):
            continue
        values = {int(v) for v in on_codes.get("values") or []}
        matched = exit_code in values
        if on_codes.get("operator", "In") == "NotIn":
            matched = not matched
        if matched:
            return str(rule.get("action", "Count"))
    return "Count"


def local_env(plan: JobPlan, job_dir: Path, *, path: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The manifest's env plus PATH, with the writable places moved into the Job's directory."""
    env = {**extra, **plan.env, "PATH": path}
    for var, sub in ((ENV_SCRATCH, "scratch"), ("TMPDIR", "tmp"), ("HOME", "home")):
        d = job_dir / sub
        d.mkdir(parents=True, exist_ok=True)
        env[var] = str(d)
    return env


# --- the launcher ------------------------------------------------------------------------------


class LocalLauncher:
    """The launcher port on local processes; one supervising thread per Job."""

    def __init__(
        self,
        workdir: Path,
        *,
        on_finished: OnFinished | None = None,
        restart_delay: float = 1.0,
        grace_seconds: float = 5.0,
        extra_env: Mapping[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        """``restart_delay``: pause before the first failed pod's replacement, doubling per
        failure up to ``MAX_RESTART_DELAY`` (Kubernetes: 10 s doubling to 6 min; locally
        short). ``grace_seconds``: SIGTERM → SIGKILL wait.
        ``extra_env``: added beneath the manifest's env (e.g. thread limits for tests)."""
        self.workdir = Path(workdir)
        self.on_finished = on_finished
        self.restart_delay = restart_delay
        self.grace_seconds = grace_seconds
        self.extra_env = dict(extra_env or {})
        self.python = python
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._closed = False

    # --- the protocol ---

    def launch(self, job: Mapping[str, Any]) -> JobStatus:
        plan = plan_job(job)
        with self._lock:
            if self._closed:
                raise RuntimeError("LocalLauncher is closed")
            existing = self._jobs.get(plan.name)
            if existing is not None:
                return existing.status(created=False)
            record = _Job(plan=plan, dir=self.workdir / plan.name)
            record.dir.mkdir(parents=True, exist_ok=True)
            self._jobs[plan.name] = record
            record.thread = threading.Thread(
                target=self._supervise, args=(record,), name=f"job-{plan.name}", daemon=True
            )
            record.thread.start()
            return record.status(created=True)

    def describe(self, name: str) -> JobStatus:
        with self._lock:
            record = self._jobs.get(name)
            if record is None:
                return JobStatus(name=name, namespace="default", state="missing")
            return record.status()

    def cancel(self, name: str) -> None:
        with self._lock:
            record = self._jobs.pop(name, None)
        if record is not None:
            self._stop(record)

    def list(self, labels: Mapping[str, str]) -> list[JobStatus]:
        with self._lock:
            records = list(self._jobs.values())
        return [
            r.status() for r in records if all(r.plan.labels.get(k) == v for k, v in labels.items())
        ]

    def close(self) -> None:
        """Terminate every Job (SIGTERM, then SIGKILL after the grace); no callbacks follow."""
        with self._lock:
            self._closed = True
            records = list(self._jobs.values())
        for r in records:
            self._stop(r)

    def wait(self, name: str, timeout: float | None = None) -> JobStatus:
        """Block until the Job is finished (tests, the demo); its status either way."""
        with self._lock:
            record = self._jobs.get(name)
        if record is not None and record.thread is not None:
            record.thread.join(timeout)
        return self.describe(name)

    def log_path(self, name: str, attempt: int) -> Path:
        return self.workdir / name / f"attempt-{attempt}.log"

    # --- supervision ---

    def _supervise(self, r: _Job) -> None:
        deadline = None if r.plan.deadline_s is None else time.monotonic() + r.plan.deadline_s
        failures, attempt = 0, 0
        while not r.stop.is_set():
            attempt += 1
            code = self._run_attempt(r, attempt, deadline)
            if r.stop.is_set():
                return
            if code is None:
                return self._finish(r, "failed", REASON_DEADLINE, "Job was active longer than specified deadline")
            if code == 0:
                return self._finish(r, "succeeded", None, None)
            with self._lock:
                r.failed_pods += 1
            verdict = self._judge(r, code, attempt)
            if verdict == "FailJob":
                return
            failures += verdict == "Count"
            if failures > r.plan.backoff_limit:
                msg = f"Job has reached the specified backoff limit; {self._tail(r, attempt)}"
                return self._finish(r, "failed", REASON_BACKOFF, msg)
            if not self._pause(r, deadline, failures):
                return self._finish(r, "failed", REASON_DEADLINE, "Job was active longer than specified deadline")

    def _judge(self, r: _Job, code: int, attempt: int) -> str:
        """Apply podFailurePolicy to a failed attempt: FailJob finishes the Job here."""
        action = rule_action(r.plan.failure_rules, exit_code=code, container=r.plan.container)
        if action == "FailJob":
            index = self._rule_index(r, code)
            msg = (
                f"Container {r.plan.container} for pod {r.plan.namespace}/{r.plan.name}-{attempt} "
                f"failed with exit code {code} matching FailJob rule at index {index}; "
                f"{self._tail(r, attempt)}"
            )
            self._finish(r, "failed", REASON_POLICY, msg)
        return action

    def _rule_index(self, r: _Job, code: int) -> int:
        for i in range(len(r.plan.failure_rules)):
            if rule_action(r.plan.failure_rules[i : i + 1], exit_code=code, container=r.plan.container) != "Count":
                return i
        return -1

    def _run_attempt(self, r: _Job, attempt: int, deadline: float | None) -> int | None:
        """One pod: the exit code, or None when the deadline killed it."""
        with open(self.log_path(r.plan.name, attempt), "wb") as out:
            proc = self._spawn(r, out)
            if proc is None:
                return START_ERROR_EXIT
            try:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                return proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self._kill(proc)
                return None

    def _spawn(self, r: _Job, out: IO[bytes]) -> subprocess.Popen[bytes] | None:
        argv = list(r.plan.argv)
        if argv[0] in _PYTHONS:
            argv[0] = self.python
        env = local_env(r.plan, r.dir, path=os.environ.get("PATH", os.defpath), extra=self.extra_env)
        with self._lock:
            if r.stop.is_set():
                return None
            try:
                r.proc = subprocess.Popen(
                    argv, env=env, cwd=r.dir, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            except OSError as e:
                out.write(f"StartError: {e}\n".encode())
                return None
            return r.proc

    def _pause(self, r: _Job, deadline: float | None, failures: int) -> bool:
        """Wait before the next pod; False when the deadline passes first."""
        delay = min(self.restart_delay * 2 ** max(failures - 1, 0), MAX_RESTART_DELAY)
        if deadline is not None and time.monotonic() + delay >= deadline:
            r.stop.wait(max(0.0, deadline - time.monotonic()))
            return r.stop.is_set()
        r.stop.wait(delay)
        return True

    def _finish(self, r: _Job, state: JobState, reason: str | None, message: str | None) -> None:
        with self._lock:
            if r.stop.is_set():
                return
            r.state, r.reason, r.message = state, reason, message
            callback = self.on_finished if not self._closed else None
        log.info("job %s %s%s", r.plan.name, state, f" ({reason})" if reason else "")
        if callback is not None:
            try:
                callback(r.status())
            except Exception:  # the callback's failure must not kill the supervisor silently
                log.exception("on_finished callback failed for job %s", r.plan.name)

    def _stop(self, r: _Job) -> None:
        with self._lock:
            r.stop.set()
            proc = r.proc
        if proc is not None and proc.poll() is None:
            self._kill(proc)
        if r.thread is not None and r.thread is not threading.current_thread():
            r.thread.join(self.grace_seconds + 5)

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM the process group, SIGKILL it after the grace, as the kubelet does."""
        for sig, wait in ((signal.SIGTERM, self.grace_seconds), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def _tail(self, r: _Job, attempt: int) -> str:
        path = self.log_path(r.plan.name, attempt)
        try:
            data = path.read_bytes()[-2000:]
        except OSError:
            data = b""
        text = short(data.decode("utf-8", "replace").strip().splitlines()[-1] if data.strip() else "", 200)
        return f"log {path}" + (f": {text}" if text else "")
