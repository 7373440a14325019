"""Concurrency slots: one small object per (spec, bot) that names the run holding it.

A spec with ``concurrency: Forbid`` or ``Replace`` lets one run at a time per bot. The run that
launches takes the slot ``index/slots/{specId}/{botId}`` by a compare-and-swap on the object's
generation, so of two launches racing for it exactly one wins and the other reads the winner;
that one conditional write is all that must happen before the Job is created. It is made
durable beside the writes that follow the create, before the launch answers: a crash of the
machine before then loses nothing that was acknowledged, and the redelivery takes it again.
The slot is never cleared: a holder whose run record is terminal (or that never wrote one
within ``IN_FLIGHT_GRACE``, a launch that died) no longer holds it.

Stores written before slots existed have none (nor has a slot a crash cut short): the launch
then looks at the spec's active markers (``index/active/``) for rivals instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from . import runs
from .errors import NotFoundError
from .store.base import ObjectStore

log = logging.getLogger(__name__)

PREFIX: Final = "index/slots/"
NO_BOT: Final = "_"
"""The slot name of a spec that names no bot (bot ids are DNS labels: never ``_``)."""
IN_FLIGHT_GRACE: Final = timedelta(minutes=1)
"""How long a holder without a run record counts as launching (its record lands within
milliseconds of the Job's create); after that its launch died and the slot is free."""


@dataclass(frozen=True)
class Holder:
    """What a slot says: the run holding it, when that run was created, and the runs it
    replaced (superseded again by a redelivery, in case the first delivery died first)."""

    run: str
    created_at: str
    replaces: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        body = {"run": self.run, "createdAt": self.created_at, "replaces": list(self.replaces)}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def parse(cls, data: bytes) -> Holder:
        body = json.loads(data)
        return cls(run=str(body["run"]), created_at=str(body["createdAt"]), replaces=tuple(body.get("replaces") or ()))


@dataclass(frozen=True)
class Slot:
    """A slot as read: its holder (``None`` when there is no slot yet) and its generation
    (``0`` for none), the precondition of the swap that takes it."""

    key: str
    holder: Holder | None
    generation: int


def slot_key(run: Mapping[str, Any]) -> str:
    return f"{PREFIX}{run['specId']}/{run.get('botId') or NO_BOT}"


def read(store: ObjectStore, run: Mapping[str, Any]) -> Slot:
    key = slot_key(run)
    try:
        blob = store.read(key)
    except NotFoundError:
        return Slot(key, None, 0)
    try:
        return Slot(key, Holder.parse(blob.data), blob.generation)
    except (ValueError, KeyError, TypeError):  # cut short by a crash before its sync
        log.warning("slot %s is unreadable; the spec's active markers stand in for it", key)
        return Slot(key, None, blob.generation)


def take(store: ObjectStore, slot: Slot, run: Mapping[str, Any], *, replaces: Sequence[str] = (),
         durable: bool = True) -> None:
    """Make ``run`` the slot's holder if the slot is still as read
    (``PreconditionFailedError`` when another launch took it meanwhile: read it again).
    ``durable=False``: the caller syncs the slot (``store.sync``) before it answers."""
    holder = Holder(run=str(run["id"]), created_at=str(run["createdAt"]), replaces=tuple(replaces))
    store.write(slot.key, holder.to_json(), if_generation_match=slot.generation, durable=durable)


def in_flight(holder: Holder, *, now: datetime) -> bool:
    """Whether a holder with no run record may still be launching (else its launch died)."""
    return now - runs.parse_rfc3339(holder.created_at) < IN_FLIGHT_GRACE
