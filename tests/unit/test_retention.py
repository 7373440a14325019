"""The retention sweep deletes what the policy no longer keeps, and nothing else; a page at a
time from its cursor, dry when asked, and harmlessly twice at once."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.history import BOT, NOW, build, data_key, exists, point_model_at, put_run, snapshot
from support.specs import make_spec

from jobplane import cache, runs
from jobplane import conventions as c
from jobplane.retention import CURSOR_KEY, describe, sweep
from jobplane.settings import RetentionPolicy
from jobplane.store.base import Blob, ObjectStore
from jobplane.store.files import FileStore

POLICY = RetentionPolicy(records_days=400, artifacts_days=90, keep_trainings=3, page=100)


def swept_fully(store: ObjectStore, policy: RetentionPolicy = POLICY, *, now: datetime = NOW) -> None:
    for _ in range(200):
        before = store.read(CURSOR_KEY).data if list(store.list(CURSOR_KEY)) else b""
        report = sweep(store, policy, now=now)
        if not report.deleted and store.read(CURSOR_KEY).data == before:
            return
    raise AssertionError("the sweep never caught up")


def test_the_sweep_deletes_exactly_what_the_policy_no_longer_keeps(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    ids = build(store)

    report = sweep(store, POLICY, now=NOW)

    assert sorted(report.runs_deleted) == sorted(ids[k] for k in ("ancient", "test-ancient", "sweep-summary"))
    assert sorted(report.artifacts_retired) == sorted(ids[k] for k in ("failed-old", "cached-old", "test-old"))
    assert report.kept == {ids["promoted"]: "promoted", ids["active"]: "active",
                           ids["kept-3"]: "one of its bot's last 3 succeeded trainings"}
    for name in ("ancient", "test-ancient", "sweep-summary"):  # everything of a run past 400 days
        assert not exists(store, f"runs/{ids[name]}/")
        assert not [k for k in store.list("index/") if ids[name] in k]
    for name in ("failed-old", "cached-old", "test-old"):  # past 90 days: the artifacts, the record stays
        assert not exists(store, c.run_artifacts_prefix(ids[name]))
        record = runs.get_run(store, ids[name])
        assert record["artifacts"] == {} and record["artifactsRetiredAt"] == runs.rfc3339(NOW)
        assert exists(store, f"runs/{ids[name]}/events/")
    for name in ("promoted", "active", "kept-3", "young-1", "young-2", "test-young"):
        assert exists(store, c.run_artifacts_prefix(ids[name])), name
    assert not exists(store, cache.entry_key("training", "k4")) and exists(store, cache.entry_key("training", "k5"))
    remaining = {k.rsplit("/", 1)[1] for k in store.list(c.bot_data_prefix(BOT))}
    assert remaining == {"r1.json", "r2.json", "r3.json", "r5.json", "r8.json", "r9.json"}  # r0, r4 went
    assert [r["id"] for r in runs.list_runs(store, bot_id=BOT, limit=20)] == [
        ids[k] for k in ("test-young", "young-1", "young-2", "test-old", "kept-3", "cached-old", "failed-old",
                         "active", "promoted")]


def test_a_run_that_stops_being_kept_goes_when_a_later_run_of_its_spec_passes(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    ids = build(store)
    swept_fully(store)
    point_model_at(store, ids["young-1"])  # a newer model promoted
    put_run(store, "newer", days=-50, data="r9")  # and a newer training: kept-3 is no longer one of the last 3

    swept_fully(store, now=NOW + timedelta(days=100))  # young-1 and young-2 pass 90 days

    assert not exists(store, f"runs/{ids['promoted']}/")
    assert not exists(store, data_key("r1"))
    assert not exists(store, c.run_artifacts_prefix(ids["kept-3"]))  # no longer one of the last 3
    assert exists(store, c.run_artifacts_prefix(ids["young-1"]))


def test_a_dry_run_deletes_nothing_and_says_what_a_sweep_would(tmp_path: Path) -> None:
    dry_store, real_store = FileStore(tmp_path / "dry"), FileStore(tmp_path / "real")
    build(dry_store), build(real_store)
    before = snapshot(dry_store)

    dry = sweep(dry_store, POLICY, now=NOW, dry_run=True)

    assert snapshot(dry_store) == before and not exists(dry_store, CURSOR_KEY)
    real = sweep(real_store, POLICY, now=NOW)
    assert sorted(dry.deleted) == sorted(real.deleted) and dry.deleted
    assert describe(dry)[0].startswith("would delete 3 run(s), the artifacts of 3")


def test_a_sweep_of_small_pages_resumes_from_its_cursor_to_the_same_end(tmp_path: Path) -> None:
    whole, paged = FileStore(tmp_path / "whole"), FileStore(tmp_path / "paged")
    build(whole), build(paged)
    sweep(whole, POLICY, now=NOW)
    small = RetentionPolicy(records_days=400, artifacts_days=90, keep_trainings=3, page=2)
    paged.write(CURSOR_KEY, b'{"backfill": "done"}')  # every run has its index/created/ entry

    first = sweep(paged, small, now=NOW)
    assert len(first.runs_deleted) + len(first.kept) <= 2 * 2  # two runs a stage
    assert json.loads(paged.read(CURSOR_KEY).data)["records"].startswith(runs.CREATED_PREFIX)
    swept_fully(paged, small)

    assert snapshot(paged) == snapshot(whole)


class RacingStore(FileStore):
    """A second sweep runs to its end between the first sweep's cursor read and its work."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.raced = False

    def read(self, key: str) -> Blob:
        blob = super().read(key)
        if key == CURSOR_KEY and not self.raced:
            self.raced = True
            sweep(self, POLICY, now=NOW)
        return blob


def test_a_concurrent_second_sweep_is_harmless(tmp_path: Path) -> None:
    whole, racing = FileStore(tmp_path / "whole"), RacingStore(tmp_path / "racing")
    build(whole), build(racing)
    sweep(whole, POLICY, now=NOW)
    racing.write(CURSOR_KEY, b"{}")

    report = sweep(racing, POLICY, now=NOW)

    assert report.raced and racing.raced
    assert snapshot(racing) == snapshot(whole)


def test_sweeps_on_two_threads_end_where_one_would(tmp_path: Path) -> None:
    whole, shared = FileStore(tmp_path / "whole"), FileStore(tmp_path / "shared")
    build(whole), build(shared)
    swept_fully(whole)
    small = RetentionPolicy(records_days=400, artifacts_days=90, keep_trainings=3, page=3)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(10):
                sweep(shared, small, now=NOW)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    swept_fully(shared, small)

    assert errors == []
    assert snapshot(shared) == snapshot(whole)


def test_runs_stored_before_the_oldest_first_index_are_entered_then_swept(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    ids = build(store)
    for key in list(store.list(runs.CREATED_PREFIX)):
        store.delete(key)

    small = RetentionPolicy(records_days=400, artifacts_days=90, keep_trainings=3, page=1)
    first = sweep(store, small, now=NOW)
    assert (first.backfilled, first.deleted) == (10, [])  # ten pages; the stages wait for the backfill's end
    swept_fully(store, small)

    assert not exists(store, f"runs/{ids['ancient']}/")
    assert not exists(store, c.run_artifacts_prefix(ids["cached-old"]))


@pytest.mark.parametrize("revision", ["r0", "r4"])
def test_a_data_revision_a_recent_run_trained_on_without_naming_it_stays(tmp_path: Path, revision: str) -> None:
    """A run with no data params (a weekly retrain) trained on what its spec named then: the
    data of the next older run that names some."""
    store = FileStore(tmp_path)
    put_run(store, "old", days=200, data=revision)
    put_run(store, "retrain", days=30)
    store.write(c.spec_key(f"train-{BOT}"), json.dumps(make_spec(id=f"train-{BOT}", params={"botId": BOT})).encode())

    sweep(store, RetentionPolicy(records_days=400, artifacts_days=90, keep_trainings=1, page=100), now=NOW)

    assert exists(store, data_key(revision))


def test_run_listings_pass_over_deleted_runs(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    ids = build(store)
    store.delete(c.run_key(ids["young-2"]))  # gone with its listing entries still there
    listed: Any = [r["id"] for r in runs.list_runs(store, spec_id=f"train-{BOT}", limit=20)]
    assert listed[:2] == [ids["young-1"], ids["kept-3"]]


def test_the_retention_command_dry_prints_what_it_would_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from jobplane import cli

    monkeypatch.delenv("JOBPLANE_STORE", raising=False)
    monkeypatch.setenv("JOBPLANE_RETENTION_KEEP_TRAININGS", "3")
    store = FileStore(tmp_path / "store")
    ids = build(store, now=datetime.now(UTC))
    before = snapshot(store)

    assert cli.main(["retention", "--dry-run", "--data-dir", str(tmp_path)]) == 0

    out = capsys.readouterr().out
    assert out.startswith("would delete 3 run(s), the artifacts of 3")
    assert f"would delete {c.run_key(ids['ancient'])}" in out and snapshot(store) == before
    assert cli.main(["retention", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("deleted 3 run(s)") and not exists(store, c.run_key(ids["ancient"]))


def test_a_sweep_out_of_time_stops_and_the_next_goes_on_from_where_it_stopped(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    ids = build(store)

    stopped = sweep(store, POLICY, now=NOW, budget_s=0)

    assert stopped.deleted == [] and exists(store, c.run_key(ids["ancient"]))
    assert sweep(store, POLICY, now=NOW).runs_deleted
