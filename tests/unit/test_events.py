"""CloudEvents parsing and writing in both HTTP modes, and the sender against a real server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cloudevents.conversion import to_binary as ce_to_binary
from cloudevents.conversion import to_structured as ce_to_structured
from cloudevents.http import CloudEvent
from cloudevents.http import from_http as ce_from_http

from jobplane import events
from jobplane.errors import PermanentError, UnavailableError
from jobplane.events import Event, from_http, new_event, to_http

BINARY = {
    "ce-specversion": "1.0",
    "ce-id": "e-1",
    "ce-source": "/platform/bots",
    "ce-type": events.BOT_CHANGED,
    "ce-subject": "bot-1",
    "Content-Type": "application/json",
}


def make_event(**overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "type": events.RUN_PROGRESS,
        "source": "/jobplane/trainer/r-1",
        "id": "ev-1",
        "data": {"seq": 3, "progress": 42.5, "phase": "train"},
        "subject": "r-1",
        "time": "2026-11-29T10:00:00.000Z",
        "extensions": {"jobplanetoken": "abc123"},
    }
    fields.update(overrides)
    return Event(**fields)


def structured(obj: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    return {"Content-Type": "application/cloudevents+json"}, json.dumps(obj).encode()


def without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != name}


# --- parsing -------------------------------------------------------------------------------


def test_parses_binary_mode_with_json_data() -> None:
    event = from_http(BINARY, b'{"botId": "bot-1", "revision": 7}')
    assert (event.type, event.source, event.id, event.subject) == (events.BOT_CHANGED, "/platform/bots", "e-1", "bot-1")
    assert event.data == {"botId": "bot-1", "revision": 7}
    assert event.datacontenttype == "application/json"


def test_parses_structured_mode_with_extensions_as_strings() -> None:
    headers, body = structured(
        {"specversion": "1.0", "id": "p-1", "source": "/apis/v1/namespaces/ns/pingsources/nightly",
         "type": events.PING, "data": {"specId": "nightly"}, "attempt": 3, "urgent": True}
    )
    event = from_http(headers, body)
    assert event.data == {"specId": "nightly"}
    assert event.extensions == {"attempt": "3", "urgent": "true"}


def test_header_names_are_case_insensitive() -> None:
    event = from_http({k.upper(): v for k, v in BINARY.items()}, b"{}")
    assert event.id == "e-1"


def test_binary_mode_without_body_has_no_data() -> None:
    assert from_http(BINARY, b"").data is None


def test_binary_text_data_is_a_string_and_other_media_bytes() -> None:
    assert from_http({**BINARY, "Content-Type": "text/plain; charset=utf-8"}, "héllo".encode()).data == "héllo"
    assert from_http({**BINARY, "Content-Type": "application/octet-stream"}, b"\x00\x01").data == b"\x00\x01"


def test_structured_data_base64_decodes_to_bytes() -> None:
    headers, body = structured(
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data_base64": "AAE="}
    )
    assert from_http(headers, body).data == b"\x00\x01"


MALFORMED: list[tuple[str, dict[str, str], bytes, str]] = [
    ("binary missing id", without(BINARY, "ce-id"), b"{}", "missing required attribute(s): id"),
    ("binary missing source and type", without(without(BINARY, "ce-source"), "ce-type"), b"{}", "source, type"),
    ("binary missing specversion", without(BINARY, "ce-specversion"), b"{}", "specversion"),
    ("binary bad specversion", {**BINARY, "ce-specversion": "0.3"}, b"{}", "unsupported specversion '0.3'"),
    ("binary bad json data", BINARY, b"{not json", "data: not valid JSON"),
    ("binary +json data not json", {**BINARY, "Content-Type": "application/vnd.x+json"}, b"[1,", "not valid JSON"),
    ("binary bad time", {**BINARY, "ce-time": "yesterday"}, b"{}", "RFC 3339"),
    ("binary bad extension name", {**BINARY, "ce-Bad_Name": "x"}, b"{}", "attribute name"),
    ("binary text not utf-8", {**BINARY, "Content-Type": "text/plain"}, b"\xff\xfe", "not UTF-8"),
    ("structured not json", *structured({})[:1], b"{oops", "structured CloudEvent: not valid JSON"),
    ("structured array", *structured({})[:1], b"[1, 2]", "expected a JSON object, got list"),
    ("structured missing type", *structured({"specversion": "1.0", "id": "1", "source": "/s"}), "type"),
    ("structured empty id", *structured({"specversion": "1.0", "id": "", "source": "/s", "type": "t"}), "id"),
    ("structured bad specversion",
     *structured({"specversion": "2.0", "id": "1", "source": "/s", "type": "t"}), "unsupported specversion"),
    ("structured data and data_base64",
     *structured({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": 1, "data_base64": "AA=="}),
     "both data and data_base64"),
    ("structured bad base64",
     *structured({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data_base64": "!!"}), "base64"),
    ("structured object attribute",
     *structured({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "ext": {"a": 1}}), "attribute ext"),
    ("batch mode", {"Content-Type": "application/cloudevents-batch+json"}, b"[]", "batched"),
]


@pytest.mark.parametrize(("headers", "body", "reason"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_rejects_malformed_events_with_a_reason(headers: dict[str, str], body: bytes, reason: str) -> None:
    with pytest.raises(PermanentError) as info:
        from_http(headers, body)
    assert info.value.status == 400
    assert reason in info.value.message


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", ""])
def test_a_body_without_ce_headers_or_the_structured_media_type_is_unsupported_415(content_type: str) -> None:
    with pytest.raises(PermanentError, match="not a CloudEvent") as info:
        from_http({"Content-Type": content_type} if content_type else {}, b"{}")
    assert info.value.status == 415


def test_deeply_nested_data_is_refused_in_both_modes_and_kept_as_bytes_without_a_content_type() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(PermanentError, match="nested deeper than 64 levels"):
        from_http(BINARY, deep)
    with pytest.raises(PermanentError, match="nested deeper than 64 levels"):
        from_http({"Content-Type": "application/cloudevents+json"}, b'{"data":' + deep + b"}")
    untyped = without(BINARY, "Content-Type")
    assert from_http(untyped, deep).data == deep
    assert from_http(untyped, b'{"a": [[1]]}').data == {"a": [[1]]}


# --- writing and round trips ---------------------------------------------------------------


@pytest.mark.parametrize("structured_mode", [False, True], ids=["binary", "structured"])
@pytest.mark.parametrize(
    "data,content_type",
    [({"a": [1, 2.5, None]}, "application/json"), (None, "application/json"), ("plain text", "text/plain"),
     (b"\x00raw", "application/octet-stream"), ([1, 2], "application/vnd.x+json")],
    ids=["json", "none", "text", "bytes", "vendor-json"],
)
def test_round_trips_through_http(structured_mode: bool, data: Any, content_type: str) -> None:
    event = make_event(data=data, datacontenttype=content_type)
    assert from_http(*to_http(event, structured=structured_mode)) == event


def test_unmodelled_attributes_such_as_dataschema_round_trip_as_extensions() -> None:
    headers = {**BINARY, "ce-dataschema": "https://example.com/schema.json"}
    event = from_http(headers, b"{}")
    assert event.extensions == {"dataschema": "https://example.com/schema.json"}
    assert from_http(*to_http(event)) == event


def test_binary_mode_percent_encodes_header_values() -> None:
    event = make_event(source="/a b", extensions={"note": 'ü "50%"'})
    headers, _ = to_http(event)
    assert headers["ce-source"] == "/a%20b"
    assert headers["ce-note"].isascii()
    assert from_http(headers, b"{}").extensions == {"note": 'ü "50%"'}


def test_new_event_fills_id_and_time() -> None:
    a = new_event(events.RUN_REQUESTED, source="/jobplane/api", data={"specId": "s"}, subject="s")
    b = new_event(events.RUN_REQUESTED, source="/jobplane/api", data={"specId": "s"})
    assert a.id != b.id and len(a.id) == 36
    assert a.time is not None and a.time.endswith("Z")
    assert from_http(*to_http(a)) == a


def test_new_event_rejects_invalid_extension_names() -> None:
    with pytest.raises(PermanentError):
        new_event("t", source="/s", data=None, extensions={"Not-Valid": "x"})


# --- interoperability with the cloudevents SDK ---------------------------------------------


@pytest.mark.parametrize("convert", [ce_to_binary, ce_to_structured], ids=["binary", "structured"])
def test_reads_events_written_by_the_sdk(convert: Any) -> None:
    sdk_event = CloudEvent({"type": events.BOT_CHANGED, "source": "/platform", "subject": "bot-9", "rev": "4"},
                           {"botId": "bot-9"})
    headers, body = convert(sdk_event)
    event = from_http(headers, body)
    assert (event.type, event.subject, event.data, event.extensions) == (
        events.BOT_CHANGED, "bot-9", {"botId": "bot-9"}, {"rev": "4"})


@pytest.mark.parametrize("structured_mode", [False, True], ids=["binary", "structured"])
def test_sdk_reads_events_we_write(structured_mode: bool) -> None:
    headers, body = to_http(make_event(), structured=structured_mode)
    sdk_event = ce_from_http(headers, body)
    assert sdk_event["type"] == events.RUN_PROGRESS
    assert sdk_event["jobplanetoken"] == "abc123"
    assert sdk_event.data == {"seq": 3, "progress": 42.5, "phase": "train"}


# --- the sender, against a real HTTP server ------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    status = 202
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append((dict(self.headers.items()), body))
        payload = b"broker says no " * 100
        self.send_response(type(self).status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def broker() -> Iterator[tuple[str, type[Recorder]]]:
    handler = type("Handler", (Recorder,), {"received": [], "status": 202})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/default/default", handler
    server.shutdown()
    server.server_close()


def test_sender_posts_binary_mode(broker: tuple[str, type[Recorder]]) -> None:
    url, handler = broker
    event = make_event()
    events.http_sender(url)(event)
    [(headers, body)] = handler.received
    assert headers["ce-id"] == "ev-1" and headers["ce-jobplanetoken"] == "abc123"
    assert from_http(headers, body) == event


@pytest.mark.parametrize(
    "status,error", [(500, UnavailableError), (503, UnavailableError), (429, UnavailableError),
                     (400, PermanentError), (404, PermanentError)],
)
def test_sender_maps_refusals_to_error_kinds(
    broker: tuple[str, type[Recorder]], status: int, error: type[Exception]
) -> None:
    url, handler = broker
    handler.status = status
    with pytest.raises(error) as info:
        events.http_sender(url)(make_event())
    assert f"HTTP {status}" in str(info.value)
    assert len(str(info.value)) < 500, "remote body is cut short"
    if status < 500 and status != 429:
        assert not isinstance(info.value, UnavailableError)


def test_sender_connection_refused_is_unavailable(broker: tuple[str, type[Recorder]]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UnavailableError):
        events.http_sender(f"http://127.0.0.1:{port}/", timeout=2)(make_event())


def test_sender_without_url_is_unavailable() -> None:
    with pytest.raises(UnavailableError, match="JOBPLANE_SINK"):
        events.http_sender("")(make_event())
