"""``python -m jobplane_trainer run`` as the plane runs it: env in, events to a real HTTP sink,
artifacts and the promoted pointer in a filesystem store, exit codes per conventions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from jobplane import conventions as c
from jobplane.errors import ForbiddenError
from jobplane.events import Event, from_http
from jobplane.store import ObjectStore, open_store
from jobplane_trainer.data import BadDataError
from jobplane_trainer.inputs import run_store
from jobplane_trainer.job import JobEnv, checkpoint_key, read_training_data
from support.servers import serve_wsgi

from .conftest import make_bot

RUN_ID = "train-acme-0123456789"


class Sink:
    """A CloudEvents sink that records what it receives (answers 202 like the broker)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.lock = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        event = from_http(dict(request.headers), request.get_data())
        with self.lock:
            self.events.append(event)
        return Response(status=202)(environ, start_response)

    def of(self, type_: str) -> list[Event]:
        with self.lock:
            return [e for e in self.events if e.type == type_]


@pytest.fixture
def sink() -> Iterator[tuple[Sink, str]]:
    s = Sink()
    with serve_wsgi(s) as url:
        yield s, url + "/default/default"


def _env(store: ObjectStore, url: str, *, data: dict[str, Any], **params: Any) -> dict[str, str]:
    key = "bots/acme/data/r1.json"
    store.write(key, json.dumps(data).encode())
    return os.environ | {
        c.ENV_SINK: url, c.ENV_RUN_ID: RUN_ID, c.ENV_SPEC_ID: "train-acme", c.ENV_BOT_ID: "acme",
        c.ENV_JOB_TYPE: "training", c.ENV_TOKEN: "secret-token", c.ENV_STORE: store.url,
        c.ENV_PARAMS: json.dumps({"botId": "acme", "trainingData": {"uri": store.uri(key)}, **params}),
    }


def _run(env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jobplane_trainer", "run"], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_run_trains_writes_artifacts_under_its_run_only_and_reports(tmp_path: Path, sink: tuple[Sink, str]) -> None:
    events, url = sink
    store = open_store(tmp_path.as_uri())
    proc = _run(_env(store, url, data=make_bot(), maxEpochs=10, taggerEpochs=8, minSteps=50, taggerMinSteps=50, refit=False, threads=1))
    assert proc.returncode == c.EXIT_OK, proc.stderr[-2000:]
    (done,) = events.of("dev.jobplane.run.succeeded")
    assert done.subject == RUN_ID and done.extensions[c.TOKEN_EXTENSION] == "secret-token"
    assert done.source == f"/jobplane/trainer/{RUN_ID}"
    assert done.data["promote"] is True and done.data["metrics"]["accuracy"] > 0.8
    prefix = store.uri(c.run_artifacts_prefix(RUN_ID) + "x")[:-1]
    for name in ("model", "metrics", "confusionMatrix", "confusionMatrixPng", "modelCard", "validation"):
        assert done.data["artifacts"][name].startswith(prefix)
    assert done.data["model"]["trainingDataHash"].startswith("sha256:") and done.data["model"]["threshold"] >= 0
    written = [k for k in store.list("") if not k.startswith(f"runs/{RUN_ID}/")]
    assert written == ["bots/acme/data/r1.json"], "the trainer never promotes: status does"
    card = json.loads(store.read(c.run_artifacts_prefix(RUN_ID) + "model_card.json").data)
    assert card["trainingDataHash"].startswith("sha256:") and card["trainerVersion"]
    progress = events.of("dev.jobplane.run.progress")
    assert [e.data["seq"] for e in progress] == sorted({e.data["seq"] for e in progress})
    assert progress[-1].data["progress"] == 100.0 and {"phase", "message"} <= set(progress[1].data)


@pytest.mark.slow
def test_bad_data_fails_the_run_with_the_bad_data_exit_code(tmp_path: Path, sink: tuple[Sink, str]) -> None:
    events, url = sink
    store = open_store(tmp_path.as_uri())
    data = {"examples": [{"text": "hi", "intent": "greet"}, {"text": "hello", "intent": "greet"}]}
    proc = _run(_env(store, url, data=data))
    assert proc.returncode == c.EXIT_BAD_DATA
    (failed,) = events.of("dev.jobplane.run.failed")
    assert failed.data["reason"] == "BadData" and "need at least 2 intents" in failed.data["message"]


@pytest.mark.slow
def test_a_crash_reports_progress_in_phase_error_and_exits_1_without_run_failed(tmp_path: Path, sink: tuple[Sink, str]) -> None:
    events, url = sink
    store = open_store(tmp_path.as_uri())
    proc = _run(_env(store, url, data=make_bot(), maxEpochs="lots"))  # a crash, not bad data: the Job retries
    assert proc.returncode == c.EXIT_FAILED, proc.stderr[-2000:]
    assert not events.of("dev.jobplane.run.failed")
    *_, crash = events.of("dev.jobplane.run.progress")
    assert crash.data["phase"] == c.PHASE_ERROR and crash.data["message"].startswith("ValueError: ")
    assert crash.extensions[c.TOKEN_EXTENSION] == "secret-token" and crash.subject == RUN_ID


@pytest.mark.slow
def test_sigterm_checkpoints_to_the_store_and_a_retry_resumes(tmp_path: Path, sink: tuple[Sink, str]) -> None:
    events, url = sink
    store = open_store(tmp_path.as_uri())
    env = _env(store, url, data=make_bot(per_intent=60), maxEpochs=40, patience=40, taggerEpochs=2, taggerMinSteps=0, refit=False, threads=1)
    proc = subprocess.Popen([sys.executable, "-m", "jobplane_trainer", "run"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not any(e.data.get("phase") == "intent" for e in events.of("dev.jobplane.run.progress")):
        assert time.monotonic() < deadline and proc.poll() is None, "no intent progress before the deadline"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == c.EXIT_INTERRUPTED
    proc.stderr.close()  # type: ignore[union-attr]
    assert store.read(checkpoint_key(RUN_ID)).data
    assert not events.of("dev.jobplane.run.failed")
    events.events.clear()
    assert _run(env, timeout=240).returncode == c.EXIT_OK
    assert any("resumed from checkpoint" in e.data["message"] for e in events.of("dev.jobplane.run.progress"))


def test_the_trainers_store_refuses_writes_outside_its_run_and_reads_of_other_bots(tmp_path: Path) -> None:
    store = run_store(tmp_path.as_uri(), run_id=RUN_ID, bot_id="acme")
    store.write(f"runs/{RUN_ID}/artifacts/model.npz", b"m")
    for key in (c.bot_model_key("acme"), "runs/other-run/run.json", f"runs/{RUN_ID}-x/run.json", "specs/train-acme.json"):
        with pytest.raises(ForbiddenError):
            store.write(key, b"{}")
    with pytest.raises(ForbiddenError):
        store.read("bots/other/data/r1.json")
    with pytest.raises(ForbiddenError):
        store.delete("runs/other-run/run.json")
    assert [k for k in open_store(tmp_path.as_uri()).list("")] == [f"runs/{RUN_ID}/artifacts/model.npz"]


@pytest.mark.parametrize("uri", ["file:///etc/passwd", "file:///dev/zero", "gs://other-bucket/bots/acme/r1.json",
                                 "{store}/bots/other/data/r1.json", "{store}/bots/acme/../other/data/r1.json",
                                 "{store}/bots/acme/%2e%2e/other/data/r1.json", "{store}/runs/x/artifacts/validation.json"])
def test_the_trainer_refuses_data_outside_its_bot_before_reading(tmp_path: Path, uri: str) -> None:
    store = run_store(tmp_path.as_uri(), run_id=RUN_ID, bot_id="acme")
    params = {"botId": "acme", "trainingData": {"uri": uri.replace("{store}", store.url)}}
    with pytest.raises(BadDataError) as refused:
        read_training_data(store, params, bot_id="acme")
    assert refused.value.details[0].field == "params.trainingData.uri"
    assert str(tmp_path) not in refused.value.message and "must name an object under bots/acme/" in refused.value.message


def test_data_over_the_size_cap_is_bad_data_read_no_further_than_the_cap(tmp_path: Path) -> None:
    raw = open_store(tmp_path.as_uri())
    raw.write("bots/acme/data/big.json", b"x" * 5000)
    store = run_store(tmp_path.as_uri(), run_id=RUN_ID, bot_id="acme")
    params = {"trainingData": {"uri": store.uri("bots/acme/data/big.json")}}
    with pytest.raises(BadDataError, match="larger than JOBPLANE_MAX_DATA_BYTES"):
        read_training_data(store, params, bot_id="acme", limit=4096)


def test_an_endless_input_under_an_allowed_prefix_ends_with_a_clear_error_not_memory_error(tmp_path: Path) -> None:
    store = run_store(tmp_path.as_uri(), run_id=RUN_ID, bot_id="acme")
    params = {"trainingData": {"uri": "file:///dev/zero"}}
    with pytest.raises(BadDataError, match="not a plain object"):
        read_training_data(store, params, bot_id="acme", prefixes=("file:///dev/",), limit=1 << 20)


def test_a_run_whose_data_is_not_its_bots_exits_with_bad_data(tmp_path: Path, sink: tuple[Sink, str]) -> None:
    events, url = sink
    store = open_store(tmp_path.as_uri())
    env = _env(store, url, data=make_bot())
    env[c.ENV_PARAMS] = json.dumps({"botId": "acme", "trainingData": {"uri": "file:///etc/passwd"}})
    proc = _run(env)
    assert proc.returncode == c.EXIT_BAD_DATA, proc.stderr[-2000:]
    (failed,) = events.of("dev.jobplane.run.failed")
    assert "must name an object under bots/acme/" in failed.data["message"] and "passwd:" not in failed.data["message"]


def test_env_without_run_id_is_bad_data() -> None:
    from jobplane_trainer.data import BadDataError

    with pytest.raises(BadDataError, match="JOBPLANE_RUN_ID: must be set"):
        JobEnv.from_env({c.ENV_STORE: "file:///tmp/x"})


def _test_env(store: ObjectStore, **params: Any) -> JobEnv:
    return JobEnv(run_id="bt1", spec_id="nightly", bot_id="acme", job_type="bot-test", sink="", token="",
                  store_url=store.url, params={"botId": "acme", **params})


def test_bot_test_of_a_bot_without_a_model_is_bad_data(tmp_path: Path) -> None:
    from jobplane_trainer import bottest
    from jobplane_trainer.data import BadDataError

    with pytest.raises(BadDataError, match="has no promoted model"):
        bottest.execute(_test_env(open_store(tmp_path.as_uri())))
