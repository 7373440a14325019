"""Every door of the embedded plane over real HTTP refuses what it will never accept before it
works on it, and says so in JSON: the broker ingress, the HTTP API and each function under
``/_functions/``. Bodies are sent over raw sockets so that a body that never ends (a declared
51 MB that never comes, a chunked stream with no last chunk) proves the door did not wait to
read it whole: a door that did would never answer."""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.plane import api
from support.servers import raw_request, serve_wsgi
from support.specs import TEST_DATA_PREFIXES, TRAINING_EXAMPLES, make_spec

from jobplane import conventions as c
from jobplane.app import API_SERVICE
from jobplane import events as ev
from jobplane.errors import UnavailableError
from jobplane.local.plane import Plane
from jobplane.store.files import FileStore

STANDIN = Path(__file__).with_name("standin_trainer.py")
LIMIT = 256 * 1024
BINARY = {"ce-specversion": "1.0", "ce-id": "e-1", "ce-source": "/platform/bots", "ce-type": ev.BOT_CHANGED,
          "Content-Type": "application/json"}
JSON = {"Content-Type": "application/json"}
DEEP = b"[" * 100_000 + b"]" * 100_000


def function_path(service: str) -> str:
    return f"/_functions/{service}" + ("/v1/specs" if service == API_SERVICE else "")


DOORS: list[tuple[str, dict[str, str]]] = [
    ("/default/default", BINARY),
    ("/v1/specs", JSON),
    *[(function_path(service), BINARY) for service in c.SERVICE_TARGETS],
]
DOOR_IDS = [path for path, _ in DOORS]


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    env = {"JOBPLANE_COMMAND": json.dumps([sys.executable, str(STANDIN), "succeed"]),
           "JOBPLANE_MAX_EVENT_BYTES": str(LIMIT), "JOBPLANE_DATA_PREFIXES": ",".join(TEST_DATA_PREFIXES)}
    p = Plane(tmp_path_factory.mktemp("doors") / "data", port=0, env=env, reconcile_every=3600).start()
    try:
        yield p
    finally:
        p.stop()


def with_token(plane: Plane, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` plus the plane's API token when it keeps one (the ingress needs none; it does no harm)."""
    return {**headers, **{k: v for k, v in api(plane).headers.items() if k == "Authorization"}}


def assert_error(status: int, headers: dict[str, str], body: bytes, expected: int, code: str) -> dict[str, Any]:
    assert status == expected, body[:300]
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"} and error["code"] == code, error
    return error  # type: ignore[no-any-return]


# --- size ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "headers"), DOORS, ids=DOOR_IDS)
def test_a_declared_51_mb_body_is_413_before_a_byte_of_it_is_read(plane: Plane, path: str, headers: dict[str, str]) -> None:
    status, got, body = raw_request(plane.url, path, with_token(plane, headers), [b"{" * 1024], declared=51 * 1024 * 1024)
    error = assert_error(status, got, body, 413, "too_large")
    assert f"limit of {LIMIT} bytes" in error["message"] and "JOBPLANE_MAX_EVENT_BYTES" in error["message"]


@pytest.mark.parametrize(("path", "headers"), DOORS, ids=DOOR_IDS)
def test_a_chunked_body_that_never_ends_is_413_once_past_the_limit(plane: Plane, path: str, headers: dict[str, str]) -> None:
    endless = [b"x" * (16 * 1024)] * (4 * LIMIT // (16 * 1024))  # and no last chunk: a door reading to the end would hang
    status, got, body = raw_request(plane.url, path, with_token(plane, headers), endless, chunked=True)
    assert_error(status, got, body, 413, "too_large")


def test_a_chunked_event_within_the_limit_is_accepted_at_the_ingress(plane: Plane) -> None:
    data = json.dumps({"botId": "chunky-bot", "revision": "r1", "trainingData": {"examples": TRAINING_EXAMPLES}}).encode()
    parts = [data[i:i + 100] for i in range(0, len(data), 100)] + [b""]  # the empty chunk ends the body
    status, _, body = raw_request(plane.url, "/default/default", {**BINARY, "ce-subject": "chunky-bot"}, parts, chunked=True)
    assert status == 202, body


# --- nesting and content type ------------------------------------------------------------------


@pytest.mark.parametrize(("path", "headers"), DOORS, ids=DOOR_IDS)
def test_json_nested_100000_deep_is_400_with_the_reason(plane: Plane, path: str, headers: dict[str, str]) -> None:
    status, got, body = raw_request(plane.url, path, with_token(plane, headers), [DEEP], declared=len(DEEP))
    error = assert_error(status, got, body, 400, "invalid")
    assert "nested deeper than 64 levels" in error["message"]


def test_a_structured_event_nested_too_deep_is_400_at_the_ingress(plane: Plane) -> None:
    body = b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":' + DEEP + b"}"
    response = requests.post(f"{plane.url}/default/default", data=body, headers={"Content-Type": ev.STRUCTURED}, timeout=10)
    assert response.status_code == 400 and "nested deeper" in response.json()["error"]["message"]


EVENT_DOORS = ["/default/default", *[function_path(s) for s in c.SERVICE_TARGETS if s != API_SERVICE]]


@pytest.mark.parametrize("path", EVENT_DOORS)
def test_a_body_that_is_not_a_cloudevent_in_either_mode_is_415(plane: Plane, path: str) -> None:
    response = api(plane).post(plane.url + path, data=b"retrain please", headers={"Content-Type": "text/plain"}, timeout=10)
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize("path", ["/v1/specs", "/_functions/jobplane-api/v1/specs"])
def test_a_spec_that_is_not_sent_as_json_is_415(plane: Plane, path: str) -> None:
    response = api(plane).post(plane.url + path, data=json.dumps(make_spec(id="as-text")),
                               headers={"Content-Type": "text/plain"}, timeout=10)
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"
    assert "specs/as-text.json" not in list(plane.store.list("specs/"))


def test_binary_mode_events_keep_any_data_content_type(plane: Plane) -> None:
    headers = {**BINARY, "ce-type": "dev.example.unrouted", "Content-Type": "application/octet-stream"}
    assert requests.post(f"{plane.url}/default/default", data=b"\x00\x01", headers=headers, timeout=10).status_code == 202
    headers["Content-Type"] = "text/plain"
    assert requests.post(f"{plane.url}/default/default", data=b"hello", headers=headers, timeout=10).status_code == 202


# --- every error is JSON ---------------------------------------------------------------------------

UNKNOWN: list[tuple[str, str, int, str]] = [
    ("GET", "/v1/nope", 404, "not_found"),
    ("DELETE", "/v1/specs", 405, "method_not_allowed"),
    ("PATCH", "/healthz", 405, "method_not_allowed"),
    ("GET", "/default/default", 405, "method_not_allowed"),
    ("POST", "/_functions/jobplane-nope", 404, "not_found"),
    ("GET", "/_functions/jobplane-launch", 405, "method_not_allowed"),
    ("GET", "/_functions/jobplane-launch/robots.txt", 404, "not_found"),
    ("GET", "/_functions/jobplane-status/favicon.ico", 404, "not_found"),
]


@pytest.mark.parametrize(("method", "path", "status", "code"), UNKNOWN, ids=[f"{m} {p}" for m, p, _, _ in UNKNOWN])
def test_unknown_paths_and_methods_answer_json_errors(plane: Plane, method: str, path: str, status: int, code: str) -> None:
    response = api(plane).request(method, plane.url + path, timeout=10)
    assert_error(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content, status, code)


def test_the_plane_answers_json_503_with_retry_after_while_it_starts(tmp_path: Path) -> None:
    starting = Plane(tmp_path / "data", port=0, env={})
    try:
        with serve_wsgi(starting._wsgi) as url:
            response = requests.get(f"{url}/v1/specs", timeout=10)
    finally:
        starting.stop()
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "unavailable"


# --- a store that cannot write: 503 + Retry-After, never 500 ------------------------------------


@pytest.fixture
def store_refuses_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileStore, "_stage", refuse)


@pytest.mark.usefixtures("store_refuses_writes")
def test_a_store_that_cannot_write_is_503_with_retry_after_on_the_api_and_on_events(plane: Plane) -> None:
    spec = api(plane).post(f"{plane.url}/v1/specs", json=make_spec(id="no-room"), timeout=10)
    headers, body = ev.to_http(ev.new_event(ev.BOT_CHANGED, source="/platform/bots", subject="full-bot",
                                            data={"botId": "full-bot", "revision": "r1",
                                                  "trainingData": {"examples": TRAINING_EXAMPLES}}))
    launch = api(plane).post(f"{plane.url}/_functions/jobplane-launch", data=body, headers=headers, timeout=30)
    for response in (spec, launch):
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) > 0
        assert response.json()["error"]["code"] == "unavailable"
        assert "No space left on device" in response.json()["error"]["message"]
        assert str(plane.data_dir) not in response.text


def test_the_ingress_answers_503_with_retry_after_when_it_cannot_keep_an_event(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_keep(event: ev.Event, hops: int = 0) -> int:
        raise UnavailableError("the broker's store is not writable")

    assert plane.broker is not None
    monkeypatch.setattr(plane.broker, "publish", cannot_keep)
    headers, body = ev.to_http(ev.new_event("dev.example.any", source="/s", data={}))
    response = requests.post(f"{plane.url}/default/default", data=body, headers=headers, timeout=10)
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "unavailable"
