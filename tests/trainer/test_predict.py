"""The predict function: the promoted model from the store, numpy only, cached and reloaded on
``model.ready`` or when ``model.json`` changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import flask
import pytest

from jobplane import conventions as c
from jobplane.errors import NotFoundError, ValidationError
from jobplane.events import MODEL_READY, new_event, to_http
from jobplane.handlers import predict as predict_fn
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store import open_store


def _runtime(root: Path) -> Runtime:
    store = open_store(root.as_uri())
    return Runtime(settings=Settings(store_url=store.url), store=store, launcher_factory=lambda: None,  # type: ignore[arg-type,return-value]
                   send=lambda e: None)


def _promote(rt: Runtime, model: bytes, *, run_id: str) -> None:
    key = f"runs/{run_id}/artifacts/model.npz"
    rt.store.write(key, model, content_type="application/octet-stream")
    pointer = {"botId": "acme", "runId": run_id, "modelUri": rt.store.uri(key), "metrics": {}}
    rt.store.write(c.bot_model_key("acme"), json.dumps(pointer).encode())


@pytest.fixture
def rt(tmp_path: Path, trained: Any) -> Runtime:
    runtime = _runtime(tmp_path)
    _promote(runtime, trained.model, run_id="run-1")
    predict_fn.invalidate(runtime)
    return runtime


def test_predict_answers_intent_confidence_ranking_entities(rt: Runtime) -> None:
    answer = predict_fn.predict(rt, "acme", "what's the weather in oslo tonight")
    assert answer["intent"] == "weather" and 0 < answer["confidence"] <= 1
    assert answer["ranking"][0]["intent"] == "weather"
    assert [e["value"] for e in answer["entities"]] == ["oslo", "tonight"]
    assert answer["model"]["runId"] == "run-1"


def test_unknown_bot_is_not_found(rt: Runtime) -> None:
    with pytest.raises(NotFoundError):
        predict_fn.predict(rt, "nobody", "hi")


def test_empty_text_is_invalid(rt: Runtime) -> None:
    with pytest.raises(ValidationError):
        predict_fn.predict(rt, "acme", "  ")


def test_model_ready_event_reloads_the_promoted_model(rt: Runtime, trained: Any) -> None:
    assert predict_fn.predict(rt, "acme", "hello")["model"]["runId"] == "run-1"
    _promote(rt, trained.model, run_id="run-2")
    event = new_event(MODEL_READY, source="/jobplane/status", subject="acme", data={"botId": "acme"})
    headers, body = to_http(event)
    app = flask.Flask(__name__)
    with app.test_request_context("/", method="POST", headers=headers, data=body):
        response = predict_fn.handle(flask.request, rt)
    assert response.status_code == 204
    assert predict_fn.predict(rt, "acme", "hello")["model"]["runId"] == "run-2"


def test_plain_json_request_gets_an_answer(rt: Runtime) -> None:
    app = flask.Flask(__name__)
    with app.test_request_context("/", method="POST", json={"botId": "acme", "text": "thanks a lot"}):
        response = predict_fn.handle(flask.request, rt)
    assert response.status_code == 200 and response.get_json()["intent"] == "thanks"
    with app.test_request_context("/", method="POST", json={"text": "x"}):
        assert predict_fn.handle(flask.request, rt).status_code == 400


def test_predict_path_imports_no_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import sys, jobplane.handlers.predict, jobplane.inference; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_model_is_cached_between_requests(rt: Runtime) -> None:
    predict_fn.predict(rt, "acme", "hello")
    rt.store.delete("runs/run-1/artifacts/model.npz")
    assert predict_fn.predict(rt, "acme", "hi there")["intent"] == "greet"


def test_a_new_pointer_generation_is_picked_up_without_an_event(rt: Runtime, trained: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    predict_fn.predict(rt, "acme", "hello")
    _promote(rt, trained.model, run_id="run-3")
    monkeypatch.setattr(predict_fn.models, "recheck_seconds", 0.0)
    assert predict_fn.predict(rt, "acme", "hello")["model"]["runId"] == "run-3"
