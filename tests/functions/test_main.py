"""Each function target of ``functions/main.py`` as its Knative Service serves it (its own
functions-framework app, no front door before it), over real HTTP: the size limit holds on a
declared length and on a chunked body, and every error functions-framework, Flask or Werkzeug
would answer itself is JSON in the API's error shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests
from support.fakes import FakeLauncher
from support.servers import raw_request, serve_wsgi

from jobplane import conventions as c
from jobplane import runtime
from jobplane.app import create_function_app
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store.files import FileStore

LIMIT = 8 * 1024
TOKEN = "t" * 32
BINARY = {"Authorization": f"Bearer {TOKEN}", "ce-specversion": "1.0", "ce-id": "e-1", "ce-source": "/s", "ce-type": "dev.jobplane.bot.changed",
          "Content-Type": "application/json"}
TARGETS = sorted(c.SERVICE_TARGETS.values())


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    store = FileStore(tmp_path_factory.mktemp("main") / "store", fsync=False)
    settings = Settings(store_url=store.url, callback_key=b"k" * 32, max_event_bytes=LIMIT, auth="token", api_token=TOKEN)
    launcher = FakeLauncher()
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher, send=lambda e: None))
    with ExitStack() as stack:
        yield {target: stack.enter_context(serve_wsgi(create_function_app(target))) for target in TARGETS}


def path_of(target: str) -> str:
    return "/v1/specs" if target == "api" else "/"


def json_error(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    assert headers["content-type"].startswith("application/json"), (status, body[:200])
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"}
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize("target", TARGETS)
def test_a_declared_body_over_the_limit_is_413_unread(urls: dict[str, str], target: str) -> None:
    status, headers, body = raw_request(urls[target], path_of(target), BINARY, [b"{"], declared=51 * 1024 * 1024)
    assert status == 413 and json_error(status, headers, body)["code"] == "too_large"


@pytest.mark.parametrize("target", TARGETS)
def test_a_chunked_body_over_the_limit_is_413_without_reading_to_its_end(urls: dict[str, str], target: str) -> None:
    endless = [b"x" * 1024] * (4 * LIMIT // 1024)  # no last chunk
    status, headers, body = raw_request(urls[target], path_of(target), BINARY, endless, chunked=True)
    assert status == 413 and json_error(status, headers, body)["code"] == "too_large"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(("path", "status"), [("/robots.txt", 404), ("/favicon.ico", 404)])
def test_functions_frameworks_own_routes_answer_json(urls: dict[str, str], target: str, path: str, status: int) -> None:
    response = requests.get(urls[target] + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == status
    json_error(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)


def test_an_error_no_handler_caught_is_a_json_500_without_internals(
    urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobplane.handlers import api

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api, "handle", broken)
    response = requests.get(urls["api"] + "/healthz", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 500
    error = json_error(500, {k.lower(): v for k, v in response.headers.items()}, response.content)
    assert error["code"] == "internal" and "secret internals" not in response.text


def test_a_bad_limit_setting_is_refused_with_the_variable(tmp_path: Path) -> None:
    from jobplane.errors import ValidationError

    with pytest.raises(ValidationError, match="JOBPLANE_MAX_EVENT_BYTES"):
        Settings.from_env({"JOBPLANE_STORE": (tmp_path / "s").as_uri(), "JOBPLANE_MAX_EVENT_BYTES": "10MB"})
    read = Settings.from_env({"JOBPLANE_STORE": (tmp_path / "s").as_uri(), "JOBPLANE_MAX_EVENT_BYTES": "2097152"})
    assert read.max_event_bytes == 2 * 1024 * 1024
    assert Settings.from_env({"JOBPLANE_STORE": (tmp_path / "s").as_uri()}).max_event_bytes == 10 * 1024 * 1024


@pytest.mark.parametrize("target", TARGETS)
def test_the_cluster_local_functions_serve_metrics_openly_and_the_api_behind_its_credential(
    urls: dict[str, str], target: str,
) -> None:
    response = requests.get(urls[target] + "/metrics", timeout=10)
    if target in ("launch", "status", "reconcile", "deadletter"):
        assert response.status_code == 200 and "jobplane_events_total" in response.text
    elif target == "api":
        assert response.status_code == 401
        authed = requests.get(urls[target] + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert authed.status_code == 200 and "jobplane_run_transitions_total" in authed.text
    else:
        assert "jobplane_events_total" not in response.text, "predict is public: no metrics there"
