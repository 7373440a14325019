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

from support.specs import TEST_DATA_PREFIXES
from jobplane import conventions as c
from jobplane import runtime
from jobplane.app import build_app, create_function_app
from jobplane.auth.frontdoor import front_door_guard, function_headers
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
    settings = Settings(data_prefixes=TEST_DATA_PREFIXES, store_url=store.url, callback_key=b"k" * 32, auth="token", api_token=TOKEN)
    launcher = FakeLauncher()
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher, send=lambda e: None))


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    saved = dict(os.environ)
    app = build_app(broker=fake_broker, guard=front_door_guard(Settings(store_url="file:///unused", auth="token",
                                                                          api_token=TOKEN)))
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
        response = requests.post(f"{url}/_functions/{service}", data=b"{}",
                                 headers={"Content-Type": "application/json", **AUTH}, timeout=10)
        assert response.status_code != 404 or service == "jobplane-api", (service, response.text)
        assert response.status_code < 500, (service, response.status_code, response.text)


def test_an_unknown_service_is_404_with_a_json_error(url: str) -> None:
    response = requests.post(f"{url}/_functions/jobplane-nope", headers=AUTH, timeout=10)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_creating_a_function_app_leaves_the_environment_as_it_was() -> None:
    before = dict(os.environ)
    create_function_app("launch")
    assert dict(os.environ) == before


@pytest.mark.parametrize("service", sorted(c.SERVICE_TARGETS))
def test_a_function_without_the_planes_token_is_401(url: str, service: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = requests.post(f"{url}/_functions/{service}", data=b"{}",
                                 headers={"Content-Type": "application/json", **headers}, timeout=10)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated", service
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_foreign_host_is_403_at_the_broker_ingress_and_the_functions(url: str) -> None:
    for path in ("/default/default", "/_functions/jobplane-launch", "/v1/specs"):
        response = requests.post(url + path, data=b"{}", headers={"Host": "evil.example", **AUTH}, timeout=10)
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden", path


def test_a_foreign_origin_is_403_at_the_broker_ingress(url: str) -> None:
    evil = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    assert requests.post(f"{url}/default/default", data=b"{}", headers=evil, timeout=10).status_code == 403
    own = {"Origin": url, "Content-Type": "application/json"}
    assert requests.post(f"{url}/default/default", data=b"{}", headers=own, timeout=10).status_code == 202


def test_the_planes_token_goes_only_to_its_own_functions() -> None:
    headers_for = function_headers("http://127.0.0.1:8080", Settings(store_url="file:///x", auth="token", api_token="t"))
    assert headers_for("http://127.0.0.1:8080/_functions/jobplane-launch") == {"Authorization": "Bearer t"}
    assert headers_for("http://127.0.0.1:8080/default/default") == {}
    assert headers_for("http://elsewhere.example/_functions/jobplane-launch") == {}
