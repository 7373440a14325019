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
- ``spec.suspend`` is ignored. Instead, given a ``quota.Policy`` (the plane reads it from
  ``knative/components/kueue``), each Job waits ``queued`` until its queue has quota for its
  requests, admitted as Kueue would admit it (``quota``: flavors, taints, cohorts, priority
  then arrival order); a Job evicted to give quota back is stopped, waits again with reason
  ``Preempted``, and its stopped attempt counts as no failure. Without a policy Jobs start at once.
- Images, security contexts and volumes have no local meaning; resources and tolerations
  only decide where a Job queues (above), not what its process may use.
- ``onPodConditions`` rules match one condition only: ``DisruptionTarget``, which a local
  attempt has when the plane stopped it on shutdown or its process vanished while no launcher
  watched it (a drained or lost node, for a pod). The manifests' rule ``Ignore``s it: the
  Job runs the attempt again without counting it against ``backoffLimit``.
- Deleting (``cancel``) removes the Job at once and signals its processes; ``describe`` then
  says ``missing``, as the API server would once the Job is gone. It never waits for the
  processes to end nor for the supervisor (SIGKILL follows the grace in the background).

Restarts: each attempt runs through ``wrap.py``, which records its exit status in the Job's
directory, and the Job's manifest and the supervisor's decisions are kept there too
(``jobdir``). ``recover()`` on a new launcher over the same workdir takes the Jobs back:
an attempt still running (its process group is its own session, so it outlived the plane) is
adopted and watched to its end, an attempt that ended meanwhile is judged by its recorded
status, one that vanished without a record is a disrupted pod, and each Job goes on under its
retry policy as if the launcher had never stopped.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, Literal

import psutil

from ..conventions import LABEL_TYPE
from ..errors import PermanentError, short
from .. import queueing
from . import jobdir
from .base import JobState, JobStatus
from .quota import Demand, Policy, Quota, demand_of
from .jobplan import JobPlan, expand_refs, local_env, plan_job, rule_action, rule_index

__all__ = ["JobPlan", "LocalLauncher", "expand_refs", "local_env", "plan_job", "rule_action", "rule_index"]

log = logging.getLogger(__name__)

START_ERROR_EXIT: Final = 128
"""Exit code the kubelet reports for a container that could not start (``StartError``)."""
MAX_RESTART_DELAY: Final = 60.0
"""Cap of the doubling pause between a failed pod and its replacement, seconds."""
REASON_BACKOFF: Final = "BackoffLimitExceeded"
REASON_DEADLINE: Final = "DeadlineExceeded"
REASON_POLICY: Final = "PodFailurePolicy"
DISRUPTION: Final = "DisruptionTarget"
"""The pod condition of an attempt the plane stopped, or whose process vanished unwatched."""
WATCH_EVERY: Final = 0.2
"""Seconds between looks at an adopted attempt's process (not our child: nothing to wait on)."""
WRAPPER: Final = str(Path(__file__).with_name("wrap.py"))
_PYTHONS = frozenset({"python", "python3"})

OnFinished = Callable[[JobStatus], None]
Outcome = int | Literal["deadline", "disrupted"]
"""How an attempt ended: its exit status, killed at the deadline, or disrupted (no status)."""


@dataclass
class _Job:
    plan: JobPlan
    dir: Path
    started_at: float
    """Seconds since the epoch: the deadline counts from here, across restarts."""
    progress: jobdir.Progress = field(default_factory=jobdir.Progress)
    pid: int | None = None
    """The current attempt's process group (the wrapper's pid)."""
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    manifest: Mapping[str, Any] = field(default_factory=dict)
    evicting: bool = False
    """The queue evicts it: its attempt is being stopped, then it waits again."""

    def status(self, *, created: bool = False, queue: queueing.QueueInfo | None = None) -> JobStatus:
        p, s = self.plan, self.progress
        if queue is not None and s.queued_at is not None:
            queue = replace(queue, since=_stamp(s.queued_at))
        return JobStatus(
            name=p.name, namespace=p.namespace, state=s.state, reason=s.reason,
            message=s.message, failed_pods=s.failed_pods, labels=dict(p.labels), created=created,
            queue=queue if s.state == "queued" else None,
        )

    def demand(self) -> Demand:
        priority = str(((self.manifest.get("spec") or {}).get("template") or {}).get("spec", {})
                       .get("priorityClassName") or "").removeprefix("jobplane-") or "normal"
        return demand_of(self.manifest, job_type=self.plan.labels.get(LABEL_TYPE, ""), priority=priority)


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
        policy: Policy | None = None,
    ) -> None:
        """``restart_delay``: pause before the first failed pod's replacement, doubling per
        failure up to ``MAX_RESTART_DELAY`` (Kubernetes: 10 s doubling to 6 min; locally
        short). ``grace_seconds``: SIGTERM → SIGKILL wait.
        ``extra_env``: added beneath the manifest's env (e.g. thread limits for tests).
        ``policy``: Kueue's objects; Jobs then wait for quota (see the module's doc)."""
        self.workdir = Path(workdir)
        self.on_finished = on_finished
        self.restart_delay = restart_delay
        self.grace_seconds = grace_seconds
        self.extra_env = dict(extra_env or {})
        self.python = python
        self._jobs: dict[str, _Job] = {}
        self._quota = Quota(policy) if policy is not None else None
        self._lock = threading.RLock()
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
            record = _Job(plan=plan, dir=self.workdir / plan.name, started_at=time.time(), manifest=job)
            record.dir.mkdir(parents=True, exist_ok=True)
            jobdir.save_job(record.dir, job, started_at=record.started_at)
            self._jobs[plan.name] = record
            if self._quota is None:
                jobdir.save_progress(record.dir, record.progress)
                self._start_supervisor(record, None)
            else:
                record.progress.state, record.progress.queued_at = "queued", record.started_at
                jobdir.save_progress(record.dir, record.progress)
                self._quota.submit(plan.name, record.demand())
                self._admit()
            return record.status(created=True, queue=self._waiting(plan.name))

    def describe(self, name: str) -> JobStatus:
        with self._lock:
            record = self._jobs.get(name)
            if record is None:
                return JobStatus(name=name, namespace="default", state="missing")
            return record.status(queue=self._waiting(name))

    def cancel(self, name: str) -> None:
        """Delete the Job: forget it, signal its processes and return (SIGKILL follows the
        grace in the background). Never waits on the Job's supervisor, which may be busy with
        its after-exit work (the ``on_finished`` callback)."""
        with self._lock:
            record = self._jobs.pop(name, None)
            if record is None:
                return
            record.stop.set()
            pid = record.pid
            jobdir.forget_job(record.dir)  # before a launch of the same name can record a new one
            if self._quota is not None:
                self._quota.release(name)
                self._admit()
        if pid is not None and _signal_group(pid, signal.SIGTERM):
            threading.Thread(target=self._kill_after_grace, args=(pid,), name=f"kill-{name}", daemon=True).start()

    def recover(self) -> list[JobStatus]:
        """Take back the Jobs an earlier launcher left in the workdir (a plane restart): each
        goes on from where it was (see the module's doc); the ones recovered, ended ones too.
        Jobs that ended longer than their ``ttlSecondsAfterFinished`` ago are gone."""
        found: list[_Job] = []
        for job_dir in sorted(self.workdir.iterdir()) if self.workdir.is_dir() else []:
            try:
                record = self._recovered(job_dir)
            except (OSError, ValueError, TypeError) as e:  # one unreadable Job never stops the others
                log.warning("job dir %s not recovered: %s", job_dir, e)
                continue
            if record is None:
                continue
            resume = self._resume_point(record) if record.progress.state == "running" else None
            with self._lock:
                if self._closed:
                    raise RuntimeError("LocalLauncher is closed")
                if record.plan.name in self._jobs:
                    continue
                self._jobs[record.plan.name] = record
                if record.progress.state == "running":
                    if self._quota is not None:
                        self._quota.hold(record.plan.name, record.demand())
                    self._start_supervisor(record, resume)
            found.append(record)
        with self._lock:  # the waiting ones in their old order, behind the running ones' quota
            waiting = sorted((r for r in found if r.progress.state == "queued"), key=lambda r: r.progress.queued_at or 0)
            for r in waiting:
                if self._quota is None:  # no queue now: they start
                    self._admitted(r)
                else:
                    self._quota.submit(r.plan.name, r.demand(), reason=r.progress.reason or queueing.REASON_PENDING)
            self._admit()
            return [r.status(queue=self._waiting(r.plan.name)) for r in found]

    def list(self, labels: Mapping[str, str]) -> list[JobStatus]:
        with self._lock:
            return [
                r.status(queue=self._waiting(r.plan.name)) for r in self._jobs.values()
                if all(r.plan.labels.get(k) == v for k, v in labels.items())
            ]

    def close(self, *, stop_jobs: bool = True) -> None:
        """Stop supervising; no callbacks follow. ``stop_jobs``: terminate every Job's
        process (SIGTERM, then SIGKILL after the grace; the attempt counts as disrupted when a
        later launcher recovers the Job); else leave them running for a later launcher on this
        workdir to adopt, as a restarting control plane leaves its pods running. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            records = list(self._jobs.values())
            for r in records:
                r.stop.set()
                if stop_jobs and r.progress.state == "running" and r.progress.attempt > r.progress.judged:
                    r.progress.disrupted = r.progress.attempt
                    jobdir.save_progress(r.dir, r.progress)
            pids = [r.pid for r in records if r.pid is not None]
        if stop_jobs:
            for pid in pids:  # every group gets its SIGTERM first: the graces run together
                _signal_group(pid, signal.SIGTERM)
            for r in records:
                self._stop(r)

    def wait(self, name: str, timeout: float | None = None) -> JobStatus:
        """Block until the Job is finished (tests, the demo); its status either way. A queued
        Job is waited for through its wait for quota (and any eviction)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                record = self._jobs.get(name)
                thread = record.thread if record is not None else None
            left = None if end is None else max(0.0, end - time.monotonic())
            if thread is not None:
                thread.join(left if left is None else min(left, 1.0))
            status = self.describe(name)
            if status.state != "queued" and (thread is None or not thread.is_alive()):
                return status
            if left is not None and left <= 0:
                return status
            if thread is None or not thread.is_alive():
                time.sleep(0.02)

    def log_path(self, name: str, attempt: int) -> Path:
        return self.workdir / name / f"attempt-{attempt}.log"

    # --- the queue (lock held) ---

    def _waiting(self, name: str) -> queueing.QueueInfo | None:
        return self._quota.waiting(name) if self._quota is not None else None

    def _admit(self) -> None:
        """Start the Jobs the quota admits now; stop the ones it evicts."""
        if self._quota is None or self._closed:
            return
        decision = self._quota.schedule()
        for name in decision.admitted:
            record = self._jobs.get(name)
            if record is not None:
                self._admitted(record)
        for name in decision.evict:
            record = self._jobs.get(name)
            if record is not None and not record.evicting:
                self._evict(record)

    def _admitted(self, r: _Job) -> None:
        """Admitted: the Job starts; its deadline counts from now (as a resumed Job's does)."""
        r.started_at = time.time()
        jobdir.save_job(r.dir, r.manifest, started_at=r.started_at)
        r.progress.state, r.progress.reason, r.progress.message, r.progress.queued_at = "running", None, None, None
        jobdir.save_progress(r.dir, r.progress)
        self._start_supervisor(r, None)

    def _evict(self, r: _Job) -> None:
        """Stop the Job's attempt to give its quota back; its supervisor then requeues it."""
        r.evicting = True
        log.info("job %s: evicted (its queue's quota is reclaimed)", r.plan.name)
        if r.pid is not None and _signal_group(r.pid, signal.SIGTERM):
            threading.Thread(target=self._kill_after_grace, args=(r.pid,), name=f"evict-{r.plan.name}", daemon=True).start()
        elif r.thread is None or not r.thread.is_alive():
            self._requeue(r)

    def _requeue(self, r: _Job) -> None:
        """The evicted Job is down: it waits again (``Preempted``); its attempt is no failure."""
        p = r.progress
        p.judged, p.preemptions, p.state = p.attempt, p.preemptions + 1, "queued"
        p.reason, p.queued_at, r.evicting = queueing.REASON_PREEMPTED, time.time(), False
        jobdir.save_progress(r.dir, p)
        if self._quota is not None:
            self._quota.requeue(r.plan.name)
            self._admit()

    # --- recovery ---

    def _recovered(self, job_dir: Path) -> _Job | None:
        saved = jobdir.load_job(job_dir)
        if saved is None:
            return None
        try:
            plan = plan_job(saved.manifest)
        except PermanentError:
            return None
        record = _Job(plan=plan, dir=job_dir, started_at=saved.started_at, progress=jobdir.load_progress(job_dir),
                      manifest=saved.manifest)
        ended = record.progress.finished_at
        if ended is not None and plan.ttl_s is not None and time.time() - ended > plan.ttl_s:
            jobdir.forget_job(job_dir)
            return None
        return record

    def _resume_point(self, r: _Job) -> Outcome | psutil.Process | None:
        """Where the supervisor picks up: the latest attempt's process (adopted), its outcome
        when it ended meanwhile, or None to start the next attempt."""
        attempt = r.progress.attempt
        if attempt == 0 or r.progress.judged >= attempt:
            return None
        proc = jobdir.live_process(r.dir, attempt)
        if proc is not None:
            log.info("job %s: adopted attempt %d (pid %d), still running", r.plan.name, attempt, proc.pid)
            r.pid = proc.pid
            return proc
        return self._ended(r, attempt)

    def _ended(self, r: _Job, attempt: int) -> Outcome:
        """An attempt whose process has ended: its recorded status; a disruption when the plane
        stopped it or when it left no status (it vanished while no launcher watched)."""
        code = jobdir.exit_status(r.dir, attempt)
        if code == 0:
            return 0
        if r.progress.disrupted == attempt:
            return "disrupted"
        if code is None:
            note = (f"jobplane: attempt {attempt} vanished without a recorded exit status "
                    "(it ended while no launcher watched it); counted as a disrupted pod")
            log.warning("job %s: %s", r.plan.name, note)
            with open(self.log_path(r.plan.name, attempt), "a", encoding="utf-8") as out:
                out.write(f"\n{note}\n")
            return "disrupted"
        return code

    # --- supervision ---

    def _start_supervisor(self, r: _Job, resume: Outcome | psutil.Process | None) -> None:
        r.thread = threading.Thread(target=self._supervise, args=(r, resume), name=f"job-{r.plan.name}", daemon=True)
        r.thread.start()

    def _supervise(self, r: _Job, resume: Outcome | psutil.Process | None) -> None:
        deadline = self._deadline(r)
        while not r.stop.is_set():
            if isinstance(resume, psutil.Process):
                outcome = self._watch(r, resume, deadline)
            elif resume is not None:
                outcome = resume
            else:
                outcome = self._run_attempt(r, self._next_attempt(r), deadline)
            resume = None
            with self._lock:
                r.pid = None  # ended: its pid may be another process's soon
                if r.evicting and outcome != 0 and not r.stop.is_set():
                    self._requeue(r)
                    return
            if r.stop.is_set() or not self._judge(r, outcome, deadline):
                return

    def _deadline(self, r: _Job) -> float | None:
        """The deadline on the monotonic clock, from the Job's start (wall clock, kept on disk)."""
        if r.plan.deadline_s is None:
            return None
        return time.monotonic() + r.plan.deadline_s - (time.time() - r.started_at)

    def _next_attempt(self, r: _Job) -> int:
        with self._lock:
            r.progress.attempt += 1
            jobdir.save_progress(r.dir, r.progress)
            return r.progress.attempt

    def _judge(self, r: _Job, outcome: Outcome, deadline: float | None) -> bool:
        """Apply the Job's policy to an ended attempt; True when another attempt follows."""
        attempt = r.progress.attempt
        if outcome == "deadline":
            return self._finish(r, "failed", REASON_DEADLINE, "Job was active longer than specified deadline")
        if outcome == 0:
            return self._finish(r, "succeeded", None, None)
        disrupted = outcome == "disrupted"
        code = None if outcome == "disrupted" else outcome
        conditions = (DISRUPTION,) if disrupted else ()
        rules, container = r.plan.failure_rules, r.plan.container
        action = rule_action(rules, exit_code=code, container=container, conditions=conditions)
        with self._lock:
            r.progress.failed_pods += 1
            r.progress.failures += action == "Count"
            r.progress.judged = attempt
            jobdir.save_progress(r.dir, r.progress)
        if action == "FailJob":
            index = rule_index(rules, exit_code=code, container=container, conditions=conditions)
            what = f"failed with exit code {code}" if code is not None else f"has condition {DISRUPTION}"
            msg = (f"Container {container} for pod {r.plan.namespace}/{r.plan.name}-{attempt} {what} "
                   f"matching FailJob rule at index {index}; {self._tail(r, attempt)}")
            return self._finish(r, "failed", REASON_POLICY, msg)
        if r.progress.failures > r.plan.backoff_limit:
            msg = f"Job has reached the specified backoff limit; {self._tail(r, attempt)}"
            return self._finish(r, "failed", REASON_BACKOFF, msg)
        if not self._pause(r, deadline, r.progress.failures):
            return self._finish(r, "failed", REASON_DEADLINE, "Job was active longer than specified deadline")
        return True

    def _run_attempt(self, r: _Job, attempt: int, deadline: float | None) -> Outcome:
        """One pod, our child: its exit status, or "deadline" when the deadline killed it."""
        with open(self.log_path(r.plan.name, attempt), "wb") as out:
            proc = self._spawn(r, attempt, out)
            if proc is None:
                return START_ERROR_EXIT
            try:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                return proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                if r.stop.is_set():  # closed without stopping the Jobs: leave it to the next launcher
                    return proc.wait()
                self._kill(proc.pid, lambda t: _waited(proc, t))
                return "deadline"

    def _watch(self, r: _Job, proc: psutil.Process, deadline: float | None) -> Outcome:
        """An adopted attempt (not our child): watched until it ends, then judged by its
        recorded status; "deadline" when the deadline killed it."""
        attempt = r.progress.attempt
        while jobdir.running(proc):
            if r.stop.is_set():
                return "disrupted"  # never judged: supervision stopped
            if deadline is not None and time.monotonic() >= deadline:
                self._kill(proc.pid, lambda t: _gone(proc, t))
                return "deadline"
            r.stop.wait(WATCH_EVERY)
        return self._ended(r, attempt)

    def _spawn(self, r: _Job, attempt: int, out: IO[bytes]) -> subprocess.Popen[bytes] | None:
        argv = list(r.plan.argv)
        if argv[0] in _PYTHONS:
            argv[0] = self.python
        wrapped = [self.python, "-I", "-S", WRAPPER, str(jobdir.exit_path(r.dir, attempt)), "--", *argv]
        env = local_env(r.plan, r.dir, path=os.environ.get("PATH", os.defpath), extra=self.extra_env)
        with self._lock:
            if r.stop.is_set() or r.evicting:
                return None
            try:
                proc = subprocess.Popen(
                    wrapped, env=env, cwd=r.dir, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            except OSError as e:
                out.write(f"StartError: {e}\n".encode())
                return None
            r.pid = proc.pid
        jobdir.save_pid(r.dir, attempt, proc.pid)
        return proc

    def _pause(self, r: _Job, deadline: float | None, failures: int) -> bool:
        """Wait before the next pod; False when the deadline passes first."""
        delay = min(self.restart_delay * 2 ** max(failures - 1, 0), MAX_RESTART_DELAY)
        if deadline is not None and time.monotonic() + delay >= deadline:
            r.stop.wait(max(0.0, deadline - time.monotonic()))
            return r.stop.is_set()
        r.stop.wait(delay)
        return True

    def _finish(self, r: _Job, state: JobState, reason: str | None, message: str | None) -> bool:
        """End the Job (kept on disk), then tell ``on_finished``; False: no attempt follows."""
        with self._lock:
            if r.stop.is_set():
                return False
            s = r.progress
            s.state, s.reason, s.message, s.finished_at = state, reason, message, time.time()
            jobdir.save_progress(r.dir, s)
            callback = self.on_finished if not self._closed else None
            if self._quota is not None:
                self._quota.release(r.plan.name)
                self._admit()
        log.info("job %s %s%s", r.plan.name, state, f" ({reason})" if reason else "")
        if callback is not None:
            try:
                callback(r.status())
            except Exception:  # the callback's failure must not kill the supervisor silently
                log.exception("on_finished callback failed for job %s", r.plan.name)
        return False

    def _stop(self, r: _Job) -> None:
        """Terminate the Job's process and wait for its supervisor (``close`` only)."""
        with self._lock:
            r.stop.set()
            pid = r.pid
        if pid is not None:
            self._kill(pid, lambda t: _gone_pid(pid, t))
        if r.thread is not None and r.thread is not threading.current_thread():
            r.thread.join(self.grace_seconds + 5)

    def _kill_after_grace(self, pid: int) -> None:
        if not _gone_pid(pid, self.grace_seconds):
            _signal_group(pid, signal.SIGKILL)

    def _kill(self, pid: int, gone: Callable[[float], bool]) -> None:
        """SIGTERM the process group, SIGKILL it after the grace, as the kubelet does;
        ``gone(timeout)`` waits for the group's leader to end."""
        for sig, wait in ((signal.SIGTERM, self.grace_seconds), (signal.SIGKILL, 5.0)):
            if not _signal_group(pid, sig) or gone(wait):
                return

    def _tail(self, r: _Job, attempt: int) -> str:
        path = self.log_path(r.plan.name, attempt)
        try:
            data = path.read_bytes()[-2000:]
        except OSError:
            data = b""
        text = short(data.decode("utf-8", "replace").strip().splitlines()[-1] if data.strip() else "", 200)
        return f"log {path}" + (f": {text}" if text else "")


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _signal_group(pid: int, sig: int) -> bool:
    """Signal a process group; False when it is gone already."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _waited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def _gone(proc: psutil.Process, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while jobdir.running(proc):
        if time.monotonic() >= end:
            return False
        time.sleep(0.05)
    return True


def _gone_pid(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` ended within ``timeout`` (reaped by its own parent, or a zombie)."""
    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        return True
    return _gone(proc, timeout)
