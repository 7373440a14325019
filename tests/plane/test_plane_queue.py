"""The embedded plane queues its Jobs by the cluster's Kueue policy: a run whose Job waits for
quota reads `queued` with the reason, queue, position and wait start, then runs when quota frees;
one that could never be admitted fails with Kueue's reason."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support import plane as support_plane
from support.specs import TRAINING_EXAMPLES, make_spec

from jobplane.local.plane import Plane

STANDIN = Path(__file__).with_name("standin_trainer.py")
WAIT = 60.0


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    return tmp_path / "gate"


@pytest.fixture
def plane(tmp_path: Path, gate: Path) -> Iterator[Plane]:
    env = {"JOBPLANE_COMMAND": json.dumps([sys.executable, str(STANDIN), "wait", str(gate)])}
    p = Plane(tmp_path / "data", port=0, env=env, reconcile_every=0.3, launcher_env={"OMP_NUM_THREADS": "1"}).start()
    try:
        yield p
    finally:
        p.stop()


def trigger(plane: Plane, http: requests.Session, spec_id: str, cpu: str) -> str:
    spec = make_spec(id=spec_id, params={"botId": "test-bot", "trainingData": {"examples": TRAINING_EXAMPLES}},
                     resources={"gpus": 0, "cpu": cpu, "memory": "1Gi"})
    assert http.post(f"{plane.url}/v1/specs", json=spec, timeout=10).status_code == 201
    response = http.post(f"{plane.url}/v1/specs/{spec_id}/runs", json={}, timeout=10)
    assert response.status_code == 202, response.text
    return str(response.json()["runId"])


def run_when(plane: Plane, http: requests.Session, run_id: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    end = time.monotonic() + WAIT
    while True:
        run = http.get(f"{plane.url}/v1/runs/{run_id}", timeout=10).json()
        if "state" in run and check(run):  # 404 until the launch function stored it
            return dict(run)
        assert time.monotonic() < end, f"run {run_id} never matched; last: {run}"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_run_waits_queued_for_quota_then_runs_and_one_too_big_fails(plane: Plane, gate: Path) -> None:
    http = support_plane.api(plane)
    first = trigger(plane, http, "train-first", "20")
    run_when(plane, http, first, lambda r: r["state"] == "running")
    second = trigger(plane, http, "train-second", "20")  # 20 + 20 > the 32 CPUs training may use

    waiting = run_when(plane, http, second, lambda r: r["state"] == "queued" and r["reason"] == "WaitingForQuota")
    assert waiting["queue"]["name"] == "training" and waiting["queue"]["position"] == 0
    assert waiting["queue"]["since"] and waiting["startedAt"] is None

    too_big = trigger(plane, http, "train-too-big", "100")
    failed = support_plane.final_run(plane, too_big, timeout=WAIT)
    assert (failed["state"], failed["reason"]) == ("failed", "ExceedsMaxQuota")

    gate.write_text("succeed")
    assert support_plane.final_run(plane, first, timeout=WAIT)["state"] == "succeeded"
    assert support_plane.final_run(plane, second, timeout=WAIT)["state"] == "succeeded"
