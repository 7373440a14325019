"""Where a run waits: the queueing policy's names, and a Kueue Workload read as a run state (pure).

The policy itself is Kueue's objects in ``knative/components/kueue`` (docs/deploy.md, "Queues
and priorities"); this module only knows which LocalQueue a Job goes to, and what a Workload's
conditions (``kueue.x-k8s.io/v1beta2``) say about the run whose Job it holds:

- no Workload yet, or ``QuotaReserved`` false: ``queued``, with the condition's reason
  (``Pending``, ``WaitingForQuota``, ``NoMatchingFlavor``, ``Inadmissible``…);
- ``Evicted`` true (``Preempted``, ``PodsReadyTimeout``…): ``queued`` again, with that reason;
- ``Admitted`` true (and not being evicted): ``admitted`` (the Job's pods decide the rest);
- ``ExceedsMaxQuota`` (the Job asks for more than its queue and cohort could ever give) or a
  deactivated Workload (``spec.active: false``): ``hopeless``, the run fails with that reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

FANOUT_SOURCE: Final = "/jobplane/launch/fanout"
"""The trigger source of the runs a fan-out spec (the weekly retrain-all) requests, one per bot."""
BATCH_PRIORITY: Final = "low"
"""The priority of the weekly batch: fan-out runs and low specs."""
LOCAL_QUEUES: Final[dict[str, str]] = {"training": "training", "kb-index": "kb-index", "bot-test": "bot-test"}
"""Kueue LocalQueue per job type, in the Jobs' namespace (training at the batch priority: below)."""
BATCH_QUEUE: Final = "training-batch"

REASON_PREEMPTED: Final = "Preempted"
REASON_PENDING: Final = "Pending"
REASON_SUSPENDED: Final = "Suspended"
"""The Job is suspended and Kueue has not made its Workload yet (or is not installed)."""
REASON_WAITING: Final = "WaitingForQuota"
REASON_WAITING_PREEMPTED: Final = "WaitingForPreemptedWorkloads"
REASON_NO_FLAVOR: Final = "NoMatchingFlavor"
REASON_EXCEEDS: Final = "ExceedsMaxQuota"
REASON_INADMISSIBLE: Final = "Inadmissible"
REASON_DEACTIVATED: Final = "Deactivated"
HOPELESS: Final = frozenset({REASON_EXCEEDS, REASON_DEACTIVATED})
"""Reasons that no amount of waiting changes: the run fails with them."""
INADMISSIBLE_GRACE: Final = timedelta(minutes=15)
"""How long a run may wait ``Inadmissible`` (its LocalQueue or ClusterQueue missing or stopped:
an operator may fix it) before it fails with that reason instead of waiting for ever."""

Verdict = Literal["queued", "admitted", "hopeless"]


def effective_priority(priority: str, *, trigger_source: str | None) -> str:
    """The priority a run's Job gets: the weekly batch's runs (requested by a fan-out) are
    ``low`` whatever their bot's spec says; others keep the spec's."""
    return BATCH_PRIORITY if trigger_source == FANOUT_SOURCE else priority


def local_queue(job_type: str, priority: str) -> str:
    """The Kueue LocalQueue of a Job: training at the batch priority goes to the batch queue."""
    if job_type == "training" and priority == BATCH_PRIORITY:
        return BATCH_QUEUE
    return LOCAL_QUEUES.get(job_type, job_type)


@dataclass(frozen=True)
class QueueInfo:
    """What a run's record says while its Job waits (``run["queue"]``)."""

    verdict: Verdict
    reason: str
    message: str | None = None
    queue: str | None = None
    """The LocalQueue."""
    cluster_queue: str | None = None
    since: str | None = None
    """RFC 3339: when this wait began (the Workload's creation, or its latest eviction)."""
    position: int | None = None
    """Position in the LocalQueue (from Kueue's visibility API; None when not served)."""

    def record(self) -> dict[str, Any]:
        """The ``queue`` object of the run record."""
        return {"name": self.queue, "clusterQueue": self.cluster_queue, "since": self.since,
                "position": self.position}


def suspended(queue: str | None, *, since: str | None) -> QueueInfo:
    """A suspended Job with no Workload (yet)."""
    return QueueInfo("queued", REASON_SUSPENDED, "the Job is suspended; no Kueue Workload holds it yet",
                     queue=queue, since=since)


def from_workload(workload: Mapping[str, Any], *, position: int | None = None) -> QueueInfo:
    """A Kueue v1beta2 Workload → where its run stands."""
    meta, spec, status = (workload.get(k) or {} for k in ("metadata", "spec", "status"))
    conds = {str(c.get("type")): c for c in status.get("conditions") or []}
    queue, cq = spec.get("queueName"), (status.get("admission") or {}).get("clusterQueue")
    since = str(meta.get("creationTimestamp")) if meta.get("creationTimestamp") else None

    def info(verdict: Verdict, reason: str, message: str | None, *, at: str | None = since) -> QueueInfo:
        return QueueInfo(verdict, reason, message, queue=queue, cluster_queue=cq, since=at, position=position)

    evicted = _true(conds, "Evicted")
    if spec.get("active") is False:
        deactivated = conds.get("Evicted") or {}
        return info("hopeless", REASON_DEACTIVATED, deactivated.get("message") or "the Workload was deactivated")
    if _true(conds, "Admitted") and evicted is None:
        return info("admitted", "Admitted", (conds["Admitted"]).get("message"))
    if evicted is not None:
        why = str(evicted.get("reason") or "Evicted")
        how = _true(conds, "Preempted")
        detail = f" ({how.get('reason')}: {how.get('message')})" if how else ""
        waiting = _waiting(conds)
        text = f"{evicted.get('message') or why}{detail}" + (f"; now {waiting[1]}" if waiting[1] else "")
        return info("queued", why, text, at=evicted.get("lastTransitionTime") or since)
    reason, message = _waiting(conds)
    if reason in HOPELESS:
        return info("hopeless", reason, message)
    return info("queued", reason, message)


def _waiting(conds: Mapping[str, Mapping[str, Any]]) -> tuple[str, str | None]:
    """The reason and message of a Workload that has no quota: ``QuotaReserved`` false, else
    ``Admitted`` false with quota (admission checks), else ``Pending`` (not evaluated yet)."""
    reserved = conds.get("QuotaReserved")
    if reserved is not None and reserved.get("status") != "True":
        return str(reserved.get("reason") or REASON_PENDING), reserved.get("message")
    admitted = conds.get("Admitted")
    if reserved is not None and admitted is not None and admitted.get("status") != "True":
        return str(admitted.get("reason") or REASON_PENDING), admitted.get("message")
    return REASON_PENDING, "Kueue has not evaluated the Workload yet"


def _true(conds: Mapping[str, Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    cond = conds.get(kind)
    return cond if cond is not None and cond.get("status") == "True" else None


def gives_up(info: QueueInfo, *, now: datetime, waited_since: datetime | None) -> bool:
    """Whether a run waiting so must fail now: a hopeless Workload, or ``Inadmissible`` for
    longer than ``INADMISSIBLE_GRACE``."""
    if info.verdict == "hopeless":
        return True
    return (info.reason == REASON_INADMISSIBLE and waited_since is not None
            and now - waited_since >= INADMISSIBLE_GRACE)


def owner_job(workload: Mapping[str, Any]) -> str | None:
    """The name of the batch/v1 Job that owns the Workload."""
    for ref in (workload.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Job" and str(ref.get("apiVersion", "")).startswith("batch/"):
            return str(ref.get("name"))
    return None
