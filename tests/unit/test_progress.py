"""The merge rules and the coalescer behind the status function, without HTTP."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.stores import CountingStore

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs
from jobplane.errors import UnavailableError
from jobplane.progress import Coalescer, Update, log_key, merge
from jobplane.store.files import FileStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_run(store: Any = None, *, spec_id: str = "spec") -> runs.Run:
    spec = {"id": spec_id, "type": "training", "params": {"botId": "bot"}}
    run = runs.new_run(spec=spec, trigger={"type": "t", "source": "/s", "id": spec_id, "subject": None},
                       requested_by="tests", now=T0)
    run = runs.transition(run, "launched", now=T0)
    if store is not None:
        runs.create_run(store, run)
    return run


def progress(seq: int, pct: int, **extra: Any) -> Update:
    return Update(type=ev.RUN_PROGRESS, data={"seq": seq, "progress": pct, **extra},
                  received=T0 + timedelta(seconds=seq))


def test_merge_does_not_depend_on_arrival_order() -> None:
    updates = [progress(s, s * 10, phase=f"p{s}", metrics={f"m{s}": s}) for s in range(1, 8)]
    expected = merge(make_run(), updates)
    for seed in range(5):
        shuffled = list(updates)
        random.Random(seed).shuffle(shuffled)
        assert merge(make_run(), shuffled) == expected
    assert expected is not None
    assert (expected["seq"], expected["progress"], expected["phase"]) == (7, 70, "p7")
    assert expected["metrics"] == {f"m{s}": s for s in range(1, 8)}


def test_merge_applies_terminal_updates_after_all_progress() -> None:
    failed = Update(type=ev.RUN_FAILED, data={"reason": "OOMKilled"}, received=T0)
    merged = merge(make_run(), [failed, progress(2, 40), progress(1, 10)])
    assert merged is not None
    assert (merged["state"], merged["progress"], merged["reason"]) == ("failed", 40, "OOMKilled")


def test_merge_reports_no_change_for_stale_or_late_updates() -> None:
    run = merge(make_run(), [progress(5, 50)])
    assert run is not None
    assert merge(run, [progress(3, 30), progress(5, 50)]) is None
    done = runs.transition(run, "succeeded", now=T0)
    assert merge(done, [progress(9, 90), Update(type=ev.RUN_FAILED, data={}, received=T0)]) is None


def test_log_keys_sort_by_seq_with_terminal_entries_last() -> None:
    def key(type: str, **data: Any) -> str:
        return log_key("r", ev.new_event(type, source="/s", data=data, id="a/b c"), data)

    keys = [key(ev.RUN_SUCCEEDED), key(ev.RUN_PROGRESS, seq=10), key(ev.RUN_PROGRESS, seq=9)]
    assert sorted(keys) == [keys[2], keys[1], keys[0]]
    assert all(k.startswith(c.run_events_prefix("r")) and " " not in k and k.count("/") == 3 for k in keys)


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    return CountingStore(FileStore(tmp_path))


def test_coalescer_writes_each_run_at_most_once_per_interval(store: CountingStore) -> None:
    run = make_run(store)
    store.writes.clear()
    coalescer = Coalescer(store, interval=0.2)
    started = time.monotonic()
    for seq in range(1, 201):
        coalescer.submit(run["id"], progress(seq, seq // 2))
        time.sleep(0.002)
    assert coalescer.drain(timeout=10)
    seconds = time.monotonic() - started
    coalescer.close()

    writes = len(store.writes[c.run_key(run["id"])])
    assert 1 <= writes <= seconds / 0.2 + 1
    assert runs.get_run(store, run["id"])["seq"] == 200


def test_finish_writes_at_once_with_everything_pending(store: CountingStore) -> None:
    run = make_run(store)
    coalescer = Coalescer(store, interval=60)  # the background flush would never come in time
    coalescer.submit(run["id"], progress(1, 10))
    coalescer.submit(run["id"], progress(2, 20, phase="training"))
    final = coalescer.finish(run["id"], Update(type=ev.RUN_SUCCEEDED, data={"metrics": {"f1": 1}}, received=T0))
    coalescer.close()

    assert final == runs.get_run(store, run["id"])
    assert (final["state"], final["seq"], final["metrics"]) == ("succeeded", 2, {"f1": 1})


class FlakyStore(CountingStore):
    """Fails the first ``failures`` writes of run records as unavailable."""

    def __init__(self, inner: FileStore, failures: int) -> None:
        super().__init__(inner)
        self.failures = failures

    def write(self, key: str, data: bytes, **kwargs: Any) -> int:
        if key.endswith("run.json") and kwargs.get("if_generation_match") and self.failures > 0:
            self.failures -= 1
            raise UnavailableError("store down")
        return super().write(key, data, **kwargs)


def test_updates_survive_a_store_outage_and_reach_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import jobplane.progress as progress_module

    monkeypatch.setattr(progress_module, "_RETRY_BACKOFF_S", 0.05)
    store = FlakyStore(FileStore(tmp_path), failures=2)
    run = make_run(store)
    coalescer = Coalescer(store, interval=0.05)
    coalescer.submit(run["id"], progress(3, 30))
    assert coalescer.drain(timeout=10)
    coalescer.close()

    assert (store.failures, runs.get_run(store, run["id"])["progress"]) == (0, 30)


def test_close_writes_pending_updates_without_waiting_for_the_interval(store: CountingStore) -> None:
    run = make_run(store)
    coalescer = Coalescer(store, interval=3600)
    coalescer.submit(run["id"], progress(1, 5))
    coalescer.submit(run["id"], progress(1, 5))  # a flush is scheduled an hour out; close must not wait
    coalescer.finish(run["id"], Update(type=ev.RUN_FAILED, data={"reason": "x"}, received=T0))
    coalescer.submit(run["id"], progress(2, 50))
    closer = threading.Thread(target=coalescer.close)
    closer.start()
    closer.join(timeout=10)

    assert not closer.is_alive()
    assert runs.get_run(store, run["id"])["state"] == "failed"


class SlowStore(CountingStore):
    """Writes to one key take ``delay`` seconds."""

    def __init__(self, inner: FileStore, *, slow_key: str, delay: float) -> None:
        super().__init__(inner)
        self.slow_key, self.delay = slow_key, delay

    def write(self, key: str, data: bytes, **kwargs: Any) -> int:
        if key == self.slow_key:
            time.sleep(self.delay)
        return super().write(key, data, **kwargs)


def test_a_slow_write_for_one_run_holds_no_other_run_up(tmp_path: Path) -> None:
    slow, fast = make_run(spec_id="slow"), make_run(spec_id="fast")
    store = SlowStore(FileStore(tmp_path), slow_key=c.run_key(slow["id"]), delay=1.0)
    runs.create_run(store.inner, slow)
    runs.create_run(store.inner, fast)
    coalescer = Coalescer(store, interval=0.01)
    coalescer.submit(slow["id"], progress(1, 10))
    time.sleep(0.05)
    coalescer.submit(slow["id"], progress(2, 20))  # queued behind the slow write in progress
    coalescer.submit(fast["id"], progress(1, 10))
    time.sleep(0.3)

    assert runs.get_run(store, fast["id"])["progress"] == 10
    assert coalescer.drain(timeout=10)
    coalescer.close()
    assert runs.get_run(store, slow["id"])["progress"] == 20


def test_close_gives_up_on_a_dead_store_and_returns(tmp_path: Path) -> None:
    store = FlakyStore(FileStore(tmp_path), failures=10**6)
    run = make_run(store)
    coalescer = Coalescer(store, interval=0.01)
    coalescer.submit(run["id"], progress(1, 10))
    coalescer.close(timeout=30)

    assert not any(t.is_alive() for t in coalescer._threads)
