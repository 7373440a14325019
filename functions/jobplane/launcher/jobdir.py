"""A local Job's record on disk, so that a launcher started after a plane restart finds the
Jobs of the one before (as the Kubernetes API server keeps Jobs and pods running while the
controllers restart).

In the Job's directory (``{workdir}/{job}/``):

- ``job.json`` (mode 0600: the env carries the run's callback token): the manifest and when the
  Job started (its ``activeDeadlineSeconds`` counts from then). Removed when the Job is deleted:
  a directory without it is no Job.
- ``status.json``: what the supervisor has decided so far: the latest attempt started, the
  latest whose outcome was applied, failures counted against ``backoffLimit``, failed pods,
  the attempt the plane stopped (a disruption), and the Job's end.
- ``attempt-N.pid``: the attempt's process (the wrapper, leader of its process group): pid and
  start time, so a pid the system has given to another process is never taken for it.
- ``attempt-N.exit``: the attempt's exit status, written by the wrapper (``wrap.py``).

Writes are atomic (a temporary file renamed over the old one), so a crash leaves the old or
the new content, never a mix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import psutil

from .base import JobState

JOB_FILE: Final = "job.json"
STATUS_FILE: Final = "status.json"
SAME_START: Final = 0.05
"""Seconds two readings of one process's start time may differ by (clock-tick rounding)."""


@dataclass
class Progress:
    """The supervisor's decisions so far (``status.json``)."""

    attempt: int = 0
    """The latest attempt started (0: none yet)."""
    judged: int = 0
    """The latest attempt whose outcome was applied to the counts below."""
    failures: int = 0
    """Failed attempts counted against ``backoffLimit`` (``Ignore`` rules do not count)."""
    failed_pods: int = 0
    disrupted: int = 0
    """The attempt the plane stopped when it shut down (a node drain, for the pod)."""
    state: JobState = "running"
    reason: str | None = None
    message: str | None = None
    finished_at: float | None = None
    """Seconds since the epoch when the Job ended."""
    queued_at: float | None = None
    """Seconds since the epoch when the Job began its current wait for quota (state ``queued``)."""
    preemptions: int = 0
    """Attempts stopped to give quota back (no failure: they count neither here nor there)."""


@dataclass(frozen=True)
class Saved:
    manifest: Mapping[str, Any]
    started_at: float


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def save_job(job_dir: Path, manifest: Mapping[str, Any], *, started_at: float) -> None:
    """Record a new Job; stale attempt files of an earlier Job of the same name are removed."""
    for stale in (*job_dir.glob("attempt-*.exit"), *job_dir.glob("attempt-*.pid")):
        stale.unlink(missing_ok=True)
    body = {"manifest": manifest, "startedAt": started_at}
    write_atomic(job_dir / JOB_FILE, json.dumps(body).encode(), mode=0o600)


def load_job(job_dir: Path) -> Saved | None:
    """The Job recorded in ``job_dir``; None when there is none (or it cannot be read)."""
    body = _read_json(job_dir / JOB_FILE)
    if not isinstance(body, dict) or not isinstance(body.get("manifest"), dict):
        return None
    return Saved(manifest=body["manifest"], started_at=float(body.get("startedAt") or 0.0))


def forget_job(job_dir: Path) -> None:
    """The Job is deleted: its directory no longer names a Job (the logs stay)."""
    (job_dir / JOB_FILE).unlink(missing_ok=True)


def save_progress(job_dir: Path, progress: Progress) -> None:
    write_atomic(job_dir / STATUS_FILE, json.dumps(asdict(progress)).encode())


def load_progress(job_dir: Path) -> Progress:
    body = _read_json(job_dir / STATUS_FILE)
    if not isinstance(body, dict):
        return Progress()
    known = {k: v for k, v in body.items() if k in Progress.__dataclass_fields__}
    return Progress(**known)


def pid_path(job_dir: Path, attempt: int) -> Path:
    return job_dir / f"attempt-{attempt}.pid"


def exit_path(job_dir: Path, attempt: int) -> Path:
    return job_dir / f"attempt-{attempt}.exit"


def save_pid(job_dir: Path, attempt: int, pid: int) -> None:
    """Record the attempt's process with its start time (it is our child: readable until reaped)."""
    try:
        started = psutil.Process(pid).create_time()
    except psutil.Error:
        return  # gone already: its exit file says how it ended
    write_atomic(pid_path(job_dir, attempt), json.dumps({"pid": pid, "startTime": started}).encode())


def exit_status(job_dir: Path, attempt: int) -> int | None:
    """The attempt's recorded exit status; None when none was recorded."""
    try:
        return int(exit_path(job_dir, attempt).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def live_process(job_dir: Path, attempt: int) -> psutil.Process | None:
    """The attempt's process when it is still running: the recorded pid, started when recorded."""
    body = _read_json(pid_path(job_dir, attempt))
    if not isinstance(body, dict):
        return None
    try:
        proc = psutil.Process(int(body["pid"]))
        same = abs(proc.create_time() - float(body["startTime"])) < SAME_START
    except (psutil.Error, KeyError, TypeError, ValueError):
        return None
    return proc if same and running(proc) else None


def running(proc: psutil.Process) -> bool:
    """Whether the process is still running (a zombie has ended; ``is_running`` also checks
    that the pid was not reused since ``proc`` was made)."""
    try:
        return bool(proc.is_running()) and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
