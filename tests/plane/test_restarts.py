"""A plane restart while Jobs run, and Replace storms: the embedded plane tells the truth.

The plane is ``jobplane up`` in a subprocess, killed with SIGKILL while its stand-in trainer
runs (the trainer, in its own session, lives on), then started again on the same data dir and
port: the run ends with the trainer's real outcome, never ``JobMissing``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.plane import api, wait_for
from support.servers import free_port
from support.specs import TRAINING_EXAMPLES

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs
from jobplane.launcher.base import JobStatus
from jobplane.local.plane import Plane
from jobplane.store import open_store
from jobplane.store.base import ObjectStore

STANDIN = Path(__file__).with_name("standin_trainer.py")
WAIT = 90.0


def bot_changed(event_id: str, bot: str = "pizza-bot") -> ev.Event:
    data = {"botId": bot, "revision": event_id, "trainingData": {"examples": TRAINING_EXAMPLES}}
    return ev.new_event(ev.BOT_CHANGED, source="/platform/bots", id=event_id, subject=bot, data=data)


def post(url: str, event: ev.Event) -> int:
    headers, body = ev.to_http(event)
    return requests.post(url + "/default/default", data=body, headers=headers, timeout=10).status_code


class Up:
    """``jobplane up`` on a data dir and port, in its own process."""

    def __init__(self, data_dir: Path, port: int, gate: Path) -> None:
        command = [sys.executable, str(STANDIN), "wait", str(gate)]
        env = {**os.environ, "JOBPLANE_COMMAND": json.dumps(command), "OMP_NUM_THREADS": "1"}
        self.data_dir = data_dir
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobplane.cli", "up", "--port", str(port), "--data-dir", str(data_dir)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self._healthy, timeout=WAIT, what="jobplane up to answer /healthz")

    def _healthy(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # a slow answer under load: not up yet
            return False

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


class Restarts:
    """One data dir and port, planes started on it one after another, the trainer's gate."""

    def __init__(self, tmp_path: Path) -> None:
        self.data = tmp_path / "data"
        self.port = free_port()
        self.gate = tmp_path / "gate"
        self.planes: list[Up] = []
        self.store = open_store((self.data / "store").resolve().as_uri())

    def up(self) -> Up:
        self.planes.append(Up(self.data, self.port, self.gate))
        return self.planes[-1]

    def job_dir(self, run_id: str) -> Path:
        return self.data / "jobs" / run_id


@pytest.fixture
def restart(tmp_path: Path) -> Iterator[Restarts]:
    r = Restarts(tmp_path)
    yield r
    r.gate.write_text("succeed")  # a trainer still waiting ends (the plane's stop would kill it anyway)
    for plane in r.planes:
        plane.stop()


def state_of(store: ObjectStore, run_id: str) -> str:
    try:
        return str(runs.get_run(store, run_id)["state"])
    except Exception:  # noqa: BLE001 - not written yet
        return ""


def ended(store: ObjectStore, run_id: str) -> dict[str, Any]:
    wait_for(lambda: state_of(store, run_id) in runs.TERMINAL, timeout=WAIT, what=f"run {run_id} to end")
    return dict(runs.get_run(store, run_id))


def started_running(restart: Restarts, event_id: str) -> tuple[Up, str]:
    """A plane whose trainer has reported progress and now waits at its gate; the run id."""
    first = restart.up()
    event = bot_changed(event_id)
    assert post(first.url, event) == 202
    run_id = runs.run_id_for("train-pizza-bot", source=event.source, event_id=event.id)
    wait_for(lambda: state_of(restart.store, run_id) == "running", timeout=WAIT, what="the trainer's first progress")
    return first, run_id


@pytest.mark.slow
def test_a_plane_killed_and_restarted_while_its_trainer_runs_adopts_it_and_the_run_ends_with_its_outcome(
    restart: Restarts,
) -> None:
    first, run_id = started_running(restart, "restart-1")
    first.kill()  # SIGKILL: no shutdown at all; the trainer lives on in its own session

    second = restart.up()
    tick = ev.new_event("dev.knative.sources.ping", source="/tests/reconcile", data={"reconcile": "jobs"})
    headers, body = ev.to_http(tick)
    answer = api(second).post(second.url + "/_functions/jobplane-reconciler", data=body, headers=headers, timeout=30)
    assert answer.status_code < 300, answer.text
    assert state_of(restart.store, run_id) == "running"  # the Job was adopted: never JobMissing

    restart.gate.write_text("succeed")
    run = ended(restart.store, run_id)
    assert run["state"] == "succeeded" and run["metrics"]["accuracy"] == 0.9, run
    assert sorted(p.name for p in restart.job_dir(run_id).glob("attempt-*.log")) == ["attempt-1.log"]


@pytest.mark.slow
def test_a_trainer_that_died_while_its_plane_was_down_is_retried_under_its_policy_after_the_restart(
    restart: Restarts,
) -> None:
    first, run_id = started_running(restart, "restart-2")
    first.kill()
    restart.gate.write_text("die-once")  # exits 1 without a word while no plane watches
    exit_file = restart.job_dir(run_id) / "attempt-1.exit"
    wait_for(exit_file.exists, timeout=WAIT, what="the first attempt to end")

    restart.up()
    run = ended(restart.store, run_id)
    assert run["state"] == "succeeded", run
    assert exit_file.read_text().strip() == "1"
    assert (restart.job_dir(run_id) / "attempt-2.log").exists()


# --- Replace storms: cancelling a superseded Job never blocks a launch ------------------------


@pytest.fixture
def quick_plane(tmp_path: Path) -> Iterator[Plane]:
    """A plane whose Jobs end at once without reporting: every Job a launch replaces has just
    ended, its supervisor in its after-exit work (the case that blocked launches)."""
    env = {"JOBPLANE_COMMAND": json.dumps([sys.executable, "-c", "pass"])}
    plane = Plane(tmp_path / "data", port=0, env=env).start()
    try:
        yield plane
    finally:
        plane.stop()


def test_a_jobs_end_never_waits_on_the_broker_on_the_thread_that_reports_it(quick_plane: Plane) -> None:
    assert quick_plane.broker is not None
    entered, release, flushed = threading.Event(), threading.Event(), threading.Event()

    def slow_flush(timeout: float | None = None) -> bool:
        entered.set()
        release.wait(60)
        flushed.set()
        return True

    quick_plane.broker.flush = slow_flush  # type: ignore[method-assign]
    try:
        on_finished = getattr(quick_plane.launcher, "on_finished")
        on_finished(JobStatus(name="ended-1", namespace="default", state="succeeded"))
        assert not flushed.is_set()  # returned while the flush still waits
        assert entered.wait(30)  # the flush still happens, elsewhere
    finally:
        release.set()


@pytest.mark.slow
def test_a_replace_storm_makes_one_run_per_trigger_and_drains(quick_plane: Plane) -> None:
    bots, per_bot = ("storm-a", "storm-b"), 6
    events = [bot_changed(f"storm-{bot}-{i}", bot=bot) for i in range(per_bot) for bot in bots]
    for event in events:
        assert post(quick_plane.url, event) == 202
    assert quick_plane.broker is not None and quick_plane.broker.flush(timeout=WAIT)

    store = quick_plane.store
    for bot in bots:
        made = runs.list_runs(store, spec_id=f"train-{bot}", limit=100)
        expected = {runs.run_id_for(f"train-{bot}", source=e.source, event_id=e.id) for e in events if e.subject == bot}
        assert {r["id"] for r in made} == expected  # one run per trigger
        states = sorted(r["state"] for r in made)
        assert states.count("superseded") == per_bot - 1, states  # the newest alone goes on
        assert not [r for r in made if r["state"] == "failed"], states
        live = {j.name for j in quick_plane.launcher.list({c.LABEL_SPEC_ID: f"train-{bot}"})}
        assert live == {r["id"] for r in made if r["state"] != "superseded"}
