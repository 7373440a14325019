"""The embedded plane's one front door routes by path like the cluster's URLs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.fakes import FakeLauncher
from support.servers import serve_wsgi

from jobplane import conventions as c
from jobplane import runtime
from jobplane.app import build_app, create_function_app
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store import open_store


def fake_broker(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = f"broker {environ['PATH_INFO']}".encode()
    start_response("202 Accepted", [("Content-Length", str(len(body)))])
    return [body]


TOKEN = "dispatcher-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def installed_runtime(tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    settings = Settings(store_url=store.url, callback_key=b"k" * 32, auth="token", api_token=TOKEN)
    launcher = FakeLauncher()
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher, send=lambda e: None))


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    saved = dict(os.environ)
    app = build_app(broker=fake_broker)
    os.environ.clear()
    os.environ.update(saved)
    with serve_wsgi(app) as base:
        yield base


def test_namespace_and_broker_paths_go_to_the_broker_ingress(url: str) -> None:
    response = requests.post(f"{url}/default/default", data=b"{}", timeout=10)
    assert (response.status_code, response.text) == (202, "broker /default/default")


@pytest.mark.parametrize("path", ["/healthz", "/v1/specs", "/openapi.json"])
def test_api_paths_go_to_the_api_function(url: str, path: str) -> None:
    assert requests.get(url + path, headers=AUTH, timeout=10).status_code == 200


def test_each_knative_service_has_its_function_under_functions(url: str) -> None:
    for service in c.SERVICE_TARGETS:
        response = requests.post(f"{url}/_functions/{service}", data=b"{}", headers={"Content-Type": "application/json"}, timeout=10)
        assert response.status_code != 404 or service == "jobplane-api", (service, response.text)
        assert response.status_code < 500, (service, response.status_code, response.text)


def test_an_unknown_service_is_404_with_a_json_error(url: str) -> None:
    response = requests.post(f"{url}/_functions/jobplane-nope", timeout=10)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_creating_a_function_app_leaves_the_environment_as_it_was() -> None:
    before = dict(os.environ)
    create_function_app("launch")
    assert dict(os.environ) == before
