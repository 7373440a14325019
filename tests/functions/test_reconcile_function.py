"""The reconcile function through its real app: the committed retention PingSource's tick sweeps
the store; the reconciler's own tick reconciles."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from support.fakes import FakeLauncher
from support.history import NOW, build, exists
from support.servers import serve_wsgi

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs, runtime
from jobplane.app import create_function_app
from jobplane.local.cron import PingSource, load_pingsources
from jobplane.local.plane import find_eventing_dir
from jobplane.runtime import Runtime
from jobplane.settings import RetentionPolicy, Settings
from jobplane.store.files import FileStore



@pytest.fixture(scope="module")
def reconcile_url() -> Iterator[str]:
    with serve_wsgi(create_function_app("reconcile")) as url:
        yield url


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FileStore]:
    store = FileStore(tmp_path / "store")
    settings = Settings(store_url=store.url, sink="http://127.0.0.1:9/default/default", callback_key=b"k",
                        retention=RetentionPolicy(keep_trainings=3))
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=FakeLauncher, send=lambda e: None,
                            clock=lambda: NOW))
    yield store
    runtime.install(None)  # type: ignore[arg-type]


def tick(name: str) -> PingSource:
    return next(s for s in load_pingsources(find_eventing_dir(None)) if s.name == name)


def post(url: str, event: ev.Event) -> requests.Response:
    headers, body = ev.to_http(event)
    return requests.post(url, data=body, headers=headers, timeout=30)


def test_the_retention_tick_sweeps_a_page_of_what_the_policy_no_longer_keeps(reconcile_url: str,
                                                                            store: FileStore) -> None:
    ids = build(store)
    source = tick("jobplane-retention")
    assert source.sink["ref"]["name"] == "jobplane-reconciler" and not source.to_broker

    answer = post(reconcile_url, source.event(now=NOW))

    assert answer.status_code == 204
    assert not exists(store, c.run_key(ids["ancient"])) and exists(store, c.run_key(ids["promoted"]))


def test_the_reconcilers_tick_reconciles_and_sweeps_nothing(reconcile_url: str, store: FileStore) -> None:
    ids = build(store)
    active = ids["active"]  # running, with no Job: the reconciler fails it

    answer = post(reconcile_url, tick("jobplane-reconcile").event(now=NOW + timedelta(minutes=1)))

    assert answer.status_code == 204
    assert runs.get_run(store, active)["state"] == "failed"
    assert exists(store, c.run_key(ids["ancient"]))
