"""Runs that say where they wait: the Kubernetes launcher reads the Kueue Workload of a suspended
Job (from the local API server, which serves Workloads and Kueue's visibility API), and the
reconciler moves the run queued → running → queued (Preempted) → failed (ExceedsMaxQuota)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from k8s_api import FakeKubeApi
from support.specs import make_spec

from jobplane import runs
from jobplane.launcher.kubernetes import KubernetesLauncher
from jobplane.manifests import build_job
from jobplane.reconcile import reconcile
from jobplane.settings import Settings
from jobplane.store.files import FileStore

NS = "jobs"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings(store_url="gs://bucket/prefix", launcher="kubernetes", namespace=NS,
                    sink="http://broker/jobs/default", callback_key=b"key", kueue=True)
SOURCE = "/apis/v1/namespaces/jobs/pingsources/nightly"


@pytest.fixture
def kube() -> Iterator[FakeKubeApi]:
    with FakeKubeApi() as api:
        api.state.create("namespaces", "", {"metadata": {"name": NS}})
        yield api


@pytest.fixture
def launcher(kube: FakeKubeApi) -> KubernetesLauncher:
    return KubernetesLauncher(kube.api_client(), namespace=NS, attempts=2, sleep=lambda s: None)


def launched_run(store: FileStore, launcher: KubernetesLauncher, event_id: str, **spec: Any) -> dict[str, Any]:
    """A run whose Job the launch function created (suspended, for Kueue)."""
    full = make_spec(**spec)
    run = runs.new_run(spec=full, trigger={"type": "t", "source": SOURCE, "id": event_id, "subject": None},
                       requested_by="test", now=T0)
    runs.create_run(store, run)
    launcher.launch(build_job(full, run, settings=SETTINGS))
    return runs.update_run(store, run["id"], lambda r: runs.transition(r, "launched", now=T0))


def condition(kind: str, status: str, reason: str, message: str = "", at: str = "2026-01-01T12:00:05Z") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": at,
            "observedGeneration": 1}


def workload_for(kube: FakeKubeApi, job_name: str, *, priority: int = 100, conditions: list[dict[str, Any]]) -> str:
    """What Kueue's job controller makes for a Job: a Workload it owns, labelled with its uid."""
    job = kube.state.get("jobs", NS, job_name)
    name = f"job-{job_name}-{job['metadata']['uid'][:5]}"
    kube.state.create("workloads", NS, {
        "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload",
        "metadata": {"name": name, "labels": {"kueue.x-k8s.io/job-uid": job["metadata"]["uid"]},
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name,
                                          "uid": job["metadata"]["uid"], "controller": True}]},
        "spec": {"queueName": job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"], "priority": priority,
                 "active": True, "podSets": [{"name": "main", "count": 1, "template": job["spec"]["template"]}]},
        "status": {"conditions": conditions},
    })
    return name


def set_conditions(kube: FakeKubeApi, workload: str, conditions: list[dict[str, Any]], **extra: Any) -> None:
    kube.state.patch("workloads", NS, workload, {"status": {"conditions": conditions, **extra}}, status_only=True)


def suspend(kube: FakeKubeApi, job: str, value: bool) -> None:
    kube.state.patch("jobs", NS, job, {"spec": {"suspend": value}})


WAITING = [condition("QuotaReserved", "False", "WaitingForQuota",
                     "couldn't assign flavors to pod set main: insufficient quota for nvidia.com/gpu in flavor jobplane-gpu")]


def test_a_run_waits_queued_with_kueues_reason_queue_and_position_then_runs_when_admitted(
    kube: FakeKubeApi, launcher: KubernetesLauncher, tmp_path: Path
) -> None:
    store = FileStore(tmp_path)
    first, second = (launched_run(store, launcher, e, resources={"gpus": 1}) for e in ("a", "b"))
    reconcile(store, launcher, now=T0 + timedelta(seconds=10))
    before = runs.get_run(store, first["id"])
    assert (before["state"], before["reason"]) == ("queued", "Suspended")  # no Workload yet

    wl_first = workload_for(kube, first["id"], priority=100, conditions=WAITING)
    workload_for(kube, second["id"], priority=1000, conditions=WAITING)
    report = reconcile(store, launcher, now=T0 + timedelta(seconds=20))

    assert report.moved == {first["id"]: "queued", second["id"]: "queued"}
    waiting = runs.get_run(store, first["id"])
    assert (waiting["state"], waiting["reason"]) == ("queued", "WaitingForQuota")
    assert "insufficient quota for nvidia.com/gpu" in waiting["message"]
    assert waiting["queue"]["name"] == "training" and waiting["queue"]["since"]
    assert waiting["queue"]["position"] == 1  # behind the high-priority one
    assert runs.get_run(store, second["id"])["queue"]["position"] == 0

    set_conditions(kube, wl_first, [condition("QuotaReserved", "True", "QuotaReserved"),
                                    condition("Admitted", "True", "Admitted")],
                   admission={"clusterQueue": "jobplane-training"})
    suspend(kube, first["id"], False)
    reconcile(store, launcher, now=T0 + timedelta(seconds=30))
    running = runs.get_run(store, first["id"])
    assert (running["state"], running["reason"], running["startedAt"]) == ("running", None, "2026-01-01T12:00:30.000Z")


def test_a_preempted_run_goes_back_to_queued_without_a_failed_attempt(
    kube: FakeKubeApi, launcher: KubernetesLauncher, tmp_path: Path
) -> None:
    store = FileStore(tmp_path)
    run = launched_run(store, launcher, "a", priority="low", resources={"gpus": 1})
    wl = workload_for(kube, run["id"], priority=10, conditions=[condition("Admitted", "True", "Admitted")])
    suspend(kube, run["id"], False)
    reconcile(store, launcher, now=T0 + timedelta(seconds=10))
    runs.update_run(store, run["id"], lambda r: runs.apply_event(
        r, type="dev.jobplane.run.progress", data={"seq": 1, "progress": 40, "phase": "training"}, now=T0))

    set_conditions(kube, wl, [
        condition("Evicted", "True", "Preempted", "Preempted to accommodate a workload (UID: x) due to reclamation within the cohort"),
        condition("Preempted", "True", "InCohortReclamation", "Preempted to accommodate a workload"),
        condition("QuotaReserved", "False", "Pending", "Preempted"),
        condition("Admitted", "False", "NoReservation", "The workload has no reservation"),
    ])
    suspend(kube, run["id"], True)
    report = reconcile(store, launcher, now=T0 + timedelta(seconds=20))

    requeued = runs.get_run(store, run["id"])
    assert report.failed == {}
    assert (requeued["state"], requeued["reason"], requeued["preemptions"]) == ("queued", "Preempted", 1)
    assert requeued["progress"] == 40 and "InCohortReclamation" in requeued["message"]
    assert requeued["queue"]["name"] == "training-batch"


def test_a_run_that_can_never_be_admitted_fails_with_kueues_reason_and_its_job_is_deleted(
    kube: FakeKubeApi, launcher: KubernetesLauncher, tmp_path: Path
) -> None:
    store = FileStore(tmp_path)
    run = launched_run(store, launcher, "a", resources={"gpus": 16})
    workload_for(kube, run["id"], conditions=[condition(
        "QuotaReserved", "False", "ExceedsMaxQuota",
        "couldn't assign flavors to pod set main: insufficient quota for nvidia.com/gpu in flavor jobplane-gpu, "
        "previously considered podsets requests (0) + current podset request (16) > maximum capacity (8)")])

    report = reconcile(store, launcher, now=T0 + timedelta(seconds=10))

    assert report.failed == {run["id"]: "ExceedsMaxQuota"}
    failed = runs.get_run(store, run["id"])
    assert failed["state"] == "failed" and "maximum capacity (8)" in failed["message"]
    assert launcher.describe(run["id"]).state in ("missing",)


def test_without_the_visibility_api_a_queued_run_has_no_position(
    kube: FakeKubeApi, launcher: KubernetesLauncher, tmp_path: Path
) -> None:
    kube._server.visibility = False
    store = FileStore(tmp_path)
    run = launched_run(store, launcher, "a")
    workload_for(kube, run["id"], conditions=WAITING)
    status = launcher.describe(run["id"])
    assert status.state == "queued" and status.queue is not None
    assert (status.queue.reason, status.queue.position) == ("WaitingForQuota", None)
    reconcile(store, launcher, now=T0 + timedelta(seconds=10))
    assert runs.get_run(store, run["id"])["queue"]["position"] is None
