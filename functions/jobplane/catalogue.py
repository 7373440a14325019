"""The CloudEvents catalogue: every event type jobplane takes or emits, served at ``/v1/events``.

Each entry names who sends it to whom, its ``subject``, and its ``dataschema``: a URL the API
serves (``/v1/events/{type}/schema``) with the data's JSON Schema from ``schemas/jobplane.json``,
the same definition the plane validates that data with. Pure: functions returning dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from . import events as ev
from . import schemas
from .errors import NotFoundError

SCHEMA_PATH: Final = "/v1/events/{type}/schema"
ASYNCAPI_PATH: Final = "/v1/asyncapi.json"
ASYNCAPI_VERSION: Final = "3.0.0"


@dataclass(frozen=True)
class EventType:
    type: str
    producer: str
    consumer: str
    subject: str
    summary: str
    direction: str
    """``consumed`` (jobplane takes it), ``emitted`` (jobplane sends it) or ``internal`` (both)."""


EVENTS: Final[tuple[EventType, ...]] = (
    EventType(ev.BOT_CHANGED, "platform", "launch", "bot id",
              "A bot's training data or knowledge base changed: train it and/or re-index it.", "consumed"),
    EventType(ev.PING, "PingSource (/apis/v1/namespaces/NS/pingsources/NAME)", "launch", "none",
              "A scheduled spec's tick.", "consumed"),
    EventType(ev.RUN_REQUESTED, "api, platform, launch (fan-out, kb beside training)", "launch", "spec id",
              "Run a stored spec (with params overrides) or an inline spec.", "internal"),
    EventType(ev.RUN_LAUNCHED, "launch (reply)", "status", "run id",
              "The run's Job was created: the run record's summary.", "emitted"),
    EventType(ev.RUN_PROGRESS, "trainer (the run's Job)", "status", "run id",
              "Progress, phase, ETA and interim metrics; ordered by seq.", "internal"),
    EventType(ev.RUN_SUCCEEDED, "trainer (the run's Job)", "status", "run id",
              "Results: metrics and artifact URIs; the status function promotes the model.", "internal"),
    EventType(ev.RUN_FAILED, "trainer, launch", "status", "run id",
              "Failed for good: reason and message (a failed bot test keeps its figures).", "internal"),
    EventType(ev.MODEL_READY, "status (reply)", "predict", "bot id",
              "A bot's promoted model changed: its URI and metrics.", "emitted"),
)


def schema_url(event_type: str) -> str:
    return SCHEMA_PATH.replace("{type}", event_type)


def catalogue() -> dict[str, Any]:
    """``{"specversion", "events": [{type, producer, consumer, subject, summary, direction,
    datacontenttype, dataschema}]}``."""
    return {"specversion": ev.SPECVERSION, "events": [
        {**asdict(e), "datacontenttype": ev.JSON, "dataschema": schema_url(e.type)} for e in EVENTS]}


def data_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of ``event_type``'s data; ``NotFoundError`` for a type not in the catalogue."""
    name = schemas.EVENT_DATA.get(event_type)
    if name is None:
        raise NotFoundError(f"no event type {event_type!r}; GET /v1/events lists them")
    doc = schemas.standalone(name)
    doc["title"] = f"{event_type} data"
    return doc


def by_type() -> Mapping[str, EventType]:
    return {e.type: e for e in EVENTS}


def asyncapi(version: str) -> dict[str, Any]:
    """The catalogue as an AsyncAPI 3.0 document: a channel and a message per event type, an
    operation per direction (``receive``: jobplane takes it; ``send``: jobplane emits it)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for e in EVENTS:
        name = _camel(e.type)
        messages[name] = {
            "name": e.type, "title": e.type, "summary": e.summary, "contentType": ev.JSON,
            "payload": {"$ref": f"#/components/schemas/{schemas.EVENT_DATA[e.type]}"},
            "description": f"From {e.producer} to {e.consumer}; subject: {e.subject}. A CloudEvent "
                           f"(specversion {ev.SPECVERSION}, binary or structured mode) whose data is the payload.",
        }
        channels[name] = {"address": e.type, "messages": {name: {"$ref": f"#/components/messages/{name}"}}}
        actions = {"consumed": ["receive"], "emitted": ["send"]}.get(e.direction, ["receive", "send"])
        for action in actions:
            operations[f"{action}{name[0].upper()}{name[1:]}"] = {
                "action": action, "channel": {"$ref": f"#/channels/{name}"},
                "messages": [{"$ref": f"#/channels/{name}/messages/{name}"}]}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": "jobplane CloudEvents", "version": version,
                 "description": "The CloudEvents jobplane takes and emits through the broker."},
        "defaultContentType": ev.JSON,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": _asyncapi_schemas()},
    }


def _asyncapi_schemas() -> dict[str, Any]:
    """The definitions as AsyncAPI schemas (JSON Schema draft 7 with a string ``discriminator``:
    the OpenAPI-style mapping is dropped, ``oneOf`` says the same)."""
    found = schemas.components()
    for schema in found.values():
        schema.pop("discriminator", None)
    return found


def _camel(event_type: str) -> str:
    """``dev.jobplane.run.progress`` → ``runProgress`` (``dev.knative.sources.ping`` → ``sourcesPing``)."""
    first, *rest = event_type.split(".")[2:]
    return first + "".join(part.capitalize() for part in rest)
