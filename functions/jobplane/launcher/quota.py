"""Kueue's admission, simulated for the embedded plane, from the very objects in
``knative/components/kueue`` (ResourceFlavors, ClusterQueues, LocalQueues, WorkloadPriorityClasses).

What it does, as Kueue's classical admission does it:

- A Job waits in its LocalQueue's ClusterQueue until a flavor has quota for all its requests.
  Flavors are tried in the ClusterQueue's order; a flavor whose ``nodeTaints`` the Job's pods do
  not tolerate is skipped (so CPU-only Jobs never land on the GPU flavor).
- Quota is the ClusterQueue's ``nominalQuota``; a queue with a ``cohortName`` may borrow what
  the cohort's other queues leave idle (up to its ``borrowingLimit``).
- Waiting Jobs are admitted highest priority first, then oldest (``BestEffortFIFO``: one that
  does not fit does not block the ones behind it).
- ``reclaimWithinCohort``: a waiting Job that fits its queue's nominal quota, which a queue of
  the cohort borrowed, evicts borrowing Jobs (lower priority for ``LowerPriority``; any for
  ``Any``), lowest priority and newest first, until it fits. ``withinClusterQueue`` and
  ``borrowWithinCohort`` other than ``Never`` are not simulated (the shipped policy uses Never).
- A Job asking for more than its queue could ever get is ``ExceedsMaxQuota``; one whose
  LocalQueue does not exist is ``Inadmissible``.

Pure bookkeeping: the launcher calls ``submit``/``release`` and acts on what ``schedule`` says.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import yaml

from .. import queueing as q

KIND_FLAVOR: Final = "ResourceFlavor"
KIND_CLUSTER_QUEUE: Final = "ClusterQueue"
KIND_LOCAL_QUEUE: Final = "LocalQueue"
KIND_PRIORITY: Final = "WorkloadPriorityClass"
EVALUATED_EFFECTS: Final = frozenset({"NoSchedule", "NoExecute"})
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIX: Final[dict[str, Decimal]] = {
    "": Decimal(1), "m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9),
    "T": Decimal(10**12), "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
}

Resources = dict[str, Decimal]
_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML was built with it (several times faster), else PyYAML's."""


def quantity(value: Any) -> Decimal:
    """A Kubernetes quantity (``"500m"``, ``"4Gi"``, ``8``) as a number."""
    m = _QUANTITY.match(str(value).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return Decimal(m.group(1)) * _SUFFIX[m.group(2)]


@dataclass(frozen=True)
class Flavor:
    name: str
    taints: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class ClusterQueue:
    name: str
    cohort: str | None
    covered: frozenset[str]
    flavors: tuple[tuple[str, Mapping[str, Decimal]], ...]
    """(flavor, nominal quota per resource), in the order Kueue tries them."""
    borrowing_limit: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    reclaim: str = "Never"


@dataclass(frozen=True)
class Policy:
    flavors: Mapping[str, Flavor]
    cluster_queues: Mapping[str, ClusterQueue]
    local_queues: Mapping[str, str]
    """LocalQueue → ClusterQueue."""
    priorities: Mapping[str, int]
    """WorkloadPriorityClass → value."""

    def priority(self, name: str | None) -> int:
        return self.priorities.get(name or "", 0)


def load_policy(directory: Path) -> Policy:
    """The policy in a directory of Kueue manifests (``knative/components/kueue``)."""
    docs: list[Mapping[str, Any]] = []
    for path in sorted(Path(directory).glob("*.yaml")):
        docs += [d for d in yaml.load_all(path.read_text(), Loader=_LOADER) if isinstance(d, Mapping)]
    return policy_of(docs)


def policy_of(resources: Iterable[Mapping[str, Any]]) -> Policy:
    flavors, cqs, lqs, prios = {}, {}, {}, {}
    for r in resources:
        kind, name, spec = r.get("kind"), str((r.get("metadata") or {}).get("name")), r.get("spec") or {}
        if kind == KIND_FLAVOR:
            flavors[name] = Flavor(name, tuple(spec.get("nodeTaints") or ()))
        elif kind == KIND_CLUSTER_QUEUE:
            cqs[name] = _cluster_queue(name, spec)
        elif kind == KIND_LOCAL_QUEUE:
            lqs[name] = str(spec.get("clusterQueue"))
        elif kind == KIND_PRIORITY:
            prios[name] = int(r.get("value") or 0)
    return Policy(flavors, cqs, lqs, prios)


def _cluster_queue(name: str, spec: Mapping[str, Any]) -> ClusterQueue:
    covered: set[str] = set()
    flavors: list[tuple[str, Mapping[str, Decimal]]] = []
    limits: dict[tuple[str, str], Decimal] = {}
    for group in spec.get("resourceGroups") or []:
        covered |= set(group.get("coveredResources") or [])
        for f in group.get("flavors") or []:
            nominal = {str(r["name"]): quantity(r.get("nominalQuota", 0)) for r in f.get("resources") or []}
            flavors.append((str(f["name"]), nominal))
            for r in f.get("resources") or []:
                if r.get("borrowingLimit") is not None:
                    limits[(str(f["name"]), str(r["name"]))] = quantity(r["borrowingLimit"])
    reclaim = str((spec.get("preemption") or {}).get("reclaimWithinCohort") or "Never")
    return ClusterQueue(name, spec.get("cohortName") or None, frozenset(covered), tuple(flavors), limits, reclaim)


# --- a Job's demand ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Demand:
    """What a Job asks Kueue for: its queue, priority, resource requests and tolerations."""

    queue: str
    priority: str
    requests: Mapping[str, Decimal]
    tolerations: tuple[Mapping[str, Any], ...] = ()


def demand_of(job: Mapping[str, Any], *, job_type: str, priority: str) -> Demand:
    """A Job manifest's demand: its LocalQueue label (else the one the builder would name),
    the pod's requests (``requests``, else ``limits``) summed over containers × parallelism."""
    meta, spec = job.get("metadata") or {}, job.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    queue = (meta.get("labels") or {}).get("kueue.x-k8s.io/queue-name") or q.local_queue(job_type, priority)
    count = int(spec.get("parallelism") or 1)
    total: Resources = {}
    for container in pod.get("containers") or []:
        res = container.get("resources") or {}
        for name, value in {**(res.get("limits") or {}), **(res.get("requests") or {})}.items():
            total[name] = total.get(name, Decimal(0)) + quantity(value) * count
    return Demand(str(queue), priority, total, tuple(pod.get("tolerations") or ()))


def tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Kubernetes' toleration match (effects Kueue ignores pass)."""
    if taint.get("effect") not in EVALUATED_EFFECTS:
        return True
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if not t.get("key"):
            if t.get("operator") == "Exists":
                return True
            continue
        if t.get("key") != taint.get("key"):
            continue
        if t.get("operator", "Equal") == "Exists" or str(t.get("value", "")) == str(taint.get("value", "")):
            return True
    return False


# --- the simulation ---------------------------------------------------------------------------


@dataclass
class _Workload:
    name: str
    demand: Demand
    cq: str | None
    order: int
    reason: str = q.REASON_PENDING
    message: str | None = None
    flavor: str | None = None
    evicting: bool = False


@dataclass
class Decision:
    """What one ``schedule`` pass decided: Jobs to start, Jobs to evict (the launcher stops
    them and calls ``requeue`` once they are down)."""

    admitted: list[str] = field(default_factory=list)
    evict: list[str] = field(default_factory=list)


class Quota:
    """Admitted and waiting Jobs under a ``Policy`` (not thread-safe: the launcher's lock)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._pending: dict[str, _Workload] = {}
        self._admitted: dict[str, _Workload] = {}
        self._seq = itertools.count()
        self._usage: dict[tuple[str | None, str | None, str], Decimal] = {}
        """(ClusterQueue, flavor, resource) → what its admitted Jobs use."""
        self._positions: dict[str, int] | None = None
        """Position of each waiting Job in its LocalQueue; None: to be computed again."""

    def submit(self, name: str, demand: Demand, *, reason: str = q.REASON_PENDING) -> None:
        """A Job waits for quota (a no-op for one known already)."""
        if name in self._pending or name in self._admitted:
            return
        cq = self.policy.local_queues.get(demand.queue)
        self._pending[name] = _Workload(name, demand, cq, next(self._seq), reason)
        self._positions = None

    def hold(self, name: str, demand: Demand) -> bool:
        """Count a Job already running as admitted (a recovered one) on the first flavor that
        fits its demand; False when none does (it is counted on the first tolerated flavor)."""
        cq = self.policy.local_queues.get(demand.queue)
        w = _Workload(name, demand, cq, next(self._seq))
        w.flavor = self._fit(w) or next(iter(self._flavors(w)), None)
        self._admit(w)
        return w.flavor is not None

    def release(self, name: str) -> None:
        """The Job ended or was deleted: its quota is free."""
        self._pending.pop(name, None)
        self._unadmit(name)
        self._positions = None

    def requeue(self, name: str) -> None:
        """An evicted Job is down: it waits again, reason ``Preempted``, in its old place."""
        w = self._unadmit(name)
        if w is not None:
            w.flavor, w.evicting, w.reason = None, False, q.REASON_PREEMPTED
            w.message = "evicted to give its quota back to the queue that lent it (reclaimWithinCohort)"
            self._pending[name] = w
            self._positions = None

    def waiting(self, name: str) -> q.QueueInfo | None:
        """Where a waiting Job stands (None when it is not waiting)."""
        w = self._pending.get(name)
        if w is None:
            return None
        if self._positions is None:
            counts: dict[str, int] = {}
            self._positions = {}
            for p in self._ordered():
                self._positions[p.name] = counts.get(p.demand.queue, 0)
                counts[p.demand.queue] = self._positions[p.name] + 1
        verdict: q.Verdict = "hopeless" if w.reason in (*q.HOPELESS, q.REASON_NO_FLAVOR) else "queued"
        return q.QueueInfo(verdict, w.reason, w.message, queue=w.demand.queue, cluster_queue=w.cq,
                           position=self._positions[name])

    def schedule(self) -> Decision:
        """Admit what fits, in priority then arrival order; evict borrowers for a queue that
        reclaims its nominal quota. Within one pass usage only grows, so a Job shaped like one
        that did not fit (same queue, requests, tolerations) does not fit either: it is told
        the same without the arithmetic."""
        decision = Decision()
        self._positions = None
        unfit: dict[tuple[Any, ...], tuple[str, str | None]] = {}
        for w in self._ordered():
            shape = (w.cq, tuple(sorted(w.demand.requests.items())), repr(w.demand.tolerations))
            if shape in unfit:
                if w.reason != q.REASON_PREEMPTED or unfit[shape][0] in (*q.HOPELESS, q.REASON_NO_FLAVOR):
                    w.reason, w.message = unfit[shape]
                continue
            if w.cq is None or w.cq not in self.policy.cluster_queues:
                w.reason, w.message = q.REASON_INADMISSIBLE, f"LocalQueue {w.demand.queue} does not exist"
                continue
            flavor = self._fit(w)
            if flavor is not None:
                w.flavor, w.reason, w.message = flavor, "Admitted", None
                del self._pending[w.name]
                self._admit(w)
                decision.admitted.append(w.name)
                continue
            reason, message = self._why_not(w, decision)
            unfit[shape] = (reason, message)
            if w.reason != q.REASON_PREEMPTED or reason in (*q.HOPELESS, q.REASON_NO_FLAVOR):
                w.reason, w.message = reason, message  # a preempted Job says so until admitted
        return decision

    def _why_not(self, w: _Workload, decision: Decision) -> tuple[str, str | None]:
        """Why a Job does not fit now; starts evicting borrowers when its queue reclaims."""
        if not self._flavors(w):
            return q.REASON_NO_FLAVOR, (f"no flavor of ClusterQueue {w.cq} provides {self._str(w.demand.requests)} "
                                        "to Jobs tolerating its taints")
        if not any(self._could_ever_fit(w, f) for f in self._flavors(w)):
            return q.REASON_EXCEEDS, f"{self._str(w.demand.requests)} exceeds what ClusterQueue {w.cq} could ever admit"
        victims = self._reclaim(w)
        for v in victims:
            v.evicting = True
        decision.evict += [v.name for v in victims]
        if victims:
            return q.REASON_WAITING_PREEMPTED, "waiting for the Jobs it preempted to stop"
        return q.REASON_WAITING, "insufficient quota"

    # --- quota arithmetic ---

    def _ordered(self) -> list[_Workload]:
        return sorted(self._pending.values(), key=lambda w: (-self.policy.priority(w.demand.priority), w.order))

    def _evicting(self) -> bool:
        return any(w.evicting for w in self._admitted.values())

    def _flavors(self, w: _Workload) -> list[str]:
        """The ClusterQueue's flavors the Job may use: tolerated taints, covered resources."""
        cq = self.policy.cluster_queues.get(str(w.cq))
        if cq is None or any(r not in cq.covered for r, v in w.demand.requests.items() if v > 0):
            return []
        found = []
        for name, _nominal in cq.flavors:
            flavor = self.policy.flavors.get(name, Flavor(name))
            if all(tolerates(w.demand.tolerations, t) for t in flavor.taints):
                found.append(name)
        return found

    def _fit(self, w: _Workload) -> str | None:
        for flavor in self._flavors(w):
            if all(self._room(w, flavor, r) >= v for r, v in w.demand.requests.items() if v > 0):
                return flavor
        return None

    def _room(self, w: _Workload, flavor: str, resource: str) -> Decimal:
        """Free quota for the Job's queue: its own unused nominal quota when alone; in a cohort,
        what the cohort's queues leave unused (what it lent and others borrowed is not free),
        within its ``borrowingLimit``."""
        cq = self.policy.cluster_queues[str(w.cq)]
        own = self._nominal(cq, flavor, resource) - self._used(cq.name, flavor, resource)
        if cq.cohort is None:
            return own
        members = self._cohort(cq.cohort)
        cohort_free = sum((self._nominal(m, flavor, resource) - self._used(m.name, flavor, resource) for m in members),
                          Decimal(0))
        limit = cq.borrowing_limit.get((flavor, resource))
        room = cohort_free
        if limit is not None:
            room = min(room, self._nominal(cq, flavor, resource) + limit - self._used(cq.name, flavor, resource))
        return room

    def _could_ever_fit(self, w: _Workload, flavor: str) -> bool:
        cq = self.policy.cluster_queues[str(w.cq)]
        for resource, value in w.demand.requests.items():
            if value <= 0:
                continue
            most = self._nominal(cq, flavor, resource)
            if cq.cohort is not None:
                others = sum((self._nominal(m, flavor, resource) for m in self._cohort(cq.cohort) if m is not cq),
                             Decimal(0))
                limit = cq.borrowing_limit.get((flavor, resource))
                most += others if limit is None else min(others, limit)
            if value > most:
                return False
        return True

    def _reclaim(self, w: _Workload) -> list[_Workload]:
        """Borrowing Jobs of the cohort to evict so that ``w`` fits its queue's nominal quota."""
        cq = self.policy.cluster_queues[str(w.cq)]
        if cq.reclaim == "Never" or cq.cohort is None or self._evicting():
            return []
        mine = self.policy.priority(w.demand.priority)
        for flavor in self._flavors(w):
            needs = {r: v for r, v in w.demand.requests.items() if v > 0}
            if any(self._nominal(cq, flavor, r) - self._used(cq.name, flavor, r) < v for r, v in needs.items()):
                continue  # reclaiming only gives a queue its own nominal quota
            candidates = [a for a in self._admitted.values() if a.flavor == flavor and a.cq != cq.name
                          and self._borrowing(a, flavor)
                          and (cq.reclaim == "Any" or self.policy.priority(a.demand.priority) < mine)]
            candidates.sort(key=lambda a: (self.policy.priority(a.demand.priority), -a.order))
            chosen: list[_Workload] = []
            for victim in candidates:
                if all(self._room(w, flavor, r) + self._freed(chosen, flavor, r) >= v for r, v in needs.items()):
                    break
                chosen.append(victim)
            if chosen and all(self._room(w, flavor, r) + self._freed(chosen, flavor, r) >= v for r, v in needs.items()):
                return chosen
        return []

    def _borrowing(self, a: _Workload, flavor: str) -> bool:
        cq = self.policy.cluster_queues[str(a.cq)]
        return any(self._used(cq.name, flavor, r) > self._nominal(cq, flavor, r) for r in a.demand.requests)

    @staticmethod
    def _freed(chosen: Sequence[_Workload], flavor: str, resource: str) -> Decimal:
        return sum((v.demand.requests.get(resource, Decimal(0)) for v in chosen if v.flavor == flavor), Decimal(0))

    def _cohort(self, cohort: str) -> list[ClusterQueue]:
        return [m for m in self.policy.cluster_queues.values() if m.cohort == cohort]

    @staticmethod
    def _nominal(cq: ClusterQueue, flavor: str, resource: str) -> Decimal:
        for name, nominal in cq.flavors:
            if name == flavor:
                return nominal.get(resource, Decimal(0))
        return Decimal(0)

    def _used(self, cq: str, flavor: str, resource: str) -> Decimal:
        return self._usage.get((cq, flavor, resource), Decimal(0))

    def _admit(self, w: _Workload) -> None:
        self._admitted[w.name] = w
        for resource, value in w.demand.requests.items():
            key = (w.cq, w.flavor, resource)
            self._usage[key] = self._usage.get(key, Decimal(0)) + value

    def _unadmit(self, name: str) -> _Workload | None:
        w = self._admitted.pop(name, None)
        if w is not None:
            for resource, value in w.demand.requests.items():
                key = (w.cq, w.flavor, resource)
                self._usage[key] = self._usage.get(key, Decimal(0)) - value
        return w

    @staticmethod
    def _str(requests: Mapping[str, Decimal]) -> dict[str, str]:
        return {k: format(v.normalize(), "f") for k, v in requests.items()}
