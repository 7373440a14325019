"""The dead-letter function through its real functions-framework app over HTTP: what the
broker sends after its retries (the event plus knativeerror* extensions) becomes one record."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from support.servers import serve_wsgi

from jobplane import events as ev
from jobplane import runtime
from jobplane.app import create_function_app
from jobplane.handlers import deadletter
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store import open_store
from jobplane.store.base import ObjectStore

NOW = datetime(2026, 11, 29, 23, 59, 30, tzinfo=UTC)


@dataclass
class DeadLetter:
    url: str
    store: ObjectStore

    def post(self, event: ev.Event, *, structured: bool = False) -> requests.Response:
        headers, body = ev.to_http(event, structured=structured)
        return requests.post(self.url, data=body, headers=headers, timeout=10)

    def records(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(self.store.read(k).data) for k in self.store.list(deadletter.PREFIX)}


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """One server for the module (the handler reads the installed runtime per request)."""
    with serve_wsgi(create_function_app("deadletter")) as url:
        yield url


@pytest.fixture
def dead(server_url: str, tmp_path: Path) -> DeadLetter:
    store = open_store((tmp_path / "store").as_uri())
    settings = Settings(store_url=store.url)
    rt = Runtime(settings=settings, store=store, launcher_factory=_no_launcher, send=_no_send, clock=lambda: NOW)
    runtime.install(rt)
    return DeadLetter(url=server_url, store=store)


def _no_launcher() -> Any:
    raise AssertionError("the dead-letter function never launches")


def _no_send(event: ev.Event) -> None:
    raise AssertionError("the dead-letter function never sends")


def failed_delivery(**overrides: Any) -> ev.Event:
    """A run.progress the status function refused, as the broker forwards it."""
    fields: dict[str, Any] = {
        "type": ev.RUN_PROGRESS,
        "source": "/jobplane/trainer/train-pizza-bot-1a2b",
        "id": "evt-42",
        "subject": "train-pizza-bot-1a2b",
        "time": "2026-11-28T10:00:00Z",
        "data": {"seq": 3, "progress": 30, "phase": "train"},
        "extensions": {
            "knativeerrorcode": "400",
            "knativeerrordest": "http://jobplane-status.jobplane.svc.cluster.local",
            "knativeerrordata": base64.b64encode(b'{"error": {"code": "invalid", "message": "bad token"}}').decode(),
        },
    }
    fields.update(overrides)
    return ev.Event(**fields)


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
def test_records_a_dead_letter_with_the_brokers_error_and_answers_204(dead: DeadLetter, structured: bool) -> None:
    response = dead.post(failed_delivery(), structured=structured)
    assert response.status_code == 204, response.text
    assert response.content == b""
    [(key, record)] = dead.records().items()
    assert key.startswith("deadletter/2026-11-28/") and key.endswith("-evt-42.json")
    assert record["error"] == {
        "code": 400,
        "destination": "http://jobplane-status.jobplane.svc.cluster.local",
        "response": '{"error": {"code": "invalid", "message": "bad token"}}',
    }
    assert record["event"]["type"] == ev.RUN_PROGRESS
    assert record["event"]["data"] == {"seq": 3, "progress": 30, "phase": "train"}
    assert record["receivedAt"].startswith("2026-11-29T23:59:30")


def test_a_redelivered_dead_letter_is_recorded_once_and_still_succeeds(dead: DeadLetter) -> None:
    first = dead.post(failed_delivery())
    again = dead.post(failed_delivery(), structured=True)
    assert (first.status_code, again.status_code) == (204, 204)
    assert len(dead.records()) == 1


def test_same_id_from_another_source_is_another_record(dead: DeadLetter) -> None:
    dead.post(failed_delivery())
    dead.post(failed_delivery(source="/jobplane/trainer/other-run"))
    assert len(dead.records()) == 2


def test_event_without_time_is_filed_under_the_day_it_arrived(dead: DeadLetter) -> None:
    dead.post(failed_delivery(time=None))
    [key] = dead.records()
    assert key.startswith("deadletter/2026-11-29/")


def test_unsafe_event_id_becomes_a_hash_in_the_key(dead: DeadLetter) -> None:
    dead.post(failed_delivery(id="../../specs/x y"))
    [key] = dead.records()
    name = key.rsplit("/", 1)[1]
    assert ".." not in name and " " not in name and key.count("/") == 2


def test_event_without_knative_error_attributes_is_still_recorded(dead: DeadLetter) -> None:
    assert dead.post(failed_delivery(extensions={})).status_code == 204
    [record] = dead.records().values()
    assert record["error"] == {"code": None, "destination": None, "response": None}


def test_a_body_that_is_not_a_cloudevent_is_rejected_with_415_and_nothing_written(dead: DeadLetter) -> None:
    response = requests.post(dead.url, data=b"{}", headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 415
    assert dead.records() == {}


def test_malformed_event_is_rejected_with_400_and_nothing_written(dead: DeadLetter) -> None:
    headers = {"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t", "Content-Type": "application/json"}  # no id
    response = requests.post(dead.url, data=b"{}", headers=headers, timeout=10)
    assert response.status_code == 400
    assert dead.records() == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (base64.b64encode(b"upstream timed out").decode(), "upstream timed out"),
        (base64.b64encode(b"\xff\xfe binary").decode(), "\ufffd\ufffd binary"),
        ("not base64!", "not base64!"),
        (None, None),
    ],
    ids=["text", "binary", "not-base64", "absent"],
)
def test_error_data_is_decoded_to_text(raw: str | None, expected: str | None) -> None:
    assert deadletter.decode_error_data(raw) == expected


def test_long_error_data_is_cut_short() -> None:
    decoded = deadletter.decode_error_data(base64.b64encode(b"x" * 100_000).decode())
    assert decoded is not None and len(decoded) <= deadletter.MAX_ERROR_TEXT


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
def test_a_dead_lettered_callback_is_stored_without_its_token_or_any_authorization(
        dead: DeadLetter, tmp_path: Path, structured: bool) -> None:
    secrets = {"jobplanetoken": "v2.1999999999.0123abcd", "authorization": "Bearer s3cret", "apitoken": "k-9"}
    event = failed_delivery()
    event = ev.Event(**{**event.__dict__, "extensions": {**event.extensions, **secrets, "traceparent": "00-ab-cd-01"}})
    assert dead.post(event, structured=structured).status_code == 204

    [(key, record)] = dead.records().items()
    stored = (tmp_path / "store" / key).read_text()
    assert all(value not in stored for value in secrets.values())
    assert {name: record["event"][name] for name in secrets} == dict.fromkeys(secrets, ev.REDACTED)
    assert record["event"]["traceparent"] == "00-ab-cd-01", "only secrets are redacted"
    assert stat.S_IMODE((tmp_path / "store" / key).stat().st_mode) == 0o600
