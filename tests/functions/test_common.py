"""The event endpoint contract, through a real Flask app, with CloudEvents in both modes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import flask
import pytest

from jobplane import errors, events
from jobplane.events import Event, from_http, to_http
from jobplane.handlers import common


def make_event(**overrides: Any) -> Event:
    fields: dict[str, Any] = {"type": events.RUN_PROGRESS, "source": "/jobplane/trainer/r-1", "id": "ev-1",
                              "data": {"seq": 1, "progress": 10}, "subject": "r-1"}
    fields.update(overrides)
    return Event(**fields)


def client_for(fn: Callable[[Event], Event | None]) -> Any:
    app = flask.Flask("test_common")

    @app.route("/", methods=["GET", "POST"])
    def endpoint() -> flask.Response:
        return common.event_endpoint(flask.request, fn)

    return app.test_client()


def post(client: Any, event: Event, *, structured: bool = False) -> Any:
    headers, body = to_http(event, structured=structured)
    return client.post("/", headers=headers, data=body)


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
def test_handler_receives_the_event_and_none_answers_204_empty(structured: bool) -> None:
    seen: list[Event] = []
    response = post(client_for(lambda e: seen.append(e)), make_event(), structured=structured)
    assert response.status_code == 204
    assert response.data == b""
    assert seen == [make_event()]


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
def test_reply_event_is_answered_200_in_binary_mode(structured: bool) -> None:
    reply = make_event(type=events.RUN_LAUNCHED, id="reply-1", source="/jobplane/launch", data={"id": "r-1"})
    response = post(client_for(lambda e: reply), make_event(), structured=structured)
    assert response.status_code == 200
    assert response.headers["ce-type"] == events.RUN_LAUNCHED
    assert from_http(dict(response.headers), response.data) == reply


def raiser(err: BaseException) -> Callable[[Event], None]:
    def fn(event: Event) -> None:
        raise err

    return fn


ERRORS: list[tuple[str, BaseException, int, str]] = [
    ("validation", errors.ValidationError([errors.Problem("data.botId", "required")]), 400, "invalid"),
    ("permanent", errors.PermanentError("bad"), 400, "invalid"),
    ("not found is not retried", errors.NotFoundError("no spec x"), 400, "not_found"),
    ("conflict is not retried", errors.ConflictError("dup"), 400, "conflict"),
    ("forbidden stays 403", errors.ForbiddenError("bad token"), 403, "forbidden"),
    ("transient", errors.TransientError("store down"), 503, "unavailable"),
    ("unavailable", errors.UnavailableError("api 503"), 503, "unavailable"),
    ("lost cas race", errors.PreconditionFailedError("generation moved"), 503, "precondition_failed"),
    ("unexpected", RuntimeError("secret internals"), 500, "internal"),
]


@pytest.mark.parametrize(("err", "status", "code"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errors_map_to_statuses_the_broker_understands(err: BaseException, status: int, code: str) -> None:
    response = post(client_for(raiser(err)), make_event())
    assert response.status_code == status
    body = response.get_json()
    assert body["error"]["code"] == code
    assert "secret internals" not in response.get_data(as_text=True)
    assert ("Retry-After" in response.headers) is (status == 503)


def test_validation_details_carry_field_paths() -> None:
    err = errors.ValidationError([errors.Problem("data.botId", "required"), errors.Problem("data.x", "unknown")])
    body = post(client_for(raiser(err)), make_event()).get_json()
    assert body["error"]["details"] == [{"field": "data.botId", "problem": "required"},
                                        {"field": "data.x", "problem": "unknown"}]


MALFORMED: list[tuple[str, dict[str, str], bytes]] = [
    ("missing id", {"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t"}, b""),
    ("bad specversion", {"ce-specversion": "0.1", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}, b""),
    ("structured not json", {"Content-Type": "application/cloudevents+json"}, b"{"),
    ("bad json data", {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t",
                       "Content-Type": "application/json"}, b"{nope"),
]


@pytest.mark.parametrize(("headers", "body"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_events_answer_400_without_calling_the_handler(headers: dict[str, str], body: bytes) -> None:
    called: list[Event] = []
    response = client_for(called.append).post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"]
    assert called == []


def test_oversized_event_is_rejected_with_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "MAX_EVENT_BYTES", 100)
    response = post(client_for(lambda e: None), make_event(data={"blob": "x" * 200}))
    assert response.status_code == 413


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/x-www-form-urlencoded", None],
)
def test_a_body_that_is_neither_binary_nor_structured_mode_is_415(content_type: str | None) -> None:
    called: list[Event] = []
    headers = {"Content-Type": content_type} if content_type else {}
    response = client_for(called.append).post("/", headers=headers, data=b'{"a": 1}')
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"
    assert called == []


def test_binary_mode_takes_any_data_content_type() -> None:
    seen: list[Event] = []
    event = make_event(data=b"\x00\x01", datacontenttype="application/octet-stream")
    assert post(client_for(seen.append), event).status_code == 204
    assert seen[0].data == b"\x00\x01"


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
def test_deeply_nested_json_is_400_not_a_recursion_error(structured: bool) -> None:
    called: list[Event] = []
    if structured:
        headers = {"Content-Type": events.STRUCTURED}
        body = b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":' + DEEP + b"}"
    else:
        headers, _ = to_http(make_event())
        body = DEEP
    response = client_for(called.append).post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert "nested deeper than 64 levels" in response.get_json()["error"]["message"]
    assert called == []


def test_get_on_an_event_endpoint_is_405() -> None:
    assert client_for(lambda e: None).get("/").status_code == 405


def test_json_response_and_error_response_shapes() -> None:
    app = flask.Flask("shapes")
    with app.test_request_context():
        ok = common.json_response({"é": [1]}, 201, headers={"Location": "/v1/x"})
        assert (ok.status_code, ok.headers["Location"], json.loads(ok.data)) == (201, "/v1/x", {"é": [1]})
        assert ok.mimetype == "application/json"
        missing = common.error_response(errors.NotFoundError("no run r-1"))
        assert missing.status_code == 404
        assert json.loads(missing.data) == {"error": {"code": "not_found", "message": "no run r-1", "details": []}}
        assert common.error_response(ValueError("x")).status_code == 500
