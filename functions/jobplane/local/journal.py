"""The embedded broker's delivery journal: every accepted event's deliveries, on disk first.

One SQLite file (stdlib ``sqlite3``, WAL, ``synchronous=NORMAL``: a commit survives the
process being killed, the fsync waits for a checkpoint) holds one row per (event, matching
Trigger) delivery with its attempt count and next-due time, so an event the ingress answered
202 for is delivered after any restart until a subscriber accepts it or the delivery policy
sends it to the dead-letter sink. A row goes through

    pending ──(retries spent / permanent 4xx)──► dead-letter ──(sink refused it too)──► dead
       ▲                                                                                 │
       └──────────────────────────────────(revive: replay)───────────────────────────────┘

and is deleted once a subscriber (or the dead-letter sink) took it. ``dead`` rows are kept
until replayed: the journal never forgets an accepted event on its own.

``":memory:"`` keeps the same rules for one process's lifetime (the broker's default).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .. import events as ev

PENDING: Final = "pending"
DEAD_LETTER: Final = "dead-letter"
"""Being sent to the Trigger's dead-letter sink."""
DEAD: Final = "dead"
"""The dead-letter sink refused it (or there is none): kept until replayed."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS deliveries (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    event   TEXT    NOT NULL,  -- the CloudEvent's structured-mode JSON
    type    TEXT    NOT NULL,
    trigger TEXT    NOT NULL,  -- the Trigger's name
    hops    INTEGER NOT NULL,  -- reply-chain length
    attempt INTEGER NOT NULL,
    due     REAL    NOT NULL,  -- wall-clock seconds of the next attempt
    state   TEXT    NOT NULL,
    detail  TEXT,              -- why it is dead
    created REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state, due, id);
"""


@dataclass(frozen=True)
class Row:
    """One delivery as the journal holds it."""

    id: int
    event: ev.Event
    trigger: str
    hops: int
    attempt: int
    due: float
    state: str
    detail: str | None = None
    created: float = 0.0


@dataclass(frozen=True)
class NewRow:
    event: ev.Event
    trigger: str
    hops: int = 0


class Journal:
    """The delivery rows behind one lock; every method is one transaction."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # callbacks in it carry their run's token: the owner's only (SQLite gives its -wal
            # and -shm files the database file's mode)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(self.path, 0o600)
        self._db = sqlite3.connect(self.path, check_same_thread=False)  # DML opens a transaction; `with` commits it
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    # --- writes ---

    def add(self, rows: Sequence[NewRow], *, finish: int | None = None) -> list[int]:
        """Insert ``rows`` (pending, due now) and, in the same commit, delete row ``finish``
        (a reply is kept before its parent delivery counts as done); the new ids."""
        now = time.time()
        values = [(_dump(r.event), r.event.type, r.trigger, r.hops, 1, now, PENDING, now) for r in rows]
        with self._lock, self._db:
            ids = [
                int(self._db.execute(
                    "INSERT INTO deliveries (event, type, trigger, hops, attempt, due, state, created)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", v).lastrowid or 0)
                for v in values
            ]
            if finish is not None:
                self._db.execute("DELETE FROM deliveries WHERE id = ?", (finish,))
        return ids

    def finish(self, row: int) -> None:
        """The delivery is done (a subscriber or the dead-letter sink took it)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM deliveries WHERE id = ?", (row,))

    def retry(self, row: int, *, attempt: int, due: float) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE deliveries SET attempt = ?, due = ? WHERE id = ?", (attempt, due, row))

    def to_dead_letter(self, row: int, *, event: ev.Event) -> None:
        """Retries spent: from now on the row sends ``event`` (with the error extensions) to the sink."""
        with self._lock, self._db:
            self._db.execute(
                "UPDATE deliveries SET event = ?, state = ?, attempt = 1, due = ? WHERE id = ?",
                (_dump(event), DEAD_LETTER, time.time(), row),
            )

    def bury(self, row: int, *, detail: str) -> None:
        """The dead-letter sink would not take it: keep it, dead, until replayed."""
        with self._lock, self._db:
            self._db.execute("UPDATE deliveries SET state = ?, detail = ? WHERE id = ?", (DEAD, detail, row))

    def revive(self, row: int) -> Row | None:
        """A dead row back to pending (attempt 1, due now); None unless it was dead (so two
        replays of one row cannot both send it)."""
        with self._lock, self._db:
            cur = self._db.execute(
                "UPDATE deliveries SET state = ?, attempt = 1, due = ?, detail = NULL WHERE id = ? AND state = ?",
                (PENDING, time.time(), row, DEAD),
            )
            if cur.rowcount != 1:
                return None
            found = self._select("WHERE id = ?", (row,))
        return found[0] if found else None

    # --- reads ---

    def unfinished(self) -> list[Row]:
        """Rows still to deliver (pending or dead-lettering), oldest due first."""
        with self._lock:
            return self._select("WHERE state IN (?, ?) ORDER BY due, id", (PENDING, DEAD_LETTER))

    def dead(self, *, limit: int | None = None) -> list[Row]:
        with self._lock:
            return self._select("WHERE state = ? ORDER BY id LIMIT ?", (DEAD, -1 if limit is None else limit))

    def counts(self) -> dict[str, int]:
        """Rows per state."""
        with self._lock:
            found = self._db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall()
        return {str(state): int(n) for state, n in found}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _select(self, where: str, args: Iterable[object]) -> list[Row]:
        cur = self._db.execute(
            f"SELECT id, event, trigger, hops, attempt, due, state, detail, created FROM deliveries {where}", tuple(args)
        )
        return [
            Row(id=i, event=_load(e), trigger=t, hops=h, attempt=a, due=d, state=s, detail=x, created=c)
            for i, e, t, h, a, d, s, x, c in cur.fetchall()
        ]


def _dump(event: ev.Event) -> str:
    return json.dumps(ev.to_dict(event), separators=(",", ":"))


def _load(text: str) -> ev.Event:
    return ev.from_dict(json.loads(text))
