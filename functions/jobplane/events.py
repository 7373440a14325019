"""CloudEvents as the plane speaks them: the event types, one immutable ``Event``, HTTP binding.

Every function receives events from the broker (binary or structured mode) and some answer
with a reply event; the trainer and the API send events to the broker. Parsing lives here,
once, so that every endpoint rejects malformed input with the same clear reason (a
``PermanentError``, answered 400 and dead-lettered rather than retried).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote, unquote

from .errors import PermanentError, UnavailableError, UnsupportedMediaTypeError, short
from .limits import check_depth, too_deep

BOT_CHANGED: Final = "dev.jobplane.bot.changed"
PING: Final = "dev.knative.sources.ping"
RETENTION_PING_FIELD: Final = "retention"
"""A ping whose data has this field (``{"retention": "sweep"}``, eventing/pingsource_retention.yaml)
makes the reconcile function sweep a page of what the retention policy no longer keeps
(``jobplane.retention``); like the reconciler's own tick it sinks straight to that Service."""
RUN_REQUESTED: Final = "dev.jobplane.run.requested"
RUN_LAUNCHED: Final = "dev.jobplane.run.launched"
RUN_PROGRESS: Final = "dev.jobplane.run.progress"
RUN_SUCCEEDED: Final = "dev.jobplane.run.succeeded"
RUN_FAILED: Final = "dev.jobplane.run.failed"
MODEL_READY: Final = "dev.jobplane.model.ready"

SPECVERSION: Final = "1.0"
JSON: Final = "application/json"
STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
REQUIRED: Final = ("specversion", "id", "source", "type")
CONTEXT: Final = ("specversion", "id", "source", "type", "subject", "time", "datacontenttype")
"""Attributes ``Event`` has fields for; any other (``dataschema`` too) travels in ``extensions``."""
_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


@dataclass(frozen=True)
class Event:
    """One CloudEvent (specversion 1.0). ``data`` is the decoded payload: a JSON value when
    ``datacontenttype`` is JSON, ``str`` for ``text/*``, else ``bytes``."""

    type: str
    source: str
    id: str
    data: Any = None
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = JSON
    extensions: Mapping[str, str] = field(default_factory=dict)

    def attributes(self) -> dict[str, str]:
        """The context attributes (required, optional set, extensions) as strings."""
        attrs = {"specversion": SPECVERSION, "id": self.id, "source": self.source, "type": self.type}
        for name in ("subject", "time", "datacontenttype"):
            value = getattr(self, name)
            if value is not None:
                attrs[name] = value
        attrs.update(self.extensions)
        return attrs


def now_rfc3339(now: datetime | None = None) -> str:
    """RFC 3339 UTC timestamp with a ``Z``, as CloudEvents' ``time`` wants."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event(
    type: str,
    *,
    source: str,
    data: Any,
    subject: str | None = None,
    extensions: Mapping[str, str] | None = None,
    id: str | None = None,
    time: datetime | None = None,
) -> Event:
    """A fresh JSON event: a uuid4 ``id`` unless given, ``time`` now (or ``time``)."""
    exts = dict(extensions or {})
    for name in exts:
        _check_name(name)
    return Event(
        type=type,
        source=source,
        id=id or str(uuid.uuid4()),
        data=data,
        subject=subject,
        time=now_rfc3339(time),
        extensions=exts,
    )


def is_json(content_type: str | None) -> bool:
    """``application/json``, ``text/json`` or any ``…+json`` media type (parameters ignored)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media in (JSON, "text/json") or media.endswith("+json")


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise PermanentError(
            f"attribute name {name!r} is invalid: CloudEvents names are 1-20 lowercase letters or digits"
        )


# --- parsing --------------------------------------------------------------------------------


def from_http(headers: Mapping[str, str], body: bytes) -> Event:
    """Parse an HTTP request in binary or structured mode; ``PermanentError`` says what is wrong."""
    lowered = {k.lower(): v for k, v in headers.items()}
    media = _media(lowered.get("content-type"))
    if media == BATCH:
        raise PermanentError("batched CloudEvents (application/cloudevents-batch+json) are not supported")
    if media == STRUCTURED or (media.startswith("application/cloudevents") and media.endswith("+json")):
        return _from_structured(body)
    if not any(k.startswith("ce-") for k in lowered):
        raise UnsupportedMediaTypeError(
            "not a CloudEvent: no ce-* headers (binary mode) and content type "
            f"{media or 'missing'!r} is not {STRUCTURED} (structured mode)"
        )
    return _from_binary(lowered, body)


def _from_binary(headers: Mapping[str, str], body: bytes) -> Event:
    attrs: dict[str, str] = {}
    for key, value in headers.items():
        if key.startswith("ce-"):
            name = key[3:]
            _check_name(name)
            attrs[name] = unquote(value)
    content_type = headers.get("content-type") or None
    _check_context(attrs)
    data = _decode_body(body, content_type)
    return _build(attrs, data, content_type)


def _decode_body(body: bytes, content_type: str | None) -> Any:
    if not body:
        return None
    if is_json(content_type):
        return _loads(body, "data")
    if content_type is None:
        if too_deep(body):
            return body  # read as JSON only where nesting is sane; else it stays bytes
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return body
    if _media(content_type).startswith("text/"):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise PermanentError(f"data: declared {content_type!r} but is not UTF-8: {e}") from e
    return body


def _loads(raw: bytes | str, what: str) -> Any:
    check_depth(raw, what)
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PermanentError(f"{what}: not valid JSON ({e}): {short(raw, 80)}") from e


def _from_structured(body: bytes) -> Event:
    obj = _loads(body, "structured CloudEvent")
    if not isinstance(obj, dict):
        raise PermanentError(f"structured CloudEvent: expected a JSON object, got {type(obj).__name__}")
    return from_dict(obj)


def from_dict(obj: Mapping[str, Any]) -> Event:
    """An event from its JSON form (structured mode's body)."""
    if "data" in obj and "data_base64" in obj:
        raise PermanentError("structured CloudEvent: has both data and data_base64")
    attrs: dict[str, str] = {}
    for name, value in obj.items():
        if name in ("data", "data_base64"):
            continue
        _check_name(name)
        attrs[name] = _attr_string(name, value)
    _check_context(attrs)
    content_type = attrs.get("datacontenttype")
    return _build(attrs, _structured_data(obj), content_type)


def _attr_string(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    raise PermanentError(f"attribute {name}: expected a string, integer or boolean, got {type(value).__name__}")


def _structured_data(obj: Mapping[str, Any]) -> Any:
    if "data_base64" in obj:
        raw = obj["data_base64"]
        try:
            return base64.b64decode(raw, validate=True) if isinstance(raw, str) else _bad_b64(raw)
        except ValueError as e:
            raise PermanentError(f"data_base64: not valid base64: {e}") from e
    return obj.get("data")


def _bad_b64(raw: Any) -> bytes:
    raise PermanentError(f"data_base64: expected a base64 string, got {type(raw).__name__}")


def _check_context(attrs: Mapping[str, str]) -> None:
    missing = [name for name in REQUIRED if not attrs.get(name)]
    if missing:
        raise PermanentError(f"CloudEvent is missing required attribute(s): {', '.join(missing)}")
    if attrs["specversion"] != SPECVERSION:
        raise PermanentError(f"unsupported specversion {attrs['specversion']!r}: expected {SPECVERSION!r}")
    time = attrs.get("time")
    if time is not None and not _RFC3339.match(time):
        raise PermanentError(f"attribute time: expected an RFC 3339 timestamp, got {short(time, 60)!r}")


def _build(attrs: Mapping[str, str], data: Any, content_type: str | None) -> Event:
    return Event(
        type=attrs["type"],
        source=attrs["source"],
        id=attrs["id"],
        data=data,
        subject=attrs.get("subject"),
        time=attrs.get("time"),
        datacontenttype=content_type,
        extensions={k: v for k, v in attrs.items() if k not in CONTEXT},
    )


# --- secrets --------------------------------------------------------------------------------

SECRET_EXTENSION: Final = re.compile(r"token|auth|secret|passw|credential|signature|apikey|cookie|session")
"""Extension names whose values are secrets (the callback token ``jobplanetoken``, anything
like an Authorization header): never stored or logged."""
REDACTED: Final = "[redacted]"


def redacted(event: Event) -> Event:
    """``event`` with every secret-looking extension's value replaced by ``REDACTED``."""
    if not any(SECRET_EXTENSION.search(name) for name in event.extensions):
        return event
    exts = {k: REDACTED if SECRET_EXTENSION.search(k) else v for k, v in event.extensions.items()}
    return Event(type=event.type, source=event.source, id=event.id, data=event.data, subject=event.subject,
                 time=event.time, datacontenttype=event.datacontenttype, extensions=exts)


# --- writing --------------------------------------------------------------------------------


def to_dict(event: Event) -> dict[str, Any]:
    """The event's JSON form (structured mode's body)."""
    obj: dict[str, Any] = dict(event.attributes())
    if event.data is None:
        return obj
    if isinstance(event.data, bytes | bytearray):
        obj["data_base64"] = base64.b64encode(bytes(event.data)).decode("ascii")
    else:
        obj["data"] = event.data
    return obj


def to_http(event: Event, *, structured: bool = False) -> tuple[dict[str, str], bytes]:
    """Headers and body for an HTTP request or response carrying ``event``."""
    if structured:
        body = json.dumps(to_dict(event), separators=(",", ":")).encode()
        return {"Content-Type": STRUCTURED}, body
    headers = {f"ce-{name}": _quote(value) for name, value in event.attributes().items() if name != "datacontenttype"}
    if event.datacontenttype:
        headers["Content-Type"] = event.datacontenttype
    return headers, _encode_body(event)


def _quote(value: str) -> str:
    """Percent-encode what the HTTP binding says must be: non-printable-ASCII, space, ``"``, ``%``."""
    return quote(value, safe="!#$&'()*+,/:;<=>?@[\\]^_`{|}~-.")


def _encode_body(event: Event) -> bytes:
    data = event.data
    if data is None:
        return b""
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    if isinstance(data, str) and not is_json(event.datacontenttype) and event.datacontenttype:
        return data.encode("utf-8")
    return json.dumps(data, separators=(",", ":")).encode()


# --- sending --------------------------------------------------------------------------------


def http_sender(url: str, *, timeout: float = 10.0, headers: Mapping[str, str] | None = None) -> Callable[[Event], None]:
    """A function that POSTs an event to ``url`` (the broker) in binary mode.

    Connection errors, timeouts, 5xx and 429 raise ``UnavailableError`` (retry later); any
    other 4xx raises ``PermanentError`` (the broker refused this event for good).
    """
    import requests

    local = threading.local()  # a Session per thread: connection reuse without sharing one

    def send(event: Event) -> None:
        if not url:
            raise UnavailableError("cannot send event: no broker URL configured (JOBPLANE_SINK)")
        event_headers, body = to_http(event)
        session = getattr(local, "session", None) or _new_session(local)
        try:
            response = session.post(url, data=body, headers={**event_headers, **(headers or {})}, timeout=timeout)
        except requests.RequestException as e:
            raise UnavailableError(f"sending {event.type} to {url} failed: {short(str(e))}") from e
        _check_response(response.status_code, response.content, url=url, event=event)

    return send


def _new_session(local: threading.local) -> Any:
    import requests

    local.session = requests.Session()
    return local.session


def _check_response(status: int, body: bytes, *, url: str, event: Event) -> None:
    if status < 300:
        return
    what = f"sending {event.type} {event.id} to {url}: HTTP {status}: {short(body)}"
    if status >= 500 or status == 429:
        raise UnavailableError(what)
    raise PermanentError(what)
