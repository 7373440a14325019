"""``GET /v1/runs/{runId}/artifacts/{name}`` through the api function's real app: the bytes of one
artifact of that run, with its content type; nothing outside the run's artifacts prefix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.dashboard import seed_figures
from support.fakes import FakeLauncher

from jobplane import conventions as c
from jobplane import runtime
from jobplane.app import create_function_app
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store.files import FileStore

TOKEN = "artifact-test-token"
RUN = "train-a-1"


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    store = FileStore(tmp_path / "store", fsync=False)
    seed_figures(store, RUN)
    store.write(c.run_key(RUN), b'{"id": "train-a-1"}')
    store.write(c.run_artifacts_prefix("train-b-1") + "secret.json", b'{"other": "run"}')
    return store


@pytest.fixture
def client(store: FileStore) -> Iterator[Any]:
    settings = Settings(store_url=store.url, callback_key=b"k" * 32, auth="token", api_token=TOKEN)
    launcher = FakeLauncher()
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher, send=lambda e: None))
    client = create_function_app("api").test_client()  # type: ignore[attr-defined]
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    yield client


def test_a_json_artifact_is_served_inline_as_json(client: Any) -> None:
    response = client.get(f"/v1/runs/{RUN}/artifacts/confusion_matrix.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert json.loads(response.data)["labels"] == ["greet", "goodbye", "book_table"]
    assert response.headers["Content-Disposition"].startswith("inline")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_a_model_downloads_as_an_attachment_of_octet_stream(client: Any) -> None:
    response = client.get(f"/v1/runs/{RUN}/artifacts/model.npz")
    assert response.status_code == 200 and response.mimetype == "application/octet-stream"
    assert response.headers["Content-Disposition"] == 'attachment; filename="model.npz"'
    assert response.data.startswith(b"PK")


def test_head_answers_the_headers_without_the_bytes(client: Any) -> None:
    response = client.head(f"/v1/runs/{RUN}/artifacts/metrics.json")
    assert response.status_code == 200 and response.data == b"" and response.mimetype == "application/json"


@pytest.mark.parametrize("name", ["nope.json", ".hidden", "..", "%2E%2E%2Ftrain-b-1%2Fartifacts%2Fsecret.json",
                                  "..%2F..%2Ftrain-b-1%2Fartifacts%2Fsecret.json", "run.json"])
def test_a_name_the_run_does_not_have_or_outside_its_artifacts_is_a_json_404(client: Any, name: str) -> None:
    response = client.get(f"/v1/runs/{RUN}/artifacts/{name}")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_another_runs_artifact_is_only_under_that_run(client: Any) -> None:
    assert client.get(f"/v1/runs/{RUN}/artifacts/secret.json").status_code == 404
    assert client.get("/v1/runs/train-b-1/artifacts/secret.json").status_code == 200


def test_artifacts_need_a_credential(client: Any) -> None:
    del client.environ_base["HTTP_AUTHORIZATION"]
    assert client.get(f"/v1/runs/{RUN}/artifacts/metrics.json").status_code == 401
