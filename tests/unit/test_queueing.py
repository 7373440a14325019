"""A Kueue v1beta2 Workload, as the API server returns it, read as where its run waits (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobplane import queueing as q

CREATED = "2026-01-01T12:00:00Z"


def cond(kind: str, status: str, reason: str, message: str = "", at: str = "2026-01-01T12:00:05Z") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": at,
            "observedGeneration": 1}


def workload(*conditions: dict[str, Any], active: bool = True, admission: dict[str, Any] | None = None) -> dict[str, Any]:
    """Shaped as `kubectl get workload -o json` shows one Kueue made for a Job."""
    status: dict[str, Any] = {"conditions": list(conditions)}
    if admission:
        status["admission"] = admission
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload",
        "metadata": {"name": "job-train-bot-abc-1f2e3", "namespace": "jobplane", "creationTimestamp": CREATED,
                     "labels": {"kueue.x-k8s.io/job-uid": "6a1c"},
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "train-bot-abc",
                                          "uid": "6a1c", "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"active": active, "queueName": "training", "priority": 100,
                 "priorityClassRef": {"group": "kueue.x-k8s.io", "kind": "WorkloadPriorityClass", "name": "normal"},
                 "podSets": [{"name": "main", "count": 1, "template": {"spec": {"containers": []}}}]},
        "status": status,
    }


ADMITTED = {"clusterQueue": "jobplane-training", "podSetAssignments": [{"name": "main", "flavors": {"nvidia.com/gpu": "jobplane-gpu"}}]}
MAX_QUOTA = ("couldn't assign flavors to pod set main: insufficient quota for nvidia.com/gpu in flavor jobplane-gpu, "
             "previously considered podsets requests (0) + current podset request (16) > maximum capacity (8)")


@pytest.mark.parametrize(
    ("wl", "verdict", "reason", "since"),
    [
        (workload(), "queued", "Pending", CREATED),
        (workload(cond("QuotaReserved", "False", "Pending", "couldn't assign flavors")), "queued", "Pending", CREATED),
        (workload(cond("QuotaReserved", "False", "WaitingForQuota", "insufficient quota for cpu")),
         "queued", "WaitingForQuota", CREATED),
        (workload(cond("QuotaReserved", "False", "NoMatchingFlavor", "untolerated taint")), "queued", "NoMatchingFlavor", CREATED),
        (workload(cond("QuotaReserved", "False", "Inadmissible", "LocalQueue training doesn't exist")),
         "queued", "Inadmissible", CREATED),
        (workload(cond("QuotaReserved", "False", "ExceedsMaxQuota", MAX_QUOTA)), "hopeless", "ExceedsMaxQuota", CREATED),
        (workload(cond("QuotaReserved", "True", "QuotaReserved"), cond("Admitted", "False", "NoChecks", "waiting for checks"),
                  admission=ADMITTED), "queued", "NoChecks", CREATED),
        (workload(cond("QuotaReserved", "True", "QuotaReserved"), cond("Admitted", "True", "Admitted", "admitted by jobplane-training"),
                  admission=ADMITTED), "admitted", "Admitted", CREATED),
        (workload(cond("QuotaReserved", "True", "QuotaReserved"), cond("Admitted", "True", "Admitted"),
                  cond("Evicted", "True", "Preempted", "Preempted to accommodate a workload", at="2026-01-01T13:00:00Z"),
                  cond("Preempted", "True", "InCohortReclamation", "reclamation within the cohort"), admission=ADMITTED),
         "queued", "Preempted", "2026-01-01T13:00:00Z"),
        (workload(cond("Evicted", "True", "Preempted", "Preempted", at="2026-01-01T13:00:00Z"),
                  cond("QuotaReserved", "False", "WaitingForQuota", "insufficient quota"),
                  cond("Requeued", "True", "Preempted")), "queued", "Preempted", "2026-01-01T13:00:00Z"),
        (workload(cond("Evicted", "True", "PodsReadyTimeout", "Exceeded the PodsReady timeout", at="2026-01-01T13:00:00Z")),
         "queued", "PodsReadyTimeout", "2026-01-01T13:00:00Z"),
        (workload(cond("Evicted", "True", "Deactivated", "backoff limit exceeded"), active=False),
         "hopeless", "Deactivated", CREATED),
    ],
    ids=["new", "pending", "waiting-for-quota", "no-matching-flavor", "inadmissible", "exceeds-max-quota",
         "admission-checks", "admitted", "being-preempted", "preempted-and-waiting", "pods-ready-timeout", "deactivated"],
)
def test_a_workload_says_where_its_run_waits(wl: dict[str, Any], verdict: str, reason: str, since: str) -> None:
    info = q.from_workload(wl, position=3)
    assert (info.verdict, info.reason, info.since) == (verdict, reason, since)
    assert info.queue == "training" and info.position == 3


def test_the_message_says_how_a_run_was_preempted_and_what_it_waits_for_now() -> None:
    info = q.from_workload(workload(cond("Evicted", "True", "Preempted", "Preempted to accommodate a workload"),
                                    cond("Preempted", "True", "InCohortReclamation", "reclamation"),
                                    cond("QuotaReserved", "False", "WaitingForQuota", "insufficient quota for nvidia.com/gpu")))
    assert info.message == ("Preempted to accommodate a workload (InCohortReclamation: reclamation); "
                            "now insufficient quota for nvidia.com/gpu")


def test_the_admitting_cluster_queue_and_the_record_of_the_wait() -> None:
    info = q.from_workload(workload(cond("QuotaReserved", "True", "QuotaReserved"), cond("Admitted", "False", "NoChecks"),
                                    admission=ADMITTED), position=None)
    assert info.record() == {"name": "training", "clusterQueue": "jobplane-training", "since": CREATED, "position": None}


NOW = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reason", "verdict", "waited", "gives_up"),
    [("ExceedsMaxQuota", "hopeless", timedelta(0), True), ("Deactivated", "hopeless", timedelta(0), True),
     ("Inadmissible", "queued", timedelta(minutes=14), False), ("Inadmissible", "queued", timedelta(minutes=15), True),
     ("WaitingForQuota", "queued", timedelta(days=3), False), ("Preempted", "queued", timedelta(days=3), False)],
)
def test_only_a_hopeless_wait_or_a_long_inadmissible_one_fails_the_run(
    reason: str, verdict: q.Verdict, waited: timedelta, gives_up: bool
) -> None:
    assert q.gives_up(q.QueueInfo(verdict, reason), now=NOW, waited_since=NOW - waited) is gives_up


def test_the_job_that_owns_a_workload() -> None:
    assert q.owner_job(workload()) == "train-bot-abc"
    assert q.owner_job({"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p"}]}}) is None


@pytest.mark.parametrize(
    ("job_type", "priority", "source", "queue"),
    [("training", "normal", "/apis/v1/namespaces/jobplane/pingsources/x", "training"),
     ("training", "high", None, "training"),
     ("training", "low", None, "training-batch"),
     ("training", "high", q.FANOUT_SOURCE, "training-batch"),
     ("kb-index", "low", None, "kb-index"),
     ("bot-test", "normal", q.FANOUT_SOURCE, "bot-test")],
)
def test_the_local_queue_of_a_job_by_type_priority_and_trigger(job_type: str, priority: str, source: str | None,
                                                              queue: str) -> None:
    assert q.local_queue(job_type, q.effective_priority(priority, trigger_source=source)) == queue
