"""The reconciler ends runs whose Jobs died without reporting, and only those."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.fakes import FakeLauncher
from support.specs import make_spec

from jobplane import runs
from jobplane.errors import UnavailableError
from jobplane.launcher.base import JobStatus
from jobplane.reconcile import GRACE, LAUNCH_GRACE, judge, reconcile
from jobplane.store.files import FileStore

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def job(state: str, reason: str | None = None) -> JobStatus:
    return JobStatus(name="r1", namespace="default", state=state, reason=reason)  # type: ignore[arg-type]


def record(state: str, *, at: datetime = T0) -> dict[str, Any]:
    return {"id": "r1", "state": state, "createdAt": runs.rfc3339(at), "updatedAt": runs.rfc3339(at)}


@pytest.mark.parametrize(
    ("run_state", "job_status", "after", "expected"),
    [
        ("running", job("running"), timedelta(hours=1), None),
        ("launched", job("queued"), timedelta(hours=1), None),
        ("running", job("failed", "BackoffLimitExceeded"), timedelta(0), "BackoffLimitExceeded"),
        ("running", job("failed", "DeadlineExceeded"), timedelta(0), "DeadlineExceeded"),
        ("launched", job("failed", "PodFailurePolicy"), timedelta(0), "PodFailurePolicy"),
        ("running", job("missing"), timedelta(0), "JobMissing"),
        ("running", job("succeeded"), GRACE - timedelta(seconds=1), None),
        ("running", job("succeeded"), GRACE, "CompletedWithoutReport"),
        ("requested", job("missing"), LAUNCH_GRACE - timedelta(seconds=1), None),
        ("requested", job("missing"), LAUNCH_GRACE, "NotLaunched"),
    ],
)
def test_judge(run_state: str, job_status: JobStatus, after: timedelta, expected: str | None) -> None:
    verdict = judge(record(run_state), job_status, now=T0 + after, grace=GRACE, launch_grace=LAUNCH_GRACE)
    assert (verdict[0] if verdict else None) == expected


def stored_run(store: FileStore, event_id: str, *, state: str = "launched") -> dict[str, Any]:
    spec = make_spec()
    run = runs.new_run(spec=spec, trigger={"type": "t", "source": "/s", "id": event_id, "subject": None},
                       requested_by="test", now=T0)
    runs.create_run(store, run)
    return runs.update_run(store, run["id"], lambda r: runs.transition(r, state, now=T0))


def test_reconcile_fails_runs_of_dead_jobs_and_leaves_the_rest(tmp_path: Path) -> None:
    store, launcher = FileStore(tmp_path), FakeLauncher()
    alive, died, gone, done = (stored_run(store, str(i)) for i in range(4))
    for r in (alive, died, done):
        launcher.launch({"metadata": {"name": r["id"], "labels": {"app.kubernetes.io/managed-by": "jobplane"}}})
    launcher.states[died["id"]] = "failed"
    runs.update_run(store, done["id"], lambda r: runs.transition(r, "succeeded", now=T0))

    report = reconcile(store, launcher, now=T0 + timedelta(seconds=5))

    assert report.failed == {died["id"]: "Failed", gone["id"]: "JobMissing"}
    assert report.checked == 3
    assert runs.get_run(store, gone["id"])["state"] == "failed"
    assert runs.get_run(store, alive["id"])["state"] == "launched"
    assert runs.get_run(store, done["id"])["state"] == "succeeded"
    assert sorted(runs.list_active(store)) == [alive["id"]]


class DownLauncher(FakeLauncher):
    def describe(self, name: str) -> JobStatus:
        raise UnavailableError("API server down")


def test_a_transient_failure_is_raised_after_the_other_runs_are_done(tmp_path: Path) -> None:
    store, launcher = FileStore(tmp_path), DownLauncher()
    dead = stored_run(store, "a")
    unknown = stored_run(store, "b")
    launcher.launch({"metadata": {"name": dead["id"], "labels": {"app.kubernetes.io/managed-by": "jobplane"}}})
    launcher.states[dead["id"]] = "failed"

    with pytest.raises(UnavailableError, match="1 of 2"):
        reconcile(store, launcher, now=T0)

    assert runs.get_run(store, dead["id"])["state"] == "failed"
    assert runs.get_run(store, unknown["id"])["state"] == "launched"


def test_a_marker_left_behind_by_an_ended_run_is_removed(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    done = stored_run(store, "a", state="succeeded")
    runs.write_index(store, [runs.active_key(done)])  # a late marker write raced the end

    assert reconcile(store, DownLauncher(), now=T0).checked == 0
    assert runs.list_active(store) == []


def test_no_active_runs_means_no_call_to_the_launcher(tmp_path: Path) -> None:
    assert reconcile(FileStore(tmp_path), DownLauncher(), now=T0).checked == 0
