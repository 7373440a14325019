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
from jobplane.events import Event, from_http
from jobplane.store import ObjectStore, open_store
from jobplane_trainer.job import JobEnv, checkpoint_key, promote
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
def test_run_trains_writes_artifacts_promotes_and_reports(tmp_path: Path, sink: tuple[Sink, str]) -> None:
    events, url = sink
    store = open_store(tmp_path.as_uri())
    proc = _run(_env(store, url, data=make_bot(), maxEpochs=10, taggerEpochs=8, minSteps=50, taggerMinSteps=50, refit=False, threads=1))
    assert proc.returncode == c.EXIT_OK, proc.stderr[-2000:]
    (done,) = events.of("dev.jobplane.run.succeeded")
    assert done.subject == RUN_ID and done.extensions[c.TOKEN_EXTENSION] == "secret-token"
    assert done.source == f"/jobplane/trainer/{RUN_ID}"
    assert done.data["promoted"] is True and done.data["metrics"]["accuracy"] > 0.8
    prefix = store.uri(c.run_artifacts_prefix(RUN_ID) + "x")[:-1]
    for name in ("model", "metrics", "confusionMatrix", "confusionMatrixPng", "modelCard", "validation"):
        assert done.data["artifacts"][name].startswith(prefix)
    pointer = json.loads(store.read(c.bot_model_key("acme")).data)
    assert pointer["modelUri"] == done.data["modelUri"] and pointer["runId"] == RUN_ID
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


def test_quality_gate_keeps_a_better_current_model(tmp_path: Path, trained: Any) -> None:
    store = open_store(tmp_path.as_uri())
    better = {"runId": "older", "modelUri": "file:///x", "metrics": {"macro_f1": trained.summary["macro_f1"] + 0.05}}
    store.write(c.bot_model_key("acme"), json.dumps(better).encode())
    env = JobEnv(run_id="r2", spec_id="train-acme", bot_id="acme", job_type="training", sink="", token="", store_url=store.url, params={})
    promoted, gate = promote(store, env=env, result=trained, artifacts={"model": "file:///new"}, margin=0.02, dhash="h")
    assert not promoted and gate["current"] == better["metrics"]["macro_f1"]
    assert json.loads(store.read(c.bot_model_key("acme")).data)["runId"] == "older"
    promoted, _ = promote(store, env=env, result=trained, artifacts={"model": "file:///new"}, margin=0.1, dhash="h")
    assert promoted and json.loads(store.read(c.bot_model_key("acme")).data)["modelUri"] == "file:///new"


def test_env_without_run_id_is_bad_data() -> None:
    from jobplane_trainer.data import BadDataError

    with pytest.raises(BadDataError, match="JOBPLANE_RUN_ID: must be set"):
        JobEnv.from_env({c.ENV_STORE: "file:///tmp/x"})


def _promoted(store: ObjectStore, trained: Any) -> None:
    from jobplane_trainer.data import to_project

    store.write("runs/r1/artifacts/model.npz", trained.model)
    store.write("runs/r1/artifacts/validation.json", json.dumps(to_project(trained.validation)).encode())
    pointer = {"runId": "r1", "modelUri": store.uri("runs/r1/artifacts/model.npz"),
               "validationUri": store.uri("runs/r1/artifacts/validation.json"), "metrics": {}}
    store.write(c.bot_model_key("acme"), json.dumps(pointer).encode())


def _test_env(store: ObjectStore, **params: Any) -> JobEnv:
    return JobEnv(run_id="bt1", spec_id="nightly", bot_id="acme", job_type="bot-test", sink="", token="",
                  store_url=store.url, params={"botId": "acme", **params})


def test_bot_test_scores_the_promoted_model_on_its_saved_validation_examples(tmp_path: Path, trained: Any) -> None:
    from jobplane_trainer import bottest

    store = open_store(tmp_path.as_uri())
    _promoted(store, trained)
    data = bottest.execute(_test_env(store))
    figures = data["metrics"]
    assert figures["evaluatedOn"].startswith("validation") and figures["n"] == len(trained.validation)
    assert figures["accuracy"] >= figures["minAccuracy"] == 0.8 and figures["per_intent"] and figures["passed"]
    assert store.read(c.run_artifacts_prefix("bt1") + "bot_test.json")


def test_bot_test_with_explicit_cases_fails_below_min_accuracy(tmp_path: Path, trained: Any) -> None:
    from jobplane_trainer import bottest

    store = open_store(tmp_path.as_uri())
    _promoted(store, trained)
    tests = [{"text": "book a flight to rome", "expectedIntent": "book_flight"}, {"text": "hello", "expectedIntent": "weather"}]
    with pytest.raises(bottest.BelowMinAccuracy, match="0.500 is below minAccuracy 0.9"):
        bottest.execute(_test_env(store, tests=tests, minAccuracy=0.9))
    assert bottest.execute(_test_env(store, tests=tests, minAccuracy=0.5))["metrics"]["evaluatedOn"] == "tests"


def test_bot_test_of_a_bot_without_a_model_is_bad_data(tmp_path: Path) -> None:
    from jobplane_trainer import bottest
    from jobplane_trainer.data import BadDataError

    with pytest.raises(BadDataError, match="has no promoted model"):
        bottest.execute(_test_env(open_store(tmp_path.as_uri())))
