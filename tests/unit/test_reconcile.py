"""The reconciler ends runs whose Jobs died without reporting, and only those."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.fakes import FakeLauncher
from support.specs import make_spec
from support.stores import CountingStore

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import progress, runs
from jobplane.errors import UnavailableError
from jobplane.launcher.base import JobStatus
from jobplane.queueing import QueueInfo
from jobplane.reconcile import (CREATE_GRACE, GRACE, LAUNCH_GRACE, Seen, failure_message, judge, queue_update,
                                reconcile)
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
        ("launched", job("missing"), CREATE_GRACE - timedelta(seconds=1), None),
        ("launched", job("missing"), CREATE_GRACE, "JobMissing"),
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

    report = reconcile(store, launcher, now=T0 + CREATE_GRACE)

    assert report.failed == {died["id"]: "Failed", gone["id"]: "JobMissing"}
    assert report.checked == 3
    assert runs.get_run(store, gone["id"])["state"] == "failed"
    assert runs.get_run(store, alive["id"])["state"] == "launched"
    assert runs.get_run(store, done["id"])["state"] == "succeeded"
    assert sorted(runs.list_active(store)) == [alive["id"]]


def records_read(store: CountingStore) -> set[str]:
    return {key.split("/")[1] for key, n in store.reads.items() if key.endswith("/run.json") and n}


def test_a_pass_reads_only_the_runs_whose_jobs_ended_vanished_or_moved(tmp_path: Path) -> None:
    store, launcher, seen = CountingStore(FileStore(tmp_path)), FakeLauncher(), Seen()
    active = [stored_run(store, str(i)) for i in range(40)]
    for r in active:
        launcher.launch({"metadata": {"name": r["id"], "labels": {"app.kubernetes.io/managed-by": "jobplane"}}})
    first = reconcile(store, launcher, now=T0 + CREATE_GRACE, seen=seen)
    assert (first.checked, first.read) == (40, 40)  # a cold process reads each run once
    store.reads.clear()

    quiet = reconcile(store, launcher, now=T0 + CREATE_GRACE, seen=seen)

    assert (quiet.checked, quiet.read, records_read(store)) == (40, 0, set())
    late = stored_run(store, "late")  # launched since, its Job already running: nothing to do
    launcher.launch({"metadata": {"name": late["id"], "labels": {"app.kubernetes.io/managed-by": "jobplane"}}})
    store.reads.clear()
    assert reconcile(store, launcher, now=T0 + CREATE_GRACE, seen=seen).read == 0
    failed, gone, waits, _ = (r["id"] for r in active[:4])
    launcher.states[failed] = "failed"
    launcher.cancel(gone)
    launcher.states[waits] = "queued"
    store.reads.clear()

    report = reconcile(store, launcher, now=T0 + CREATE_GRACE, seen=seen)

    assert records_read(store) == {failed, gone, waits}
    assert (report.checked, report.read) == (41, 3)
    assert report.failed == {failed: "Failed", gone: "JobMissing"}
    assert report.moved == {waits: "queued"}
    assert sorted(runs.list_active(store)) == sorted([late["id"]] + [r["id"] for r in active if r["id"] not in (failed, gone)])
    store.reads.clear()
    assert reconcile(store, launcher, now=T0 + CREATE_GRACE, seen=seen).read == 0


def test_a_burst_of_jobs_entering_the_queue_is_written_down_over_several_passes(tmp_path: Path) -> None:
    store, launcher, seen = CountingStore(FileStore(tmp_path)), FakeLauncher(), Seen()
    burst = [stored_run(store, str(i)) for i in range(25)]
    for r in burst:
        launcher.launch({"metadata": {"name": r["id"], "labels": {"app.kubernetes.io/managed-by": "jobplane"}}})
        launcher.states[r["id"]] = "queued"
    dead = burst[-1]["id"]
    launcher.states[dead] = "failed"

    passes = [reconcile(store, launcher, now=T0 + CREATE_GRACE, seen=seen, queue_reads=10) for _ in range(4)]

    assert [p.read for p in passes] == [11, 10, 4, 0]  # the ended Job's run whatever the budget
    assert passes[0].failed == {dead: "Failed"}
    assert all(runs.get_run(store, r["id"])["state"] == "queued" for r in burst[:-1])


def test_a_run_with_no_job_at_all_is_read_every_pass_until_its_grace_ends(tmp_path: Path) -> None:
    store, seen = CountingStore(FileStore(tmp_path)), Seen()
    crashed = stored_run(store, "a", state="requested")  # its launch died before the Job's create
    assert reconcile(store, FakeLauncher(), now=T0, seen=seen).failed == {}
    assert reconcile(store, FakeLauncher(), now=T0 + LAUNCH_GRACE, seen=seen).failed == {crashed["id"]: "NotLaunched"}
    assert store.reads[c.run_key(crashed["id"])] >= 2


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


BACKOFF = "Job has reached the specified backoff limit"


@pytest.mark.parametrize(
    ("failed_pods", "k8s_message", "last_error", "expected"),
    [
        (3, BACKOFF, "ValueError: bad epoch", f"3 attempts failed; last: ValueError: bad epoch; {BACKOFF}"),
        (1, BACKOFF, None, f"1 attempt failed; {BACKOFF}"),
        (0, None, "RuntimeError: x", "last: RuntimeError: x; the Job failed"),
        (0, None, None, "the Job failed"),
    ],
)
def test_a_failed_jobs_message_counts_attempts_and_quotes_the_trainers_last_error(
        failed_pods: int, k8s_message: str | None, last_error: str | None, expected: str) -> None:
    status = JobStatus(name="r1", namespace="default", state="failed", reason="BackoffLimitExceeded",
                       message=k8s_message, failed_pods=failed_pods)
    assert failure_message(status, last_error) == expected
    verdict = judge(record("running"), status, now=T0, grace=GRACE, launch_grace=LAUNCH_GRACE, last_error=last_error)
    assert verdict == ("BackoffLimitExceeded", expected)


class BackoffLauncher(FakeLauncher):
    """Its failed Jobs failed as Kubernetes reports running out of retries."""

    def _status(self, name: str, *, created: bool = False) -> JobStatus:
        found = super()._status(name, created=created)
        if found.state != "failed":
            return found
        return replace(found, reason="BackoffLimitExceeded", message=BACKOFF, failed_pods=2)


def logged(store: FileStore, run_id: str, seq: int, **data: Any) -> None:
    event = ev.new_event(ev.RUN_PROGRESS, source=f"/jobplane/trainer/{run_id}", subject=run_id,
                         data={"seq": seq, "progress": 40, **data})
    progress.append_log(store, run_id, event, event.data, now=T0)


def test_a_run_whose_job_ran_out_of_retries_fails_quoting_the_trainers_last_reported_error(tmp_path: Path) -> None:
    store, launcher = FileStore(tmp_path), BackoffLauncher()
    run = stored_run(store, "a", state="running")
    t1 = 1_800_000_000_000  # the trainer's seq: milliseconds since the epoch
    logged(store, run["id"], t1, phase="training", message="epoch 1/2")
    logged(store, run["id"], t1 + 1, phase=c.PHASE_ERROR, message="ValueError: invalid literal for int()")
    logged(store, run["id"], t1 + 5000, phase="prepare", message="reading training data")  # attempt 2, then OOM
    launcher.launch({"metadata": {"name": run["id"], "labels": {"app.kubernetes.io/managed-by": "jobplane"}}})
    launcher.states[run["id"]] = "failed"

    assert reconcile(store, launcher, now=T0).failed == {run["id"]: "BackoffLimitExceeded"}

    failed = runs.get_run(store, run["id"])
    assert (failed["state"], failed["reason"]) == ("failed", "BackoffLimitExceeded")
    assert failed["message"] == f"2 attempts failed; last: ValueError: invalid literal for int(); {BACKOFF}"


def test_a_job_that_died_without_reporting_an_error_fails_with_kubernetes_message_alone(tmp_path: Path) -> None:
    store, launcher = FileStore(tmp_path), BackoffLauncher()
    run = stored_run(store, "a", state="running")
    logged(store, run["id"], 7, phase="training", message="epoch 1/2")
    launcher.launch({"metadata": {"name": run["id"], "labels": {"app.kubernetes.io/managed-by": "jobplane"}}})
    launcher.states[run["id"]] = "failed"

    reconcile(store, launcher, now=T0)

    assert runs.get_run(store, run["id"])["message"] == f"2 attempts failed; {BACKOFF}"


# --- runs that wait in a queue ------------------------------------------------------------------

WAITING = QueueInfo("queued", "WaitingForQuota", "insufficient quota for nvidia.com/gpu", queue="training",
                    cluster_queue=None, since="2026-01-01T11:59:00Z", position=2)
PREEMPTED = replace(WAITING, reason="Preempted", message="Preempted to accommodate a workload",
                    since="2026-01-01T12:10:00Z")


def waiting(info: QueueInfo | None) -> JobStatus:
    return JobStatus(name="r1", namespace="default", state="queued", queue=info)


def active(state: str, **extra: Any) -> dict[str, Any]:
    run = runs.new_run(spec=make_spec(), trigger={"type": "t", "source": "s", "id": "1"}, requested_by="x", now=T0)
    return {**run, "state": state, **extra}


def test_a_launched_run_whose_job_waits_is_queued_with_the_reason_queue_wait_and_position() -> None:
    new = queue_update(active("launched"), waiting(WAITING), now=T0)
    assert new is not None
    assert (new["state"], new["reason"], new["message"]) == ("queued", "WaitingForQuota", WAITING.message)
    assert new["queue"] == {"name": "training", "clusterQueue": None, "since": "2026-01-01T11:59:00Z", "position": 2}


def test_a_queued_run_whose_wait_did_not_change_is_not_rewritten() -> None:
    queued = queue_update(active("launched"), waiting(WAITING), now=T0)
    assert queued is not None
    assert queue_update(queued, waiting(WAITING), now=T0 + timedelta(minutes=1)) is None
    moved = queue_update(queued, waiting(replace(WAITING, position=0)), now=T0 + timedelta(minutes=1))
    assert moved is not None and moved["queue"]["position"] == 0


def test_a_suspended_job_without_a_workload_keeps_the_time_its_run_began_to_wait() -> None:
    first = queue_update(active("launched"), waiting(None), now=T0)
    assert first is not None and (first["reason"], first["queue"]["since"]) == ("Suspended", runs.rfc3339(T0))
    assert queue_update(first, waiting(None), now=T0 + timedelta(minutes=5)) is None


def test_an_admitted_job_moves_its_queued_run_to_running() -> None:
    queued = queue_update(active("launched"), waiting(WAITING), now=T0)
    assert queued is not None
    new = queue_update(queued, JobStatus(name="r1", namespace="default", state="running"), now=T0 + timedelta(minutes=3))
    assert new is not None and (new["state"], new["reason"], new["startedAt"]) == ("running", None, "2026-01-01T12:03:00.000Z")


def test_a_preempted_running_run_goes_back_to_queued_keeping_its_progress() -> None:
    run = active("running", progress=40, startedAt=runs.rfc3339(T0))
    new = queue_update(run, waiting(PREEMPTED), now=T0 + timedelta(minutes=10))
    assert new is not None
    assert (new["state"], new["reason"], new["progress"], new["preemptions"]) == ("queued", "Preempted", 40, 1)
    assert new["queue"]["since"] == "2026-01-01T12:10:00Z"
    again = queue_update(runs.transition(new, "running", now=T0), waiting(PREEMPTED), now=T0)
    assert again is not None and again["preemptions"] == 2


@pytest.mark.parametrize("state", ["succeeded", "failed", "cancelled"])
def test_terminal_runs_never_go_back_to_queued(state: str) -> None:
    assert queue_update(active(state), waiting(PREEMPTED), now=T0) is None


def test_a_running_run_is_not_queued_again_unless_its_job_was_evicted() -> None:
    assert queue_update(active("running"), waiting(WAITING), now=T0) is None


@pytest.mark.parametrize(
    ("info", "waited", "expected"),
    [(replace(WAITING, verdict="hopeless", reason="ExceedsMaxQuota"), timedelta(0), "ExceedsMaxQuota"),
     (replace(WAITING, reason="Inadmissible", since=None), timedelta(minutes=16), "Inadmissible"),
     (replace(WAITING, reason="Inadmissible", since=None), timedelta(minutes=5), None),
     (WAITING, timedelta(days=2), None)],
)
def test_judge_fails_a_run_that_can_never_be_admitted(info: QueueInfo, waited: timedelta, expected: str | None) -> None:
    run = {**record("queued"), "queue": {"since": runs.rfc3339(T0)}}
    verdict = judge(run, waiting(info), now=T0 + waited, grace=GRACE, launch_grace=LAUNCH_GRACE)
    assert (verdict[0] if verdict else None) == expected
