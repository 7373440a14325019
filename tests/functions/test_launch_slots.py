"""``Forbid`` and ``Replace`` through the (spec, bot) slot: launches that race for it, a
launch that died holding it, and stores written before slots existed. The launch function runs
over HTTP (a threaded server, so one launch can arrive while another is inside its create)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from support.fakes import FakeLauncher
from support.servers import serve_wsgi
from support.specs import TEST_DATA_PREFIXES, make_spec

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs, runtime, slots
from jobplane.app import create_function_app
from jobplane.errors import PreconditionFailedError
from jobplane.launcher.base import JobStatus
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store.files import FileStore

SPEC_ID = "train-test-bot"


class HookedLauncher(FakeLauncher):
    """Runs ``during_create`` once, inside the first create after the Job exists and before the
    create answers (the launch that called it has written nothing since taking the slot)."""

    def __init__(self) -> None:
        super().__init__()
        self.during_create: Callable[[], None] | None = None

    def launch(self, job: Mapping[str, Any]) -> JobStatus:
        status = super().launch(job)
        hook, self.during_create = self.during_create, None
        if hook is not None:
            hook()
        return status


@dataclass
class Plane:
    url: str
    store: FileStore
    launcher: HookedLauncher

    def ping(self, event_id: str) -> requests.Response:
        event = ev.new_event(ev.PING, source="/cron", id=event_id, data={"specId": SPEC_ID})
        headers, body = ev.to_http(event)
        return requests.post(self.url, data=body, headers=headers, timeout=10)

    def run_of(self, event_id: str) -> runs.Run:
        return runs.get_run(self.store, runs.run_id_for(SPEC_ID, source="/cron", event_id=event_id))


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    store, launcher = FileStore(tmp_path / "store", fsync=False), HookedLauncher()
    settings = Settings(data_prefixes=TEST_DATA_PREFIXES, store_url=store.url, sink="http://127.0.0.1:9/default/default", callback_key=b"k" * 32,
                        command=("true",))
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher, send=lambda e: None))
    with serve_wsgi(create_function_app("launch")) as url:
        yield Plane(url, store, launcher)


def put_spec(plane: Plane, policy: str) -> None:
    plane.store.write(c.spec_key(SPEC_ID), json.dumps(make_spec(id=SPEC_ID, concurrency=policy)).encode())


def test_a_replace_launch_that_arrives_during_anothers_create_supersedes_it(plane: Plane) -> None:
    put_spec(plane, "Replace")
    answers: list[int] = []
    plane.launcher.during_create = lambda: answers.append(plane.ping("b").status_code)

    assert plane.ping("a").status_code == 200 and answers == [200]
    first, second = plane.run_of("a"), plane.run_of("b")
    assert first["state"] == "superseded" and f"run {second['id']}" in first["reason"]
    assert second["state"] == "launched"
    assert list(plane.launcher.jobs) == [second["id"]]  # the first's Job deleted, however it raced
    assert slots.read(plane.store, second).holder.run == second["id"]  # type: ignore[union-attr]


def test_a_forbid_launch_that_arrives_during_anothers_create_is_skipped(plane: Plane) -> None:
    put_spec(plane, "Forbid")
    answers: list[int] = []
    plane.launcher.during_create = lambda: answers.append(plane.ping("b").status_code)

    assert plane.ping("a").status_code == 200 and answers == [204]
    first, second = plane.run_of("a"), plane.run_of("b")
    assert first["state"] == "launched"
    assert second["state"] == "skipped" and f"run {first['id']} is still active" in second["reason"]
    assert list(plane.launcher.jobs) == [first["id"]] and plane.launcher.cancelled == []


@pytest.mark.parametrize("policy", ["Forbid", "Replace"])
def test_of_many_launches_racing_for_one_bot_exactly_one_stays_launched(plane: Plane, policy: str) -> None:
    put_spec(plane, policy)
    ids = [f"race-{i}" for i in range(8)]
    start = threading.Barrier(len(ids))

    def fire(event_id: str) -> int:
        start.wait()
        return plane.ping(event_id).status_code

    with ThreadPoolExecutor(len(ids)) as pool:
        codes = list(pool.map(fire, ids))

    assert all(code in (200, 204) for code in codes)
    states = [plane.run_of(i)["state"] for i in ids]
    active = [i for i, state in zip(ids, states, strict=True) if state == "launched"]
    assert len(active) == 1, states
    assert set(states) <= {"launched", "skipped" if policy == "Forbid" else "superseded"}
    assert list(plane.launcher.jobs) == [plane.run_of(active[0])["id"]]


def test_a_slot_whose_holder_never_recorded_its_run_frees_after_the_grace(plane: Plane) -> None:
    put_spec(plane, "Forbid")
    ghost = {"id": "train-test-bot-ghost", "specId": SPEC_ID, "botId": "test-bot"}
    long_ago = runs.rfc3339(datetime.now(UTC) - slots.IN_FLIGHT_GRACE - timedelta(seconds=5))
    slots.take(plane.store, slots.read(plane.store, ghost), {**ghost, "createdAt": long_ago})

    assert plane.ping("after-a-crash").status_code == 200
    assert plane.run_of("after-a-crash")["state"] == "launched"


def test_a_slot_whose_holder_is_still_launching_keeps_forbid_from_starting_another(plane: Plane) -> None:
    put_spec(plane, "Forbid")
    ghost = {"id": "train-test-bot-ghost", "specId": SPEC_ID, "botId": "test-bot"}
    slots.take(plane.store, slots.read(plane.store, ghost), {**ghost, "createdAt": runs.rfc3339(datetime.now(UTC))})

    assert plane.ping("meanwhile").status_code == 204
    assert plane.run_of("meanwhile")["state"] == "skipped" and not plane.launcher.jobs


@pytest.mark.parametrize(("policy", "state"), [("Forbid", "skipped"), ("Replace", "launched")])
def test_a_store_from_before_slots_still_finds_the_active_run(plane: Plane, policy: str, state: str) -> None:
    put_spec(plane, policy)
    trigger = {"type": ev.PING, "source": "/cron", "id": "old", "subject": None}
    old = runs.new_run(spec=make_spec(id=SPEC_ID), trigger=trigger, requested_by="test",
                       now=datetime.now(UTC) - timedelta(minutes=5))
    old = runs.transition(old, "launched", now=datetime.now(UTC))
    runs.create_run(plane.store, old)  # record + active marker, no slot
    plane.launcher.launch({"metadata": {"name": old["id"], "labels": {}}})

    assert plane.ping("new").status_code in (200, 204)
    assert plane.run_of("new")["state"] == state
    assert runs.get_run(plane.store, old["id"])["state"] == ("launched" if policy == "Forbid" else "superseded")


def test_taking_a_slot_that_moved_since_it_was_read_fails_its_precondition(tmp_path: Path) -> None:
    store = FileStore(tmp_path, fsync=False)
    run = {"id": "r1", "specId": "s", "botId": "b", "createdAt": "2026-11-29T00:00:00.000Z"}
    read = slots.read(store, run)
    slots.take(store, read, run, replaces=["r0"])
    with pytest.raises(PreconditionFailedError):
        slots.take(store, read, {**run, "id": "r2"})
    assert slots.read(store, run).holder == slots.Holder("r1", run["createdAt"], ("r0",))
    assert slots.slot_key({"specId": "s", "botId": None}) == "index/slots/s/_"


def test_a_slot_cut_short_by_a_crash_reads_as_free_and_the_markers_stand_in(tmp_path: Path) -> None:
    store = FileStore(tmp_path, fsync=False)
    run = {"id": "r1", "specId": "s", "botId": "b", "createdAt": "2026-11-29T00:00:00.000Z"}
    generation = store.write(slots.slot_key(run), b"")  # a zero-length file, as delayed allocation leaves

    read = slots.read(store, run)
    assert read.holder is None and read.generation == generation  # taken by a swap against it
    slots.take(store, read, run)
    assert slots.read(store, run).holder == slots.Holder("r1", run["createdAt"])
