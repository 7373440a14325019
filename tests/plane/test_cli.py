"""The ``jobplane`` command: ``up`` in the foreground, ``render-pingsource``, the demo's output."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from support.plane import api
from support.servers import free_port
from support.specs import TEST_DATA_PREFIXES, make_spec

from jobplane.cli import Exit, main
from jobplane.demo import ProgressBar, describe_prediction, format_matrix, sample_bot


def test_render_pingsource_prints_the_pingsource_of_a_scheduled_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(make_spec(schedule="0 3 * * *", timezone="Europe/Berlin")))

    assert main(["render-pingsource", str(path)]) == 0
    out = capsys.readouterr().out
    assert "kind: PingSource" in out and "0 3 * * *" in out and "train-test-bot" in out


def test_render_pingsource_of_an_invalid_spec_lists_every_problem_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"id": "Bad_Id", "type": "juggling"}))

    assert main(["render-pingsource", str(path)]) == Exit.USAGE
    err = capsys.readouterr().err
    assert "spec.id" in err and "spec.type" in err


@pytest.mark.slow
def test_up_serves_the_plane_until_interrupted_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobplane.cli", "up", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert _healthy(f"http://127.0.0.1:{port}/healthz"), "jobplane up did not answer /healthz"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/default/default" in out and "stopping" in out


@pytest.mark.slow
def test_up_starts_with_a_stored_spec_that_can_never_fire_and_logs_it(tmp_path: Path) -> None:
    from jobplane.store.files import FileStore

    store = FileStore(tmp_path / "data" / "store")
    never = {**make_spec(id="leap-day-only"), "schedule": "0 0 30 2 *", "timezone": "UTC"}  # stored before it was refused
    store.write("specs/leap-day-only.json", json.dumps(never).encode())
    store.write("specs/nightly.json", json.dumps(make_spec(id="nightly", schedule="0 3 * * *", timezone="UTC")).encode())
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobplane.cli", "up", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert _healthy(f"http://127.0.0.1:{port}/healthz"), "jobplane up did not start"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, out
    assert "jobplane-spec-nightly" in out and "jobplane-spec-leap-day-only" in out and "never fires" in out


def _healthy(url: str, *, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return True
        except requests.RequestException:  # refused, or too slow under load: not up yet
            pass
        time.sleep(0.2)
    return False


def test_the_sample_bot_has_at_least_8_intents_of_20_utterances_with_entities() -> None:
    bot = sample_bot()
    counts: dict[str, int] = {}
    for example in bot["examples"]:
        counts[example["intent"]] = counts.get(example["intent"], 0) + 1
        for entity in example.get("entities", []):
            assert example["text"][entity["start"]:entity["end"]] == entity["value"]
    assert len(counts) >= 8 and min(counts.values()) >= 20
    assert sum(1 for e in bot["examples"] if e.get("entities")) >= 50


def test_the_progress_bar_writes_a_line_per_phase_or_ten_percent_when_not_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressBar(out)
    for percent, phase in [(0, "requested"), (3, "training"), (5, "training"), (12, "training"), (100, "succeeded")]:
        bar.update(percent, phase)
    lines = out.getvalue().splitlines()
    assert [line.split()[-1] for line in lines] == ["requested", "training", "training", "succeeded"]
    assert lines[-1].startswith("[" + "#" * 30 + "] 100%")


def test_the_confusion_matrix_table_has_a_row_per_true_intent() -> None:
    table = format_matrix(["greet", "bye"], [[5, 1], [0, 7]])
    assert table.splitlines()[1].split() == ["1", "greet", "5", "1"]
    assert table.splitlines()[2].split() == ["2", "bye", ".", "7"]


def test_a_prediction_is_described_with_intent_confidence_and_entities() -> None:
    line = describe_prediction("send 5 dollars", {"intent": "transfer_money", "confidence": 0.87,
                                                   "entities": [{"entity": "amount", "value": "5 dollars"}]})
    assert "transfer_money (0.87)" in line and "amount='5 dollars'" in line


def test_specs_and_runs_list_what_the_api_of_a_running_plane_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from jobplane.local.plane import Plane

    with Plane(tmp_path / "data", env={"JOBPLANE_DATA_PREFIXES": ",".join(TEST_DATA_PREFIXES)}).start() as plane:
        created = api(plane).post(f"{plane.url}/v1/specs", json=make_spec(schedule="0 3 * * *"), timeout=10)
        assert created.status_code == 201
        data_dir = str(plane.data_dir)
        assert main(["specs", "--url", plane.url, "--data-dir", data_dir]) == 0
        assert main(["runs", "--url", plane.url, "--spec", "train-test-bot", "--data-dir", data_dir]) == 0
        assert main(["runs", "--url", plane.url, "--spec", "nope", "--data-dir", data_dir]) == Exit.NOT_FOUND
    out, err = capsys.readouterr()
    assert "train-test-bot" in out and "0 3 * * *" in out
    assert "HTTP 404" in err


def test_commands_against_a_plane_that_is_not_running_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["specs", "--url", f"http://127.0.0.1:{free_port()}"]) == Exit.UNAVAILABLE
    assert "cannot reach the plane" in capsys.readouterr().err
