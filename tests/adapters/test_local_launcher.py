"""The local launcher runs real Job manifests as real processes and judges them like Kubernetes."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from jobplane.conventions import EXIT_BAD_DATA, LABEL_RUN_ID, LABEL_SPEC_ID
from jobplane.launcher.base import JobStatus, Launcher
from jobplane.launcher.local import LocalLauncher, expand_refs, plan_job, rule_action


def make_job(name: str, script: str, **spec: Any) -> dict[str, Any]:
    """A batch/v1 Job shaped like manifests.build_job's, running ``python -c script``."""
    job_spec: dict[str, Any] = {
        "backoffLimit": 2,
        "podFailurePolicy": {
            "rules": [
                {"action": "FailJob", "onExitCodes": {"containerName": "trainer", "operator": "In", "values": [EXIT_BAD_DATA]}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "trainer",
                        "image": "ignored:latest",
                        "command": ["python", "-c"],
                        "args": [script],
                        "env": [
                            {"name": "JOBPLANE_RUN_ID", "value": name},
                            {"name": "JOBPLANE_SCRATCH", "value": "/scratch"},
                            {"name": "SECRET_FROM_REF", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y"}}},
                        ],
                    }
                ],
            }
        },
    }
    job_spec.update(spec)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "jobs", "labels": {LABEL_RUN_ID: name, LABEL_SPEC_ID: "s1"}},
        "spec": job_spec,
    }


def wait_gone(pid: int, timeout: float = 30.0) -> bool:
    """Whether process ``pid`` has ended (reaped or a zombie) within ``timeout``."""
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    return True


@pytest.fixture
def finished() -> list[JobStatus]:
    return []


@pytest.fixture
def launcher(tmp_path: Path, finished: list[JobStatus]) -> Iterator[LocalLauncher]:
    lock = threading.Lock()

    def record(status: JobStatus) -> None:
        with lock:
            finished.append(status)

    lw = LocalLauncher(tmp_path / "jobs", on_finished=record, restart_delay=0.0, grace_seconds=1.0)
    yield lw
    lw.close()


def test_implements_the_launcher_protocol(launcher: LocalLauncher) -> None:
    assert isinstance(launcher, Launcher)


def test_successful_job_runs_with_exactly_the_manifest_env(launcher: LocalLauncher, tmp_path: Path, finished: list[JobStatus]) -> None:
    script = "import json, os; print(json.dumps(dict(os.environ)))"
    status = launcher.launch(make_job("ok-1", script))
    assert status.created and status.state in ("queued", "running")
    done = launcher.wait("ok-1", timeout=30)
    assert done.state == "succeeded" and done.reason is None
    import json

    env = json.loads((tmp_path / "jobs" / "ok-1" / "attempt-1.log").read_text())
    job_dir = tmp_path / "jobs" / "ok-1"
    assert env["JOBPLANE_RUN_ID"] == "ok-1"
    assert env["JOBPLANE_SCRATCH"] == str(job_dir / "scratch")
    assert env["HOME"] == str(job_dir / "home") and env["TMPDIR"] == str(job_dir / "tmp")
    assert "SECRET_FROM_REF" not in env
    assert set(env) - {"JOBPLANE_RUN_ID", "JOBPLANE_SCRATCH", "HOME", "TMPDIR", "PATH"} <= {"LC_CTYPE", "PWD"}
    assert [s.state for s in finished] == ["succeeded"]
    assert finished[0].labels[LABEL_RUN_ID] == "ok-1"


def test_crashing_job_is_retried_then_fails_with_backoff_limit_exceeded(launcher: LocalLauncher, tmp_path: Path) -> None:
    launcher.launch(make_job("crash-1", "import sys; print('boom'); sys.exit(1)", backoffLimit=2))
    done = launcher.wait("crash-1", timeout=30)
    assert done.state == "failed" and done.reason == "BackoffLimitExceeded"
    assert "boom" in (done.message or "") and done.failed_pods == 3
    logs = sorted(p.name for p in (tmp_path / "jobs" / "crash-1").glob("attempt-*.log"))
    assert logs == ["attempt-1.log", "attempt-2.log", "attempt-3.log"]


def test_crash_then_success_on_a_retry_succeeds(launcher: LocalLauncher, tmp_path: Path) -> None:
    marker = tmp_path / "tried-once"
    script = f"import os, sys, pathlib; p = pathlib.Path({str(marker)!r}); first = not p.exists(); p.touch(); sys.exit(1 if first else 0)"
    launcher.launch(make_job("flaky-1", script))
    assert launcher.wait("flaky-1", timeout=30).state == "succeeded"


def test_bad_data_exit_code_fails_by_pod_failure_policy_without_retries(launcher: LocalLauncher, tmp_path: Path) -> None:
    launcher.launch(make_job("bad-1", f"import sys; sys.exit({EXIT_BAD_DATA})", backoffLimit=5))
    done = launcher.wait("bad-1", timeout=30)
    assert done.state == "failed" and done.reason == "PodFailurePolicy"
    assert f"exit code {EXIT_BAD_DATA}" in (done.message or "") and "rule at index 0" in (done.message or "")
    assert [p.name for p in (tmp_path / "jobs" / "bad-1").glob("attempt-*.log")] == ["attempt-1.log"]


def test_job_past_its_deadline_is_killed_with_deadline_exceeded(launcher: LocalLauncher, finished: list[JobStatus]) -> None:
    launcher.launch(make_job("slow-1", "import time; time.sleep(60)", activeDeadlineSeconds=1))
    done = launcher.wait("slow-1", timeout=30)
    assert done.state == "failed" and done.reason == "DeadlineExceeded"
    assert [s.reason for s in finished] == ["DeadlineExceeded"]


def test_cancel_kills_the_process_and_the_job_goes_missing(launcher: LocalLauncher, tmp_path: Path, finished: list[JobStatus]) -> None:
    pidfile = tmp_path / "pid"
    script = f"import os, time, pathlib; pathlib.Path({str(pidfile)!r}).write_text(str(os.getpid())); time.sleep(60)"
    launcher.launch(make_job("cancel-1", script))
    for _ in range(300):
        if pidfile.exists() and pidfile.read_text():
            break
        threading.Event().wait(0.05)
    launcher.cancel("cancel-1")  # signals and returns: the process ends soon after
    assert launcher.describe("cancel-1").state == "missing"
    assert wait_gone(int(pidfile.read_text()))
    assert finished == []
    launcher.cancel("cancel-1")  # a missing Job is not an error


def test_launching_the_same_name_again_returns_the_existing_job(launcher: LocalLauncher, tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    script = f"import pathlib; p = pathlib.Path({str(counter)!r}); p.open('a').write('x')"
    first = launcher.launch(make_job("dup-1", script))
    second = launcher.launch(make_job("dup-1", script))
    assert first.created and not second.created and second.name == "dup-1"
    launcher.wait("dup-1", timeout=30)
    third = launcher.launch(make_job("dup-1", script))
    assert not third.created and third.state == "succeeded"
    assert counter.read_text() == "x"


def test_list_filters_by_labels(launcher: LocalLauncher) -> None:
    launcher.launch(make_job("l-1", "pass"))
    launcher.launch(make_job("l-2", "pass"))
    assert {s.name for s in launcher.list({LABEL_SPEC_ID: "s1"})} == {"l-1", "l-2"}
    assert [s.name for s in launcher.list({LABEL_RUN_ID: "l-2"})] == ["l-2"]
    assert launcher.list({LABEL_SPEC_ID: "other"}) == []


def test_command_that_cannot_start_counts_as_a_failed_pod(launcher: LocalLauncher) -> None:
    job = make_job("nostart-1", "", backoffLimit=0)
    job["spec"]["template"]["spec"]["containers"][0]["command"] = ["/nonexistent/binary"]
    done = launcher.wait(launcher.launch(job).name, timeout=30)
    assert done.state == "failed" and done.reason == "BackoffLimitExceeded"
    assert "StartError" in (done.message or "")


def test_close_terminates_running_jobs(tmp_path: Path) -> None:
    lw = LocalLauncher(tmp_path / "jobs", restart_delay=0.0, grace_seconds=0.5)
    lw.launch(make_job("c-1", "import time; time.sleep(60)"))
    lw.close()
    with pytest.raises(RuntimeError):
        lw.launch(make_job("c-2", "pass"))


@pytest.mark.parametrize(
    ("code", "expected"),
    [(3, "FailJob"), (1, "Count"), (0, "Count"), (137, "Count")],
)
def test_rule_action_follows_the_first_matching_rule(code: int, expected: str) -> None:
    rules = make_job("x", "")["spec"]["podFailurePolicy"]["rules"]
    assert rule_action(rules, exit_code=code, container="trainer") == expected


def test_rule_action_not_in_operator_and_container_name() -> None:
    rules = [{"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}}]
    assert rule_action(rules, exit_code=5, container="c") == "Ignore"
    assert rule_action(rules, exit_code=1, container="c") == "Count"
    other = [{"action": "FailJob", "onExitCodes": {"containerName": "sidecar", "operator": "In", "values": [3]}}]
    assert rule_action(other, exit_code=3, container="trainer") == "Count"


def test_plan_expands_var_refs_like_the_kubelet() -> None:
    job = make_job("v-1", "$(JOBPLANE_RUN_ID) $(UNKNOWN) $$(JOBPLANE_RUN_ID)")
    plan = plan_job(job)
    assert plan.argv[-1] == "v-1 $(UNKNOWN) $(JOBPLANE_RUN_ID)"
    assert plan.namespace == "jobs" and plan.backoff_limit == 2
    assert expand_refs("a$$b", {}) == "a$b"


def test_python_command_runs_under_this_interpreter(launcher: LocalLauncher, tmp_path: Path) -> None:
    launcher.launch(make_job("py-1", "import sys; print(sys.executable)"))
    launcher.wait("py-1", timeout=30)
    assert (tmp_path / "jobs" / "py-1" / "attempt-1.log").read_text().strip() == sys.executable


def test_deadline_cuts_short_the_pause_between_pods(tmp_path: Path) -> None:
    lw = LocalLauncher(tmp_path / "jobs", restart_delay=30.0, grace_seconds=0.5)
    try:
        lw.launch(make_job("pause-1", "import sys; sys.exit(1)", backoffLimit=10, activeDeadlineSeconds=1))
        done = lw.wait("pause-1", timeout=20)
        assert done.state == "failed" and done.reason == "DeadlineExceeded"
    finally:
        lw.close()


def test_reads_the_manifest_the_kubernetes_launcher_would_create(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from support.specs import make_spec

    from jobplane.manifests import build_job
    from jobplane.runs import new_run
    from jobplane.settings import Settings

    settings = Settings(store_url=(tmp_path / "store").as_uri(), sink="http://127.0.0.1:1/default/default", callback_key=b"k" * 32)
    spec = make_spec(retries=3, timeoutSeconds=120)
    run = new_run(spec=spec, trigger={"type": "t", "source": "/s", "id": "1", "subject": None}, requested_by="test", now=datetime.now(UTC))
    plan = plan_job(build_job(spec, run, settings=settings))
    assert plan.name == run["id"] and plan.backoff_limit == 3 and plan.deadline_s == 120
    assert plan.env["JOBPLANE_RUN_ID"] == run["id"] and plan.env["K_SINK"] == settings.sink
    assert rule_action(plan.failure_rules, exit_code=EXIT_BAD_DATA, container=plan.container) == "FailJob"
    assert rule_action(plan.failure_rules, exit_code=1, container=plan.container) == "Count"
    assert plan.argv[0] in ("python", sys.executable)


# --- a plane restart: a new launcher over the same workdir takes the Jobs back --------------


def gated(gate: Path, *, first_only: bool = False) -> str:
    """A script that waits for ``gate`` to exist, then exits with the number written in it
    (``first_only``: only the first attempt waits and exits so; later ones exit 0)."""
    return (
        "import pathlib, sys, time\n"
        f"gate = pathlib.Path({str(gate)!r}); again = pathlib.Path('ran-once')\n"
        f"if {first_only!r} and again.exists(): sys.exit(0)\n"
        "again.touch()\n"
        "while not (gate.exists() and gate.read_text()): time.sleep(0.02)\n"
        "print('released with', gate.read_text()); sys.exit(int(gate.read_text()))\n"
    )


def started(workdir: Path, name: str, attempt: int = 1) -> None:
    pid_file = workdir / name / f"attempt-{attempt}.pid"
    for _ in range(600):
        if pid_file.exists() and (workdir / name / "ran-once").exists():
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"attempt {attempt} of {name} never started")


@pytest.fixture
def restarted(tmp_path: Path, finished: list[JobStatus]) -> Iterator[tuple[LocalLauncher, LocalLauncher]]:
    """The launcher of a plane that stopped without stopping its Jobs, and the next plane's."""
    first = LocalLauncher(tmp_path / "jobs", restart_delay=0.0, grace_seconds=1.0)
    second = LocalLauncher(tmp_path / "jobs", on_finished=finished.append, restart_delay=0.0, grace_seconds=1.0)
    yield first, second
    first.close()
    second.close()


def test_a_running_attempt_is_adopted_after_a_restart_and_its_real_exit_status_ends_the_job(
    restarted: tuple[LocalLauncher, LocalLauncher], tmp_path: Path, finished: list[JobStatus]
) -> None:
    first, second = restarted
    gate = tmp_path / "gate"
    first.launch(make_job("adopt-1", gated(gate)))
    started(tmp_path / "jobs", "adopt-1")
    first.close(stop_jobs=False)

    assert [s.state for s in second.recover()] == ["running"]
    assert second.describe("adopt-1").state == "running"
    gate.write_text("0")
    done = second.wait("adopt-1", timeout=30)

    assert done.state == "succeeded" and done.failed_pods == 0
    assert [s.state for s in finished] == ["succeeded"]
    assert sorted(p.name for p in (tmp_path / "jobs" / "adopt-1").glob("attempt-*.log")) == ["attempt-1.log"]


def test_an_adopted_attempt_that_fails_is_retried_under_the_jobs_policy(
    restarted: tuple[LocalLauncher, LocalLauncher], tmp_path: Path
) -> None:
    first, second = restarted
    gate = tmp_path / "gate"
    first.launch(make_job("adopt-2", gated(gate, first_only=True), backoffLimit=1))
    started(tmp_path / "jobs", "adopt-2")
    first.close(stop_jobs=False)

    second.recover()
    gate.write_text("1")
    done = second.wait("adopt-2", timeout=30)

    assert done.state == "succeeded" and done.failed_pods == 1
    assert "released with 1" in (tmp_path / "jobs" / "adopt-2" / "attempt-1.log").read_text()


def test_an_attempt_that_ended_while_no_launcher_watched_is_judged_by_its_recorded_status(
    restarted: tuple[LocalLauncher, LocalLauncher], tmp_path: Path, finished: list[JobStatus]
) -> None:
    first, second = restarted
    gate = tmp_path / "gate"
    first.launch(make_job("ended-1", gated(gate), backoffLimit=5))
    started(tmp_path / "jobs", "ended-1")
    first.close(stop_jobs=False)
    gate.write_text(str(EXIT_BAD_DATA))
    exit_file = tmp_path / "jobs" / "ended-1" / "attempt-1.exit"
    assert wait_gone(json_pid(exit_file.with_suffix(".pid"))) and exit_file.exists()

    second.recover()
    done = second.wait("ended-1", timeout=30)

    assert done.state == "failed" and done.reason == "PodFailurePolicy"
    assert [s.reason for s in finished] == ["PodFailurePolicy"]


def json_pid(path: Path) -> int:
    import json

    return int(json.loads(path.read_text())["pid"])


@pytest.mark.parametrize(("ignore_disruptions", "expected"), [(True, "succeeded"), (False, "failed")])
def test_an_attempt_that_vanished_without_a_status_is_a_disrupted_pod(
    restarted: tuple[LocalLauncher, LocalLauncher], tmp_path: Path, ignore_disruptions: bool, expected: str
) -> None:
    import os
    import signal

    first, second = restarted
    job = make_job("lost-1", gated(tmp_path / "gate", first_only=True), backoffLimit=0)
    if not ignore_disruptions:
        job["spec"]["podFailurePolicy"]["rules"].pop()
    first.launch(job)
    started(tmp_path / "jobs", "lost-1")
    first.close(stop_jobs=False)
    pid = json_pid(tmp_path / "jobs" / "lost-1" / "attempt-1.pid")
    os.killpg(pid, signal.SIGKILL)  # the wrapper too: no exit status is recorded
    assert wait_gone(pid)

    second.recover()
    done = second.wait("lost-1", timeout=30)

    assert done.state == expected and done.failed_pods == 1
    log = (tmp_path / "jobs" / "lost-1" / "attempt-1.log").read_text()
    assert "vanished without a recorded exit status" in log
    if expected == "failed":
        assert done.reason == "BackoffLimitExceeded" and "vanished" in (done.message or "")


def test_an_attempt_the_plane_stopped_on_shutdown_runs_again_without_counting(tmp_path: Path) -> None:
    first = LocalLauncher(tmp_path / "jobs", restart_delay=0.0, grace_seconds=1.0)
    first.launch(make_job("drained-1", gated(tmp_path / "gate", first_only=True), backoffLimit=0))
    started(tmp_path / "jobs", "drained-1")
    first.close()  # SIGTERM: the attempt exits 143 and records it

    second = LocalLauncher(tmp_path / "jobs", restart_delay=0.0, grace_seconds=1.0)
    try:
        second.recover()
        done = second.wait("drained-1", timeout=30)
    finally:
        second.close()
    assert done.state == "succeeded" and done.failed_pods == 1


def test_ended_jobs_are_recovered_as_ended_and_deleted_ones_not_at_all(tmp_path: Path) -> None:
    first = LocalLauncher(tmp_path / "jobs", restart_delay=0.0, grace_seconds=1.0)
    first.launch(make_job("done-1", "import sys; sys.exit(3)"))
    first.wait("done-1", timeout=30)
    first.launch(make_job("gone-1", "import time; time.sleep(60)"))
    first.cancel("gone-1")
    first.close()

    second = LocalLauncher(tmp_path / "jobs")
    try:
        recovered = {s.name: s for s in second.recover()}
        assert set(recovered) == {"done-1"}
        assert second.describe("done-1").reason == "PodFailurePolicy"
        assert second.describe("gone-1").state == "missing"
    finally:
        second.close()


def test_a_recorded_pid_now_held_by_another_process_is_not_taken_for_the_attempt(tmp_path: Path) -> None:
    import json
    import os

    from jobplane.launcher import jobdir

    jobdir.save_pid(tmp_path, 1, os.getpid())
    assert jobdir.live_process(tmp_path, 1) is not None
    record = json.loads((tmp_path / "attempt-1.pid").read_text())
    (tmp_path / "attempt-1.pid").write_text(json.dumps({**record, "startTime": record["startTime"] - 3600}))
    assert jobdir.live_process(tmp_path, 1) is None


def test_cancel_returns_while_the_ended_jobs_supervisor_is_still_in_its_after_exit_work(tmp_path: Path) -> None:
    """A Replace launch cancels a Job that has just ended: the cancel must not wait for the
    ended Job's ``on_finished`` (the plane's, which may wait on the broker)."""
    entered, release, returned = threading.Event(), threading.Event(), threading.Event()

    def slow_after_exit(status: JobStatus) -> None:
        entered.set()
        release.wait(60)
        returned.set()

    lw = LocalLauncher(tmp_path / "jobs", on_finished=slow_after_exit, grace_seconds=60.0)
    try:
        lw.launch(make_job("ended-2", "pass"))
        assert entered.wait(30)
        lw.cancel("ended-2")
        assert not returned.is_set()  # cancel came back while the after-exit work still runs
        assert lw.describe("ended-2").state == "missing"
    finally:
        release.set()
        lw.close()
