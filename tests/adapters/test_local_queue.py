"""The embedded plane queues as Kueue would, by the policy in knative/components/kueue: local Jobs
wait for quota per flavor, are admitted by priority then arrival, the batch gives GPUs back to
interactive training, and nothing is lost (across a restart too)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobplane.conventions import LABEL_RUN_ID, LABEL_SPEC_ID, LABEL_TYPE
from jobplane.launcher.base import JobStatus
from jobplane.launcher.local import LocalLauncher
from jobplane.launcher.quota import Policy, load_policy

REPO = Path(__file__).resolve().parents[2]
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(REPO / "knative" / "components" / "kueue")


def gated_job(name: str, gates: Path, *, priority: str = "normal", cpu: str = "8", gpus: int = 0,
              job_type: str = "training") -> dict[str, Any]:
    """A Job that notes its start in ``gates/started`` and runs until ``gates/{name}`` exists."""
    script = (
        "import os, sys, time\n"
        f"open({str(gates / 'started')!r}, 'a').write({name!r} + chr(10))\n"
        f"while not os.path.exists({str(gates / name)!r}): time.sleep(0.02)\n"
    )
    limits: dict[str, str] = {"cpu": cpu, "memory": "1Gi"}
    pod: dict[str, Any] = {"restartPolicy": "Never", "priorityClassName": f"jobplane-{priority}",
                           "containers": [{"name": "trainer", "command": ["python", "-c", script],
                                           "resources": {"requests": dict(limits), "limits": limits}}]}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
        pod["tolerations"] = [GPU_TOLERATION]
    labels = {LABEL_RUN_ID: name, LABEL_SPEC_ID: "s1", LABEL_TYPE: job_type}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "jobs", "labels": labels},
            "spec": {"backoffLimit": 0, "template": {"spec": pod}}}


def started(gates: Path) -> list[str]:
    path = gates / "started"
    return path.read_text().split() if path.exists() else []


def wait_for(check: Any, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


@pytest.fixture
def gates(tmp_path: Path) -> Path:
    d = tmp_path / "gates"
    d.mkdir()
    return d


@pytest.fixture
def finished() -> list[JobStatus]:
    return []


@pytest.fixture
def launcher(tmp_path: Path, policy: Policy, finished: list[JobStatus]) -> Iterator[LocalLauncher]:
    lock = threading.Lock()

    def record(status: JobStatus) -> None:
        with lock:
            finished.append(status)

    launcher = LocalLauncher(tmp_path / "jobs", policy=policy, on_finished=record, restart_delay=0.01, grace_seconds=2)
    yield launcher
    launcher.close()


def release(gates: Path, *names: str) -> None:
    for name in names:
        (gates / name).touch()


def test_jobs_beyond_the_quota_wait_and_start_by_priority_then_arrival(launcher: LocalLauncher, gates: Path,
                                                                       finished: list[JobStatus]) -> None:
    # interactive training has 16 CPUs and borrows the CPU work's idle 16: four 8-CPU Jobs run
    first = [f"run-{i}" for i in range(4)]
    for name in first:
        assert launcher.launch(gated_job(name, gates)).state == "running"
    later = [("low-a", "low"), ("normal-a", "normal"), ("high-a", "high"), ("normal-b", "normal"), ("low-b", "low")]
    for name, priority in later:
        status = launcher.launch(gated_job(name, gates, priority=priority))
        assert status.state == "queued" and status.queue is not None
        assert status.queue.reason == "WaitingForQuota" and status.queue.since
    wait_for(lambda: len(started(gates)) == 4)
    positions = {n: launcher.describe(n).queue.position for n, _ in later}  # type: ignore[union-attr]
    assert positions == {"high-a": 0, "normal-a": 1, "normal-b": 2, "low-a": 0, "low-b": 1}  # per LocalQueue

    order = []
    for running in first + ["high-a", "normal-a", "normal-b", "low-a", "low-b"]:
        count = len(started(gates))
        release(gates, running)
        if len(order) < len(later):
            wait_for(lambda c=count: len(started(gates)) == c + 1)  # type: ignore[misc]
            order.append(started(gates)[-1])
    assert order == ["high-a", "normal-a", "normal-b", "low-a", "low-b"]
    wait_for(lambda: len(finished) == 9)
    assert sorted(s.name for s in finished) == sorted(first + [n for n, _ in later])
    assert all(s.state == "succeeded" for s in finished)


def test_interactive_training_takes_gpus_back_from_the_batch_and_the_batch_job_is_requeued_not_failed(
    launcher: LocalLauncher, gates: Path, finished: list[JobStatus]
) -> None:
    batch = [f"batch-{i}" for i in range(8)]  # the batch has no GPUs of its own: it borrows all 8
    for name in batch:
        assert launcher.launch(gated_job(name, gates, priority="low", cpu="1", gpus=1)).state == "running"
    wait_for(lambda: len(started(gates)) == 8)
    extra = launcher.launch(gated_job("batch-8", gates, priority="low", cpu="1", gpus=1))
    assert extra.state == "queued"

    launcher.launch(gated_job("interactive", gates, priority="normal", cpu="1", gpus=1))
    wait_for(lambda: "interactive" in started(gates))
    evicted = launcher.describe("batch-7")  # the newest admitted batch Job gives its GPU back
    assert evicted.state == "queued" and evicted.queue is not None
    assert evicted.queue.reason == "Preempted" and evicted.failed_pods == 0
    assert launcher.describe("batch-8").state == "queued"

    release(gates, *batch, "batch-8", "interactive")
    wait_for(lambda: len(finished) == 10)
    assert {s.name: s.state for s in finished} == {n: "succeeded" for n in [*batch, "batch-8", "interactive"]}
    assert started(gates).count("batch-7") == 2


def test_cpu_only_jobs_never_take_the_gpu_flavor_and_impossible_ones_say_so(launcher: LocalLauncher,
                                                                           gates: Path) -> None:
    for i in range(4):
        launcher.launch(gated_job(f"cpu-{i}", gates))
    waiting = launcher.launch(gated_job("cpu-4", gates))  # the GPU flavor's 64 CPUs are idle: still waits
    assert waiting.state == "queued" and waiting.queue is not None and waiting.queue.reason == "WaitingForQuota"
    huge = launcher.launch(gated_job("huge", gates, cpu="100"))
    assert huge.queue is not None and (huge.queue.verdict, huge.queue.reason) == ("hopeless", "ExceedsMaxQuota")
    gpu_test = launcher.launch(gated_job("gpu-test", gates, job_type="bot-test", cpu="1", gpus=1))
    assert gpu_test.queue is not None and gpu_test.queue.verdict == "hopeless"
    release(gates, "cpu-0", "cpu-1", "cpu-2", "cpu-3", "cpu-4")


def test_a_queued_job_stays_queued_across_a_restart_and_starts_when_quota_frees(
    tmp_path: Path, policy: Policy, gates: Path
) -> None:
    first = LocalLauncher(tmp_path / "jobs", policy=policy, restart_delay=0.01, grace_seconds=2)
    for i in range(4):
        first.launch(gated_job(f"run-{i}", gates))
    first.launch(gated_job("waiting", gates, priority="low"))
    wait_for(lambda: len(started(gates)) == 4)
    first.close(stop_jobs=False)

    again = LocalLauncher(tmp_path / "jobs", policy=policy, restart_delay=0.01, grace_seconds=2)
    try:
        states = {s.name: s.state for s in again.recover()}
        assert states == {"run-0": "running", "run-1": "running", "run-2": "running", "run-3": "running",
                          "waiting": "queued"}
        release(gates, "run-0")
        wait_for(lambda: "waiting" in started(gates))
        release(gates, "run-1", "run-2", "run-3", "waiting")
        for name in ("run-0", "run-1", "run-2", "run-3", "waiting"):
            assert again.wait(name, timeout=30).state == "succeeded"
        assert started(gates).count("run-0") == 1  # adopted, not started again
    finally:
        again.close()


def test_cancel_frees_a_queued_jobs_place_and_a_running_jobs_quota(launcher: LocalLauncher, gates: Path) -> None:
    for i in range(4):
        launcher.launch(gated_job(f"run-{i}", gates))
    launcher.launch(gated_job("queued-1", gates))
    launcher.launch(gated_job("queued-2", gates))
    launcher.cancel("queued-1")
    assert launcher.describe("queued-1").state == "missing"
    assert launcher.describe("queued-2").queue.position == 0  # type: ignore[union-attr]
    launcher.cancel("run-0")
    wait_for(lambda: "queued-2" in started(gates))
    release(gates, "run-1", "run-2", "run-3", "queued-2")
