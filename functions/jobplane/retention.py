"""The retention sweep: deletes what the retention policy (docs/scaling.md) no longer keeps, a
page at a time, oldest first.

Every run has an entry in the oldest-first index ``index/created/{millis}-{runId}``
(``runs.listing_keys``). Two stages walk it, each behind its own horizon, from a cursor kept in
``retention/cursor.json`` (written with a generation precondition):

- ``artifacts`` (runs older than ``artifacts_days``): the run's artifacts go, with the cache entry
  naming it and the training data revisions (``bots/{botId}/data/``) no kept run names; the record
  stays and says so (``artifactsRetiredAt``);
- ``records`` (runs older than ``records_days``): everything of the run goes: record, progress log,
  artifacts, listing entries (readers already pass over a listing entry without a record).

A run is **kept** while it is active, named by its bot's ``model.json`` or ``index.json``, or one of
its training spec's last ``keep_trainings`` succeeded runs. A kept run is noted under
``retention/kept/{specId}.json`` and judged again whenever a later run of that spec passes a
stage, so a run that stops being kept (a newer model promoted) still goes.

Every step is idempotent (deleting what is gone already is fine), so a sweep cut short, or two
at once, leave nothing half-done that the next one does not finish: the loser of the race for
the cursor reports ``raced`` and changes nothing more. Records already there before the
``index/created/`` entries existed are entered once by the ``backfill`` stage.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from . import conventions as c
from . import cache, runs
from .errors import NotFoundError, PermanentError, PreconditionFailedError
from .settings import RetentionPolicy
from .store import split_uri
from .store.base import ObjectStore

log = logging.getLogger(__name__)

CURSOR_KEY: Final = "retention/cursor.json"
KEPT_PREFIX: Final = "retention/kept/"
BACKFILLED: Final = "done"
DATA_PARAMS: Final = ("trainingData", "testData", "knowledgeBase")
"""Run params naming data by ``{"uri"}``."""
SCAN: Final = 500
"""Most listing entries of one spec read to tell its kept runs or the data its recent runs name;
beyond, the sweep keeps the data (it cannot tell)."""
CAS_ATTEMPTS: Final = 5
BACKFILL_PAGES: Final = 10
"""The backfill enters this many pages' worth of runs a sweep (one create-only write each)."""


@dataclass
class Report:
    """What one sweep did (or, dry, would do)."""

    dry_run: bool
    deleted: list[str] = field(default_factory=list)
    """Object keys deleted, in order."""
    runs_deleted: list[str] = field(default_factory=list)
    artifacts_retired: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)
    """Run id → why it was kept."""
    backfilled: int = 0
    cursor: dict[str, str] = field(default_factory=dict)
    raced: bool = False
    """Another sweep moved the cursor meanwhile: this one's deletions stand, its cursor does not."""


def sweep(store: ObjectStore, policy: RetentionPolicy, *, now: datetime, dry_run: bool = False,
          budget_s: float | None = None) -> Report:
    """One bounded sweep: a page of backfill until it is done, then a page of each stage; with
    ``budget_s``, it stops judging after that many seconds and keeps the cursor where it got
    (the reconcile function's request must end within its Service's timeout)."""
    cursor, generation = _read_cursor(store)
    s = _Sweep(store, policy, now=now, dry_run=dry_run, deadline=None if budget_s is None else time.monotonic() + budget_s)
    if cursor.get("backfill") != BACKFILLED:
        cursor["backfill"] = s.backfill(cursor.get("backfill", ""))
    if cursor["backfill"] == BACKFILLED:  # not before: a run entered later could sort behind the cursors
        cursor["records"] = s.stage("records", after=cursor.get("records", ""))
        cursor["artifacts"] = s.stage("artifacts", after=max(cursor.get("artifacts", ""), cursor["records"]))
    s.flush_notes()
    s.report.cursor = cursor
    if not dry_run:
        try:
            store.write(CURSOR_KEY, json.dumps(cursor, sort_keys=True).encode(), if_generation_match=generation)
        except PreconditionFailedError:
            s.report.raced = True
    return s.report


def _read_cursor(store: ObjectStore) -> tuple[dict[str, str], int]:
    try:
        blob = store.read(CURSOR_KEY)
    except NotFoundError:
        return {}, 0
    return dict(json.loads(blob.data)), blob.generation


class _Sweep:
    """One sweep's work and what it has read (each pointer, spec and listing once)."""

    def __init__(self, store: ObjectStore, policy: RetentionPolicy, *, now: datetime, dry_run: bool,
                 deadline: float | None = None) -> None:
        self.store, self.policy, self.dry, self.deadline = store, policy, dry_run, deadline
        self.report = Report(dry_run=dry_run)
        now_ms = int(now.timestamp() * 1000)
        self.now = now
        self.horizon = {"records": now_ms - policy.records_days * 86_400_000,
                        "artifacts": now_ms - policy.artifacts_days * 86_400_000}
        self._pointers: dict[str, set[str]] = {}
        self._trainings: dict[str, set[str]] = {}
        self._data_in_use: dict[str, set[str] | None] = {}
        self._notes: dict[str, dict[str, str]] = {}
        """Spec id → run id → created key: kept runs to note, "" to drop from the note."""
        self._rejudged: set[str] = set()
        self._listed: dict[str, tuple[list[runs.Run], bool]] = {}
        """Spec id → its runs read so far, newest first, and whether its listing had more than ``SCAN``."""
        self._pending: dict[str, list[str]] = {}

    # --- the walk ---

    def backfill(self, after: str) -> str:
        """Enter a page of listing entries from before ``index/created/`` into it; ``done`` at the end."""
        page = self.policy.page * BACKFILL_PAGES
        keys = list(self.store.list("index/specs/", start_after=after, limit=page))
        if self.out_of_time():
            return after
        if not self.dry:  # create-only, concurrently: one write a run
            runs.write_index(self.store, [runs.created_key(*runs.from_listing_key(key)) for key in keys])
        self.report.backfilled += len(keys)
        return BACKFILLED if len(keys) < page else keys[-1]

    def stage(self, stage: str, *, after: str) -> str:
        """Judge a page of runs older than the stage's horizon, after ``after``; the new cursor."""
        last = after
        for key in list(self.store.list(runs.CREATED_PREFIX, start_after=after, limit=self.policy.page)):
            millis, run_id = runs.from_created_key(key)
            if millis >= self.horizon[stage] or self.out_of_time():
                break
            self.judge(run_id, created=key, stage=stage)
            last = key
        return last

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def judge(self, run_id: str, *, created: str, stage: str) -> None:
        try:
            stored = runs.read_record(self.store, run_id)
        except NotFoundError:
            if stage == "records":  # a run whose record went first (a sweep cut short): its leftovers
                self._delete_all(self._keys(f"runs/{run_id}/"))
                self._delete_all([created])
            return
        why = self.kept_because(stored.run)
        if why:
            self.keep(stored.run, why, created=created)
        elif stage == "records":
            self.delete_run(stored, created=created)
        else:
            self.retire_artifacts(stored)
        self.rejudge(str(stored.run["specId"]), but=run_id)

    # --- what is kept ---

    def kept_because(self, run: Mapping[str, Any]) -> str | None:
        if not runs.is_terminal(run):
            return "active"
        bot = run.get("botId")
        if not bot:
            return None
        if run["id"] in self.pointers(str(bot)):
            return "promoted"
        if run.get("type") == "training" and run["id"] in self.last_trainings(str(run["specId"])):
            return f"one of its bot's last {self.policy.keep_trainings} succeeded trainings"
        return None

    def pointers(self, bot: str, *, fresh: bool = False) -> set[str]:
        """Runs the bot's ``model.json`` and ``index.json`` name."""
        if fresh or bot not in self._pointers:
            named = set()
            for key in (c.bot_model_key(bot), c.bot_index_key(bot)):
                pointer = self._json(key) or {}
                named |= {str(pointer[k]) for k in ("runId", "cachedFrom") if pointer.get(k)}
            self._pointers[bot] = named
        return self._pointers[bot]

    def last_trainings(self, spec_id: str) -> set[str]:
        """The spec's newest ``keep_trainings`` succeeded training runs."""
        if spec_id not in self._trainings:
            found: set[str] = set()
            for run in self._newest(spec_id):
                if run.get("type") == "training" and run.get("state") == "succeeded":
                    found.add(str(run["id"]))
                    if len(found) >= self.policy.keep_trainings:
                        break
            self._trainings[spec_id] = found
        return self._trainings[spec_id]

    def keep(self, run: Mapping[str, Any], why: str, *, created: str) -> None:
        self.report.kept[str(run["id"])] = why
        self._notes.setdefault(str(run["specId"]), {})[str(run["id"])] = created

    def rejudge(self, spec_id: str, *, but: str) -> None:
        """The runs noted kept for this spec, judged again (once a sweep)."""
        if spec_id in self._rejudged:
            return
        self._rejudged.add(spec_id)
        noted = (self._json(KEPT_PREFIX + spec_id + ".json") or {}).get("runs") or {}
        for run_id, created in noted.items():
            if run_id == but or run_id in self._notes.get(spec_id, {}):
                continue
            try:
                stored = runs.read_record(self.store, run_id)
            except NotFoundError:
                self._notes.setdefault(spec_id, {})[run_id] = ""
                continue
            if self.kept_because(stored.run):
                continue
            self._notes.setdefault(spec_id, {})[run_id] = ""
            if runs.from_created_key(created)[0] < self.horizon["records"]:
                self.delete_run(stored, created=created)
            elif not stored.run.get("artifactsRetiredAt"):
                self.retire_artifacts(stored)

    def flush_notes(self) -> None:
        """Merge this sweep's kept runs into each spec's note (compare-and-swap)."""
        if self.dry:
            return
        for spec_id, changes in self._notes.items():
            self._update_note(KEPT_PREFIX + spec_id + ".json", changes)

    def _update_note(self, key: str, changes: Mapping[str, str]) -> None:
        for _ in range(CAS_ATTEMPTS):
            try:
                blob = self.store.read(key)
                noted, generation = dict(json.loads(blob.data).get("runs") or {}), blob.generation
            except NotFoundError:
                noted, generation = {}, 0
            new = {**noted, **{k: v for k, v in changes.items() if v}}
            new = {k: v for k, v in new.items() if changes.get(k, v)}
            if new == noted:
                return
            try:
                if new:
                    self.store.write(key, json.dumps({"runs": new}, sort_keys=True).encode(),
                                     if_generation_match=generation)
                elif generation:
                    self.store.delete(key, if_generation_match=generation)
                return
            except (PreconditionFailedError, NotFoundError):
                continue
        log.warning("retention: note %s kept changing; the next sweep notes it", key)

    # --- deleting ---

    def retire_artifacts(self, stored: runs.Stored) -> None:
        """The run's artifacts, its cache entry and the data no kept run names."""
        run = stored.run
        if run.get("artifactsRetiredAt"):
            return
        if self._forget_cache(run) and run.get("botId") and run["id"] in self.pointers(str(run["botId"]), fresh=True):
            self.keep(run, "promoted", created=runs.created_key(run["createdAt"], run["id"]))
            return  # a cache hit moved the bot's pointer to it while the entry was being deleted
        self._delete_all(self._keys(c.run_artifacts_prefix(str(run["id"]))))
        self._retire_data(run)
        if not self.dry:
            self._mark_retired(stored)
        self.report.artifacts_retired.append(str(run["id"]))

    def _mark_retired(self, stored: runs.Stored) -> None:
        """The record says its artifacts are gone (one swap against the record as read)."""
        new = self._retired(stored.run)
        if new is None:
            return
        try:
            self.store.write(c.run_key(str(new["id"])), json.dumps(new, sort_keys=True, separators=(",", ":")).encode(),
                             if_generation_match=stored.generation)
        except PreconditionFailedError:
            try:
                runs.update_run(self.store, str(new["id"]), self._retired)
            except NotFoundError:
                pass  # deleted meanwhile (another sweep's records stage): nothing left to mark

    def _retired(self, run: runs.Run) -> runs.Run | None:
        if run.get("artifactsRetiredAt"):
            return None
        return {**run, "artifacts": {}, "artifactsRetiredAt": runs.rfc3339(self.now)}

    def delete_run(self, stored: runs.Stored, *, created: str) -> None:
        """Everything of the run: cache entry, log and artifacts, data no kept run names,
        listing entries, the record, and last its ``index/created/`` entry."""
        run = stored.run
        if self._forget_cache(run) and run.get("botId") and run["id"] in self.pointers(str(run["botId"]), fresh=True):
            self.keep(run, "promoted", created=created)
            return
        record = c.run_key(str(run["id"]))
        self._delete_all(k for k in self._keys(f"runs/{run['id']}/") if k != record)
        self._retire_data(run)
        listings = [k for k in runs.listing_keys(run) if not k.startswith(runs.CREATED_PREFIX)]
        self._delete_all([*listings, record, created])
        self.report.runs_deleted.append(str(run["id"]))

    def _forget_cache(self, run: Mapping[str, Any]) -> bool:
        """Delete the cache entry that names this run (another run's entry stays); whether one did."""
        key = run.get("cacheKey")
        if not isinstance(key, str) or run.get("reusedRun"):
            return False
        entry = cache.entry_key(str(run.get("type")), key)
        try:
            blob = self.store.read(entry)
        except NotFoundError:
            return False
        if json.loads(blob.data).get("runId") != run["id"]:
            return False
        self._delete(entry, generation=blob.generation)
        return True

    def _retire_data(self, run: Mapping[str, Any]) -> None:
        bot = run.get("botId")
        if not bot or run.get("type") not in ("training", "kb-index"):
            return
        mine = self._data_keys(run, bot=str(bot))
        if not mine:
            return
        in_use = self.data_in_use(str(run["specId"]), bot=str(bot))
        if in_use is not None:
            self._delete_all(k for k in mine if k not in in_use)

    def data_in_use(self, spec_id: str, *, bot: str) -> set[str] | None:
        """Data keys the bot's specs name now, or the spec's kept and recent runs named; None
        when that cannot be told within ``SCAN`` entries. A run without data params trained on
        what its spec named then: the data of the next older run that names some."""
        if spec_id not in self._data_in_use:
            self._data_in_use[spec_id] = self._named_data(spec_id, bot=bot)
        return self._data_in_use[spec_id]

    def _named_data(self, spec_id: str, *, bot: str) -> set[str] | None:
        named: set[str] = set()
        for key in {c.spec_key(spec_id), c.spec_key(f"train-{bot}"), c.spec_key(f"kb-{bot}")}:
            named |= self._data_keys(self._json(key) or {}, bot=bot)
        own = spec_id[:50].rstrip("-") + "-"
        waiting = {r for r in self.pointers(bot) | self.last_trainings(spec_id) if r.startswith(own)}
        kept, pending = set(waiting), False
        for run in self._newest(spec_id):
            millis = runs.parse_rfc3339(str(run["createdAt"])).timestamp() * 1000
            relevant = millis >= self.horizon["artifacts"] or run["id"] in kept
            waiting.discard(str(run["id"]))
            keys = self._data_keys(run, bot=bot)
            if keys and (relevant or pending):
                named |= keys
            pending = not keys and (pending or relevant)
            if millis < self.horizon["artifacts"] and not pending and not waiting:
                return named
        return None if pending or waiting or self._listed[spec_id][1] else named

    def _data_keys(self, obj: Mapping[str, Any], *, bot: str) -> set[str]:
        """Keys under ``bots/{bot}/data/`` of this store that ``obj["params"]`` names."""
        found = set()
        for name in DATA_PARAMS:
            data = (obj.get("params") or {}).get(name)
            if not isinstance(data, Mapping) or not isinstance(data.get("uri"), str):
                continue
            try:
                url, key = split_uri(str(data["uri"]), base_url=self.store.url)
            except PermanentError:
                continue
            if url == self.store.url and key.startswith(c.bot_data_prefix(bot)):
                found.add(key)
        return found

    # --- the store ---

    def _newest(self, spec_id: str) -> Iterator[runs.Run]:
        """The spec's runs, newest first, at most ``SCAN`` listing entries (each read once a sweep)."""
        if spec_id not in self._listed:
            keys = list(self.store.list(f"index/specs/{spec_id}/", limit=SCAN))
            self._listed[spec_id] = ([], len(keys) >= SCAN)
            self._pending[spec_id] = keys
        read, _ = self._listed[spec_id]
        yield from list(read)
        while self._pending[spec_id]:
            key = self._pending[spec_id].pop(0)
            try:
                run = runs.get_run(self.store, runs.from_listing_key(key)[1])
            except NotFoundError:
                continue
            read.append(run)
            yield run

    def _keys(self, prefix: str) -> list[str]:
        return list(self.store.list(prefix))

    def _json(self, key: str) -> dict[str, Any] | None:
        try:
            value = json.loads(self.store.read(key).data)
        except (NotFoundError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def _delete_all(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._delete(key)

    def _delete(self, key: str, *, generation: int | None = None) -> None:
        if not self.dry:
            try:
                self.store.delete(key, if_generation_match=generation)
            except (NotFoundError, PreconditionFailedError):
                return  # gone already (another sweep), or rewritten since (a newer run's cache entry)
        self.report.deleted.append(key)


def describe(report: Report) -> list[str]:
    """Lines for a person: what the sweep deleted (or would), and why it kept what it kept."""
    verb = "would delete" if report.dry_run else "deleted"
    lines = [f"{verb} {len(report.runs_deleted)} run(s), the artifacts of {len(report.artifacts_retired)}, "
             f"{len(report.deleted)} object(s) in all; kept {len(report.kept)}"]
    lines += [f"  {verb} {key}" for key in report.deleted]
    lines += [f"  kept run {run_id}: {why}" for run_id, why in sorted(report.kept.items())]
    if report.backfilled:
        lines.append(f"  entered {report.backfilled} older run(s) into {runs.CREATED_PREFIX}")
    if report.raced:
        lines.append("  another sweep moved the cursor meanwhile: the next sweep goes on from there")
    return lines

