"""Run records in a real store (filesystem and GCS): create-only, CAS updates, indexes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobplane import conventions as c
from jobplane import runs
from jobplane.errors import NotFoundError
from jobplane.store import ObjectStore, open_store

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["files", "gcs"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    url = (tmp_path / "store").as_uri() if request.param == "files" else request.getfixturevalue("gcs_store_url")
    yield open_store(url)


def make_run(n: int, *, spec_id: str = "train-bot", minutes: int = 0) -> runs.Run:
    spec = {"id": spec_id, "type": "training", "params": {"botId": "bot"}}
    trigger = {"type": "t", "source": "/s", "id": f"e{n}", "subject": None}
    return runs.new_run(spec=spec, trigger=trigger, requested_by="tests", now=T0 + timedelta(minutes=minutes))


def test_creating_a_run_twice_returns_the_stored_one(store: ObjectStore) -> None:
    first, created = runs.create_run(store, make_run(1))
    again, created_again = runs.create_run(store, {**make_run(1), "requestedBy": "someone else"})

    assert (created, created_again) == (True, False)
    assert again == first == runs.get_run(store, first["id"])
    assert runs.list_active(store, spec_id="train-bot") == [first["id"]]


def test_runs_list_newest_first_by_spec_and_bot(store: ObjectStore) -> None:
    ids = [runs.create_run(store, make_run(n, minutes=n))[0]["id"] for n in range(5)]

    assert [r["id"] for r in runs.list_runs(store, spec_id="train-bot", limit=3)] == ids[::-1][:3]
    assert [r["id"] for r in runs.list_runs(store, bot_id="bot")] == ids[::-1]


def test_concurrent_updates_lose_nothing(store: ObjectStore) -> None:
    run, _ = runs.create_run(store, make_run(1))

    def add(tag: str) -> None:
        for i in range(5):
            runs.update_run(store, run["id"], lambda r: {**r, "artifacts": {**r["artifacts"], f"{tag}{i}": "x"}})

    threads = [threading.Thread(target=add, args=(t,)) for t in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs.get_run(store, run["id"])["artifacts"]) == 20


def test_a_terminal_update_leaves_the_active_index(store: ObjectStore) -> None:
    run, _ = runs.create_run(store, make_run(1))
    runs.update_run(store, run["id"], lambda r: runs.transition(r, "failed", reason="x", now=T0))

    assert runs.list_active(store) == []
    assert runs.update_run(store, run["id"], lambda r: None)["state"] == "failed"


def test_updating_a_missing_run_raises_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFoundError):
        runs.update_run(store, "nope", lambda r: r)
    assert list(store.list(c.run_key("nope"))) == []


def test_one_bots_active_runs_of_a_shared_spec_list_without_the_other_bots(store: ObjectStore) -> None:
    def of(bot: str, n: int) -> runs.Run:
        run = make_run(n, spec_id="nightly-tests")
        return {**run, "botId": bot}

    anna = [runs.create_run(store, of("anna", n))[0]["id"] for n in range(2)]
    bob = runs.create_run(store, of("bob", 9))[0]["id"]

    assert sorted(runs.list_active(store, spec_id="nightly-tests", bot_id="anna")) == sorted(anna)
    assert runs.list_active(store, spec_id="nightly-tests", bot_id="bob") == [bob]
    assert sorted(runs.list_active(store, spec_id="nightly-tests")) == sorted([*anna, bob])


def test_a_marker_from_before_markers_named_the_bot_is_listed_for_its_bot_and_removed_at_its_end(
    store: ObjectStore,
) -> None:
    old = make_run(1)
    runs.create_record(store, old)
    legacy = f"index/active/{old['specId']}/{old['id']}"
    store.write(legacy, b"")

    assert runs.list_active(store, spec_id="train-bot", bot_id="bot") == [old["id"]]
    runs.update_run(store, old["id"], lambda r: runs.transition(r, "failed", now=T0))
    assert runs.list_active(store) == []
