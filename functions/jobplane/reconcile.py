"""The reconciler: runs whose Jobs ended without a final callback are marked failed, and runs
whose Jobs wait for quota say so.

A trainer that is OOM-killed, evicted, stopped by its deadline or deleted by hand never sends
``run.failed``; without this, its run would stay ``running`` for ever. Fired every minute (a
PingSource in the cluster, the local cron in the embedded plane), it compares the active runs
with their Jobs and ends the runs whose Jobs are gone or finished, with Kubernetes' reason.

A trainer that crashes reports its error as progress in phase ``error`` and exits, and the Job
retries it; only when the Job has failed for good does its run fail, here. The failed record
then says how many attempts failed and quotes the trainer's last reported error
(``BackoffLimitExceeded``: "3 attempts failed; last: ValueError: …; Job has reached …").
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from . import conventions as c
from . import queueing, runs
from .errors import JobplaneError, NotFoundError, UnavailableError, short
from .launcher.base import JobStatus, Launcher
from .store.base import ObjectStore

log = logging.getLogger(__name__)

GRACE: Final = timedelta(minutes=2)
"""How long a succeeded Job's final callback may take to arrive through the broker."""
LAUNCH_GRACE: Final = timedelta(minutes=15)
"""How long a run may stay ``requested`` without a Job (the broker redelivers the trigger)."""
CREATE_GRACE: Final = timedelta(minutes=1)
"""How long a ``launched`` run's Job may not exist yet: the record names its Job while the
create call is in flight (with the launcher's retries), and a create that failed is issued
again by the broker's redeliveries (5 retries with exponential backoff: about 30 s)."""
REASON_MISSING: Final = "JobMissing"
REASON_NO_REPORT: Final = "CompletedWithoutReport"
REASON_NOT_LAUNCHED: Final = "NotLaunched"
QUEUE_READS: Final = 250
"""Most runs a pass reads only because their Job moved in the queue (a sweep's thousands of Jobs
queue at once): the rest are read by the next passes. Runs whose Jobs ended or vanished, or can
never be admitted, are read whatever their number."""
ERROR_LOOKBACK: Final = 20
"""Newest progress entries of a run's log searched for the trainer's last reported error."""
MESSAGE_LIMIT: Final = 2000
EVICTION_REASONS: Final = frozenset({queueing.REASON_PREEMPTED, "PodsReadyTimeout", "InactiveWorkload",
                                     "AdmissionCheck", "ClusterQueueStopped", "LocalQueueStopped"})
"""Why an admitted Workload goes back to waiting (its ``Evicted`` condition's reason)."""


@dataclass
class Report:
    """What one pass did."""

    checked: int = 0
    """Active runs looked at (read, or passed over because their Job was listed as before)."""
    read: int = 0
    """Active runs whose record was read."""
    failed: dict[str, str] = field(default_factory=dict)
    """Run id → the reason it was marked failed with."""
    moved: dict[str, str] = field(default_factory=dict)
    """Run id → the state it moved to by its Job's place in the queue (queued, running)."""
    errors: list[str] = field(default_factory=list)
    retry: bool = False
    """A transient failure happened: the pass should be retried."""


@dataclass
class Seen:
    """What earlier passes of this process saw of the Jobs still queued or running: a Job
    listed as before needs no read of its run (nothing the pass could do changed). A process
    starting cold (a pod scaled from zero) has seen nothing and reads each such run once."""

    jobs: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """Run id → the Job's state and place in the queue when its run was last read."""
    warm: bool = False
    """A whole pass has been made: a Job first listed ``running`` since is new, and its run
    cannot be ``queued`` (only a reconciler writes that, and this one would have seen it
    queued): nothing to do for it."""

    def knows(self, run_id: str, job: JobStatus) -> bool:
        """Whether the run of this listed Job needs no read (remembering a new running one)."""
        if self.jobs.get(run_id) == fingerprint(job):
            return True
        if self.warm and job.state == "running" and run_id not in self.jobs:
            self.jobs[run_id] = fingerprint(job)
            return True
        return False


def reconcile(store: ObjectStore, launcher: Launcher, *, now: datetime, grace: timedelta = GRACE,
              launch_grace: timedelta = LAUNCH_GRACE, seen: Seen | None = None,
              queue_reads: int = QUEUE_READS) -> Report:
    """One pass over the active runs; a transient failure on one run does not stop the others,
    and is raised at the end so the PingSource delivery is retried. Reads the records of the
    runs whose Jobs ended, are missing, or changed their state or place in the queue since
    ``seen`` (a fresh one: every run with a Job once; at most ``queue_reads`` of those that
    only moved in the queue), never the others'."""
    report, seen = Report(), seen if seen is not None else Seen()
    active = runs.list_active(store)
    jobs = _jobs_by_run(launcher) if active else {}
    for run_id in active:
        listed = jobs.get(run_id)
        if listed is not None and (seen.knows(run_id, listed) or (_settled(listed) and queue_reads <= 0)):
            report.checked += 1
            continue
        if listed is not None and _settled(listed):
            queue_reads -= 1
        _check(store, launcher, run_id, listed, now=now, grace=grace, launch_grace=launch_grace,
               seen=seen, report=report)
    seen.jobs = {k: v for k, v in seen.jobs.items() if k in jobs}
    seen.warm = seen.warm or not report.errors
    if report.retry:
        raise UnavailableError(f"reconcile: {len(report.errors)} of {report.checked} runs failed: {report.errors[0]}")
    return report


def _check(store: ObjectStore, launcher: Launcher, run_id: str, listed: JobStatus | None, *, now: datetime,
           grace: timedelta, launch_grace: timedelta, seen: Seen, report: Report) -> None:
    """Read one active run and act on its Job; a run ended already only loses its marker."""
    seen.jobs.pop(run_id, None)
    try:
        stored = _active_run(store, run_id)
        if stored is None:
            return
        run = stored.run
        report.read += 1
        report.checked += 1
        job = listed or launcher.describe(job_name(run))
        error = last_reported_error(store, run) if job.state == "failed" else None
        verdict = judge(run, job, now=now, grace=grace, launch_grace=launch_grace, last_error=error)
        if verdict:
            _mark_failed(store, stored, reason=verdict[0], message=verdict[1], now=now)
            report.failed[run["id"]] = verdict[0]
            if job.state == "queued":
                launcher.cancel(job.name)  # never admitted: its Job would wait for ever
            return
        if queue_update(run, job, now=now) is not None:
            new = runs.update_run(store, run["id"], lambda r: queue_update(r, job, now=now), known=stored)
            report.moved[run["id"]] = str(new.get("state"))
        if listed is not None and _settled(job):
            seen.jobs[run_id] = fingerprint(job)
    except JobplaneError as e:
        log.warning("reconcile: run %s: %s", run_id, e)
        report.errors.append(f"{run_id}: {e}")
        if e.retryable:
            report.retry = True


def fingerprint(job: JobStatus) -> tuple[Any, ...]:
    """What of a listed Job decides its run's fate: its state and its place in the queue."""
    q = job.queue
    return (job.state, job.reason) + ((q.verdict, q.reason, q.message, q.since, q.position) if q else ())


def _settled(job: JobStatus) -> bool:
    """A queued or running Job whose run needs no look until it changes: not one whose wait
    may become hopeless with time alone (``Inadmissible`` for longer than its grace)."""
    if job.state == "running":
        return True
    return job.state == "queued" and (job.queue is None or (
        job.queue.verdict == "queued" and job.queue.reason != queueing.REASON_INADMISSIBLE))


def _jobs_by_run(launcher: Launcher) -> dict[str, JobStatus]:
    """The plane's Jobs by their run's id (one list call; the Job is named after its run)."""
    found = {}
    for status in launcher.list({c.LABEL_MANAGED_BY: c.MANAGED_BY}):
        found[str(status.labels.get(c.LABEL_RUN_ID) or status.name)] = status
    return found


def judge(run: Mapping[str, Any], job: JobStatus, *, now: datetime, grace: timedelta,
          launch_grace: timedelta, last_error: str | None = None) -> tuple[str, str] | None:
    """``(reason, message)`` when the run must be marked failed, else None (pure).
    ``last_error``: the trainer's last reported error, quoted when the Job failed."""
    age = now - runs.parse_rfc3339(run.get("updatedAt") or run["createdAt"])
    if job.state == "failed":
        return job.reason or "Failed", failure_message(job, last_error)
    if job.state == "missing":
        if run.get("state") == "requested":
            return None if age < launch_grace else (REASON_NOT_LAUNCHED, f"no Job was created within {launch_grace}")
        if run.get("state") == "launched" and age < CREATE_GRACE:
            return None
        return REASON_MISSING, (f"Job {job.name} does not exist: deleted before the run reported an end"
                                + (", or its create never succeeded" if run.get("state") == "launched" else ""))
    if job.state == "queued" and job.queue is not None and run.get("state") in ("launched", "queued", "running"):
        since = job.queue.since or (run.get("queue") or {}).get("since")
        if queueing.gives_up(job.queue, now=now, waited_since=runs.parse_rfc3339(since) if since else None):
            return job.queue.reason, job.queue.message or f"Job {job.name} can never be admitted"
    if job.state == "succeeded" and age >= grace:
        return REASON_NO_REPORT, f"Job {job.name} completed but the run sent no final report within {grace}"
    return None


def queue_update(run: runs.Run, job: JobStatus, *, now: datetime) -> runs.Run | None:
    """The run record as its Job's place in the queue says (pure); None when nothing changes.
    Queued Job: the run is ``queued`` (from ``running`` only when evicted: ``runs.requeue``)
    with the wait's reason and ``queue``; admitted (running) Job of a queued run: ``running``."""
    state = run.get("state")
    if runs.is_terminal(run):
        return None
    if job.state == "running" and state == "queued":
        new = runs.transition(run, "running", now=now)
        new["reason"] = None
        return new
    if job.state != "queued" or state not in ("launched", "queued", "running"):
        return None
    info = job.queue or queueing.suspended(None, since=None)
    if state == "running":
        if info.reason not in EVICTION_REASONS:
            return None
        new = runs.requeue(run, reason=info.reason, now=now)
    else:
        new = runs.transition(run, "queued", now=now) if state != "queued" else copy.deepcopy(run)
        new["reason"] = info.reason
    old_since = (run.get("queue") or {}).get("since")
    record = info.record()
    record["since"] = info.since or (old_since if state == "queued" else None) or runs.rfc3339(now)
    new["queue"], new["message"] = record, info.message
    if {k: new.get(k) for k in ("state", "reason", "queue", "message")} == {
            k: run.get(k) for k in ("state", "reason", "queue", "message")}:
        return None
    new["updatedAt"] = runs.rfc3339(now)
    return new


def failure_message(job: JobStatus, last_error: str | None) -> str:
    """"N attempts failed; last: <trainer's error>; <Kubernetes' message>" (parts it lacks left out)."""
    parts = []
    if job.failed_pods:
        parts.append(f"{job.failed_pods} attempt{'s' if job.failed_pods != 1 else ''} failed")
    if last_error:
        parts.append(f"last: {last_error}")
    parts.append(job.message or "the Job failed")
    return short("; ".join(parts), MESSAGE_LIMIT)


def last_reported_error(store: ObjectStore, run: Mapping[str, Any]) -> str | None:
    """The message of the newest ``error`` progress the trainer sent: from the run's log (durable
    before the callback was answered, so never behind the coalesced record), else the record's."""
    prefix = c.run_events_prefix(str(run["id"]))
    keys = [k for k in store.list(prefix) if k[len(prefix):][:1].isdigit()]
    for key in reversed(keys[-ERROR_LOOKBACK:]):
        try:
            data = json.loads(store.read(key).data).get("data") or {}
        except (NotFoundError, ValueError, AttributeError):
            continue
        if data.get("phase") == c.PHASE_ERROR and data.get("message"):
            return str(data["message"])
    if run.get("phase") == c.PHASE_ERROR and run.get("message"):
        return str(run["message"])
    return None


def job_name(run: Mapping[str, Any]) -> str:
    return str((run.get("job") or {}).get("name") or run["id"])


def _active_run(store: ObjectStore, run_id: str) -> runs.Stored | None:
    """The run's record when it is still active; a marker that outlived its run's end (a
    write raced the end) is removed, and a missing record is passed over."""
    try:
        stored = runs.read_record(store, run_id)
    except NotFoundError:
        return None
    if runs.is_terminal(stored.run):
        runs.forget_active(store, stored.run)
        return None
    return stored


def _mark_failed(store: ObjectStore, stored: runs.Stored, *, reason: str, message: str, now: datetime) -> None:
    def mutate(run: runs.Run) -> runs.Run | None:
        if runs.is_terminal(run):
            return None
        new = runs.transition(run, "failed", reason=reason, now=now)
        new["message"] = message
        return new

    runs.update_run(store, str(stored.run["id"]), mutate, known=stored)
    log.info("run %s marked failed: %s", stored.run["id"], reason)

