"""The queueing policy in docs/deploy.md ("Queues and priorities") is what the Kueue manifests say,
and what they say keeps the promises: CPU-only Jobs can never be admitted on a GPU flavor, only
a higher priority ever evicts, the batch evicts nothing and owns no quota."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from support.specs import make_spec

from jobplane import manifests, queueing
from jobplane.launcher import quota
from jobplane.settings import Settings

from . import kube

DOC = kube.REPO / "docs" / "deploy.md"
KUEUE = kube.REPO / "knative" / "components" / "kueue"
COLUMNS = ("Jobs", "LocalQueue", "ClusterQueue", "flavors, in order", "nominal quota", "withinClusterQueue",
           "reclaimWithinCohort", "borrowWithinCohort")
SETTINGS = Settings(store_url="gs://b/p", launcher="kubernetes", namespace="jobplane", sink="http://broker",
                    callback_key=b"k", kueue=True)
PARAMS = {"training": {}, "kb-index": {"articles": [{"id": "a", "title": "A", "text": "t"}]},
          "bot-test": {"tests": [{"text": "hi", "expectedIntent": "greet"}]}}


def documented() -> list[dict[str, str]]:
    """The rows of the policy table."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Queues and priorities"):]
    section = section[:section.index("\n## ", 1)]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert tuple(header) == COLUMNS
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[2:]]


def codes(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def resources() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(KUEUE.glob("*.yaml")):
        for doc in kube.load_all(path):
            if kube.is_resource(doc):
                found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


@pytest.fixture(scope="module")
def policy() -> quota.Policy:
    return quota.load_policy(KUEUE)


def nominal_of(cell: str) -> dict[str, dict[str, Decimal]]:
    """``jobplane-cpu`: 16 cpu, 64Gi memory; …`` → flavor → resource → amount; "none" → {}."""
    if cell.strip() == "none":
        return {}
    out: dict[str, dict[str, Decimal]] = {}
    for part in cell.split(";"):
        flavor, amounts = part.split(":", 1)
        out[codes(flavor)[0]] = {res: quota.quantity(n) for n, res in (a.split() for a in amounts.split(","))}
    return out


def test_every_cluster_queue_and_local_queue_is_in_the_table_as_the_manifests_say(policy: quota.Policy) -> None:
    rows = documented()
    crs = resources()
    assert {codes(r["ClusterQueue"])[0] for r in rows} == set(policy.cluster_queues)
    assert {q for r in rows for q in codes(r["LocalQueue"])} == set(policy.local_queues)
    for row in rows:
        name = codes(row["ClusterQueue"])[0]
        cq, spec = policy.cluster_queues[name], crs[f"ClusterQueue/{name}"]["spec"]
        for local in codes(row["LocalQueue"]):
            assert policy.local_queues[local] == name, local
        assert codes(row["flavors, in order"]) == [f for f, _ in cq.flavors], name
        nominal = {f: {r: v for r, v in amounts.items() if v} for f, amounts in cq.flavors}
        assert nominal_of(row["nominal quota"]) == {f: a for f, a in nominal.items() if a}, name
        preemption = spec["preemption"]
        assert codes(row["withinClusterQueue"]) == [preemption["withinClusterQueue"]], name
        assert codes(row["reclaimWithinCohort"]) == [preemption["reclaimWithinCohort"]], name
        assert codes(row["borrowWithinCohort"]) == [preemption["borrowWithinCohort"]["policy"]], name
        assert spec["cohortName"] == "jobplane"


RUN: dict[str, object] = {"id": "r-0123456789ab", "createdAt": "2026-12-06T00:00:00Z"}

@pytest.mark.parametrize("priority", ["high", "normal", "low"])
@pytest.mark.parametrize("job_type", sorted(PARAMS))
def test_no_cpu_only_job_can_be_admitted_on_a_gpu_flavor(policy: quota.Policy, job_type: str, priority: str) -> None:
    job = manifests.build_job(make_spec(type=job_type, priority=priority, resources={"gpus": 0},
                                        params={"botId": "test-bot", **PARAMS[job_type]}),
                              dict(RUN), settings=SETTINGS)
    demand = quota.demand_of(job, job_type=job_type, priority=priority)
    cq = policy.cluster_queues[policy.local_queues[demand.queue]]
    gpu_flavors = {f for f, nominal in cq.flavors if any(nominal.get(r, 0) for r in nominal)
                   and policy.flavors[f].taints}
    admissible = {f for f, _ in cq.flavors if all(quota.tolerates(demand.tolerations, t) for t in policy.flavors[f].taints)}
    assert "jobplane-gpu" not in admissible and not admissible & gpu_flavors
    assert admissible, "a CPU-only Job must have a flavor"


def test_gpu_jobs_tolerate_the_gpu_flavors_taint_and_every_gpu_quota_sits_behind_it(policy: quota.Policy) -> None:
    job = manifests.build_job(make_spec(resources={"gpus": 1}), dict(RUN), settings=SETTINGS)
    demand = quota.demand_of(job, job_type="training", priority="normal")
    for cq in policy.cluster_queues.values():
        for flavor, nominal in cq.flavors:
            if nominal.get(manifests.GPU_RESOURCE, 0):
                assert policy.flavors[flavor].taints, f"{cq.name}/{flavor}: GPU quota on an untainted flavor"
                assert all(quota.tolerates(demand.tolerations, t) for t in policy.flavors[flavor].taints)
    flavors = resources()
    assert "tolerations" not in flavors["ResourceFlavor/jobplane-gpu"]["spec"], "Kueue would add them to CPU Jobs"
    for flavor in ("jobplane-cpu", "jobplane-gpu"):
        assert flavors[f"ResourceFlavor/{flavor}"]["spec"]["nodeLabels"], flavor


def test_only_a_higher_priority_ever_evicts_and_the_batch_evicts_nothing() -> None:
    crs = resources()
    for name, cr in crs.items():
        if not name.startswith("ClusterQueue/"):
            continue
        preemption = cr["spec"]["preemption"]
        assert preemption["withinClusterQueue"] == "Never", name
        assert preemption["reclaimWithinCohort"] in ("Never", "LowerPriority"), name
        assert preemption["borrowWithinCohort"]["policy"] == "Never", name
    batch = crs["ClusterQueue/jobplane-batch"]["spec"]
    assert batch["preemption"]["reclaimWithinCohort"] == "Never"
    assert all(quota.quantity(r["nominalQuota"]) == 0
               for g in batch["resourceGroups"] for f in g["flavors"] for r in f["resources"])


def test_the_weekly_batchs_runs_queue_in_the_batch_at_low_priority() -> None:
    spec = make_spec(priority="normal", resources={"gpus": 1})
    run = {**RUN, "trigger": {"source": queueing.FANOUT_SOURCE}}
    job = manifests.build_job(spec, run, settings=SETTINGS)
    labels = job["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/queue-name"] == "training-batch"
    assert labels["kueue.x-k8s.io/priority-class"] == "low"
    assert job["spec"]["template"]["spec"]["priorityClassName"] == "jobplane-low"
    interactive = manifests.build_job(spec, dict(RUN), settings=SETTINGS)
    assert interactive["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "training"


def test_the_fan_out_source_is_the_launch_functions() -> None:
    from jobplane.handlers import launch

    assert launch.FANOUT_SOURCE == queueing.FANOUT_SOURCE


def test_priority_classes_never_preempt_pods_kueue_decides() -> None:
    base = kube.base_resources()
    for pc in kube.by_kind(base, "PriorityClass").values():
        assert pc["preemptionPolicy"] == "Never", pc["metadata"]["name"]
