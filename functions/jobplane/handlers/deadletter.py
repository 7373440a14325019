"""The dead-letter function: the Broker's last stop for an event no subscriber would take.

Knative sends an event here once its retries are spent (or at once, when the subscriber
answered a permanent 4xx), adding why in extension attributes: ``knativeerrorcode`` (the last
HTTP status), ``knativeerrordest`` (the subscriber's URL) and ``knativeerrordata`` (the start of
its response body, base64). Each delivery becomes one object under
``deadletter/{date}/{source-hash}-{id}.json`` so an operator can see what was lost and replay
it. The key derives from the event alone and the write is create-only, so a redelivered dead
letter finds its record and succeeds (never 409 or 412, which the broker would retry); one
that was replayed (``jobplane deadletter replay``, see ``deadletters.py``) and failed again
replaces its record, replayable once more.
Secret extensions (``jobplanetoken``, anything like Authorization) are redacted before the write,
and the filesystem store writes every object mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import flask

from .. import deadletters, metrics
from .. import events as ev
from ..errors import PreconditionFailedError, short
from ..runtime import Runtime
from ..store.base import ObjectStore
from .common import event_endpoint

log = logging.getLogger(__name__)

PREFIX: Final = deadletters.PREFIX
ERROR_CODE: Final = "knativeerrorcode"
ERROR_DATA: Final = "knativeerrordata"
ERROR_DEST: Final = "knativeerrordest"
MAX_ERROR_TEXT: Final = 4096
"""Cut the subscriber's response body (Knative already sends only its start)."""
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt]")


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    """Record the dead-lettered event; 204 whether it is new or a redelivery."""
    return event_endpoint(request, lambda event: _record(event, rt=rt))


def _record(event: ev.Event, *, rt: Runtime) -> None:
    record_dead_letter(rt.store, event, now=rt.clock())


def record_dead_letter(store: ObjectStore, event: ev.Event, *, now: datetime) -> tuple[str, bool]:
    """Store ``event`` with the broker's error attributes; (key, True) if written now, (key,
    False) if an earlier delivery of the same event was already recorded."""
    key = dead_letter_key(event, now=now)
    body = json.dumps(dead_letter_record(event, now=now), sort_keys=True, indent=1).encode()
    try:
        store.write(key, body, if_generation_match=0)
    except PreconditionFailedError:
        if not _replace_replayed(store, key, body):
            log.info("dead letter %s already recorded", key)
            return key, False
    metrics.dead_lettered(event.type)
    log.warning(
        "dead letter: %s from %s (id %s) failed at %s with %s",
        event.type, event.source, event.id, event.extensions.get(ERROR_DEST), event.extensions.get(ERROR_CODE),
    )
    return key, True


def _replace_replayed(store: ObjectStore, key: str, body: bytes) -> bool:
    """Overwrite the record at ``key`` if it was replayed (the replay failed again)."""
    blob = store.read(key)
    if not json.loads(blob.data).get("replayedAt"):
        return False
    try:
        store.write(key, body, if_generation_match=blob.generation)
    except PreconditionFailedError:
        return False
    return True


def dead_letter_key(event: ev.Event, *, now: datetime) -> str:
    """``deadletter/{YYYY-MM-DD}/{source-hash}-{id}.json``; the date is the event's own
    ``time`` when it has one (stable across redeliveries), else the day it arrived."""
    match = _DATE.match(event.time or "")
    day = match.group(1) if match else now.date().isoformat()
    source_hash = hashlib.sha256(event.source.encode()).hexdigest()[:16]
    event_id = event.id if _SAFE_ID.match(event.id) else hashlib.sha256(event.id.encode()).hexdigest()[:32]
    return f"{PREFIX}{day}/{source_hash}-{event_id}.json"


def dead_letter_record(event: ev.Event, *, now: datetime) -> dict[str, Any]:
    """What was lost and why: the whole event, its secrets redacted (a callback's token:
    a replayed callback is refused, as a forged one), and the decoded error."""
    return {
        "receivedAt": ev.now_rfc3339(now),
        "error": error_of(event.extensions),
        "event": ev.to_dict(ev.redacted(event)),
    }


def error_of(extensions: Mapping[str, str]) -> dict[str, Any]:
    """The broker's error attributes, ``knativeerrordata`` decoded to text where it is text."""
    code = extensions.get(ERROR_CODE)
    return {
        "code": int(code) if code and code.isdigit() else code,
        "destination": extensions.get(ERROR_DEST),
        "response": decode_error_data(extensions.get(ERROR_DATA)),
    }


def decode_error_data(raw: str | None) -> str | None:
    """Base64 → UTF-8 text (cut short); the raw value when it is not valid base64."""
    if raw is None:
        return None
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return short(raw, MAX_ERROR_TEXT)
    return short(data, MAX_ERROR_TEXT)
