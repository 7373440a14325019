"""Dead letters, listed and replayed: what the broker gave up on, sent through it once more.

Two places hold them: the store, under ``deadletter/{date}/{source-hash}-{id}.json`` (the
dead-letter function writes one per event the Broker dead-lettered), and, in the embedded
plane, the broker's own journal (``dead`` rows: the dead-letter sink refused them too).

A replay sends the original event (the ``knativeerror*`` extensions the broker added taken
off, ``source`` and ``id`` kept) to the broker, so the functions see a redelivery and absorb
it as one. A stored record is marked ``replayedAt`` before it is sent, by a write conditioned
on the generation just read, so two replays cannot both send it; if sending fails the mark is
taken back. A replayed event that fails again is dead-lettered again and replaces its record.

Store ids are ``{date}.{name}`` (the key's day folder and file name): path-safe and mapped
back to exactly one key under ``deadletter/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from . import conventions as c
from . import events as ev
from . import tokens
from .errors import ConflictError, NotFoundError, PreconditionFailedError
from .runtime import BrokerAdmin
from .store.base import ObjectStore

PREFIX: Final = "deadletter/"
BROKER_PREFIX: Final = "broker-"
"""Ids of the embedded broker's dead rows (``broker-{row}``)."""
ERROR_EXTENSIONS: Final = ("knativeerrorcode", "knativeerrordata", "knativeerrordest")
MAX_REPLAY: Final = 1000
"""Most dead letters one replay-all call sends; it says when more are left."""
_STORE_ID: Final = re.compile(r"^(\d{4}-\d{2}-\d{2})\.([A-Za-z0-9_-][A-Za-z0-9._-]{0,200})$")

REPLAY_TOKEN_TTL: Final = timedelta(hours=1)
CALLBACK_TYPES: Final = frozenset({ev.RUN_PROGRESS, ev.RUN_SUCCEEDED, ev.RUN_FAILED})

Send = Callable[[ev.Event], None]


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_token: str | None


def store_id(key: str) -> str:
    """``deadletter/2026-03-01/ab12-evt.json`` → ``2026-03-01.ab12-evt``."""
    day, _, name = key.removeprefix(PREFIX).partition("/")
    return f"{day}.{name.removesuffix('.json')}"


def is_store_id(dead_id: str) -> bool:
    """Whether ``dead_id`` is a stored dead letter's id (a page token of the listing)."""
    return _STORE_ID.match(dead_id) is not None and ".." not in dead_id


def store_key(dead_id: str) -> str:
    """The key of a store id; ``NotFoundError`` for anything that is not one."""
    match = _STORE_ID.match(dead_id)
    if match is None or ".." in dead_id:
        raise NotFoundError(f"no dead letter {dead_id!r}")
    return f"{PREFIX}{match.group(1)}/{match.group(2)}.json"


def original_event(obj: Mapping[str, Any], *, key: bytes = b"", now: datetime | None = None) -> ev.Event:
    """The event as first sent: the broker's error extensions off, everything else as kept; a
    run callback whose token was redacted gets a fresh one when ``key`` is given."""
    event = ev.from_dict({k: v for k, v in obj.items() if k not in ERROR_EXTENSIONS})
    redacted = event.extensions.get(c.TOKEN_EXTENSION) == ev.REDACTED
    if not (key and now and redacted and event.type in CALLBACK_TYPES and event.subject):
        return event
    token = tokens.callback_token(key, event.subject, expires=int((now + REPLAY_TOKEN_TTL).timestamp()))
    return ev.Event(type=event.type, source=event.source, id=event.id, data=event.data, subject=event.subject,
                    time=event.time, datacontenttype=event.datacontenttype,
                    extensions={**event.extensions, c.TOKEN_EXTENSION: token})


# --- listing --------------------------------------------------------------------------------------


def list_dead_letters(store: ObjectStore, *, broker: BrokerAdmin | None, limit: int, token: str = "") -> Page:
    """The broker's dead rows (first page only), then the stored dead letters in key order."""
    items = [_summary(d) for d in broker.dead_letters()] if broker is not None and not token else []
    after = store_key(token) if token else ""
    keys = list(store.list(PREFIX, start_after=after, limit=limit + 1))
    for key in keys[:limit]:
        items.append(_summary(_stored(store, key)))
    return Page(items=items, next_token=store_id(keys[limit - 1]) if len(keys) > limit else None)


def _stored(store: ObjectStore, key: str) -> dict[str, Any]:
    record = json.loads(store.read(key).data)
    return {"id": store_id(key), "where": "store", **record, "replayedAt": record.get("replayedAt")}


def _summary(d: Mapping[str, Any]) -> dict[str, Any]:
    event = d.get("event") or {}
    return {
        "id": d["id"], "where": d["where"], "type": event.get("type"), "source": event.get("source"),
        "eventId": event.get("id"), "subject": event.get("subject"), "receivedAt": d.get("receivedAt"),
        "error": d.get("error"), "replayedAt": d.get("replayedAt"),
        **({"trigger": d["trigger"]} if d.get("trigger") else {}),
    }


# --- replaying ----------------------------------------------------------------------------------


def replay(store: ObjectStore, send: Send, dead_id: str, *, broker: BrokerAdmin | None, now: datetime,
           key: bytes = b"") -> None:
    """Replay one dead letter; ``NotFoundError`` if there is none, ``ConflictError`` if it
    was replayed already."""
    if dead_id.startswith(BROKER_PREFIX):
        row = dead_id.removeprefix(BROKER_PREFIX)
        if broker is None or not row.isdigit():
            raise NotFoundError(f"no dead letter {dead_id!r}")
        if not broker.replay_dead(int(row)):
            raise ConflictError(f"dead letter {dead_id!r} is not dead any more: replayed already, or no such row")
        return
    if not _replay_stored(store, send, store_key(dead_id), now=now, key=key):
        raise ConflictError(f"dead letter {dead_id!r} was replayed already")


def replay_all(store: ObjectStore, send: Send, *, broker: BrokerAdmin | None, now: datetime,
               key: bytes = b"") -> tuple[list[str], bool]:
    """Replay every dead letter not replayed yet (at most ``MAX_REPLAY``); (ids, more left)."""
    done: list[str] = []
    for d in broker.dead_letters(limit=MAX_REPLAY) if broker is not None else []:
        if broker is not None and broker.replay_dead(int(d["id"].removeprefix(BROKER_PREFIX))):
            done.append(d["id"])
    for stored in store.list(PREFIX):
        if len(done) >= MAX_REPLAY:
            return done, True
        if _replay_stored(store, send, stored, now=now, key=key):
            done.append(store_id(stored))
    return done, False


def _replay_stored(store: ObjectStore, send: Send, stored: str, *, now: datetime, key: bytes) -> bool:
    """Mark, then send; False when it was replayed already (or is being, by someone else)."""
    blob = store.read(stored)
    record = json.loads(blob.data)
    if record.get("replayedAt"):
        return False
    marked = {**record, "replayedAt": ev.now_rfc3339(now)}
    try:
        generation = store.write(stored, _dump(marked), if_generation_match=blob.generation)
    except PreconditionFailedError:
        return False
    try:
        send(original_event(record["event"], key=key, now=now))
    except Exception:
        store.write(stored, _dump(record), if_generation_match=generation)  # replayable again
        raise
    return True


def _dump(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, indent=1).encode()
