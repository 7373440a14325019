"""The launch and reconcile functions through their real apps over HTTP, with the Kubernetes
launcher against the local API server: what a cluster would see from redelivered triggers,
concurrency policies and Jobs that die without reporting."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from k8s_api import FakeKubeApi
from support.servers import serve_wsgi
from support.specs import TEST_DATA_PREFIXES, make_spec

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs, runtime
from jobplane.app import create_function_app
from jobplane.launcher.kubernetes import KubernetesLauncher
from jobplane.reconcile import CREATE_GRACE
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store.files import FileStore

NS = "jobplane"


@dataclass
class Plane:
    kube: FakeKubeApi
    store: FileStore
    urls: dict[str, str]
    clock: list[datetime]

    def post(self, target: str, event: ev.Event) -> requests.Response:
        headers, body = ev.to_http(event)
        return requests.post(self.urls[target], data=body, headers=headers, timeout=10)

    def jobs(self) -> list[str]:
        return [j["metadata"]["name"] for j in self.kube.state.list("jobs", NS)[0]]

    def put_spec(self, spec: dict[str, Any]) -> None:
        self.store.write(c.spec_key(spec["id"]), json.dumps(spec).encode())


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    store = FileStore(tmp_path / "store", fsync=False)
    clock = [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)]
    settings = Settings(data_prefixes=TEST_DATA_PREFIXES, store_url=store.url, launcher="kubernetes", namespace=NS,
                        sink="http://broker/jobplane/default", callback_key=b"k" * 32)
    with FakeKubeApi() as kube:
        kube.state.create("namespaces", "", {"metadata": {"name": NS}})
        launcher = KubernetesLauncher(kube.api_client(), namespace=NS, backoff=0.01)
        runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher,
                                send=lambda e: None, clock=lambda: clock[0]))
        with serve_wsgi(create_function_app("launch")) as launch, serve_wsgi(create_function_app("reconcile")) as rec:
            yield Plane(kube=kube, store=store, urls={"launch": launch, "reconcile": rec}, clock=clock)


def requested(spec_id: str, *, event_id: str) -> ev.Event:
    return ev.new_event(ev.RUN_REQUESTED, source="/jobplane/api", id=event_id, subject=spec_id, data={"specId": spec_id})


def ping() -> ev.Event:
    return ev.new_event(ev.PING, source=f"/apis/v1/namespaces/{NS}/pingsources/jobplane-reconcile",
                        data={"reconcile": "jobs"})


def test_one_trigger_delivered_ten_times_makes_one_job(plane: Plane) -> None:
    plane.put_spec(make_spec())
    event = requested("train-test-bot", event_id="once")
    answers = [plane.post("launch", event) for _ in range(10)]
    assert {a.status_code for a in answers} == {200}
    assert len({a.headers["ce-subject"] for a in answers}) == 1
    assert plane.jobs() == [answers[0].headers["ce-subject"]]


def test_replace_deletes_the_older_job_and_supersedes_its_run(plane: Plane) -> None:
    plane.put_spec(make_spec(concurrency="Replace"))
    older = plane.post("launch", requested("train-test-bot", event_id="first")).headers["ce-subject"]
    plane.clock[0] += timedelta(seconds=5)
    newer = plane.post("launch", requested("train-test-bot", event_id="second")).headers["ce-subject"]
    assert plane.jobs() == [newer]
    assert all(p["metadata"]["name"].startswith(newer) for p in plane.kube.state.list("pods", NS)[0])
    assert runs.get_run(plane.store, older)["state"] == "superseded"


def test_forbid_skips_the_new_run_and_makes_no_job(plane: Plane) -> None:
    plane.put_spec(make_spec(concurrency="Forbid"))
    older = plane.post("launch", requested("train-test-bot", event_id="first")).headers["ce-subject"]
    plane.clock[0] += timedelta(seconds=5)
    assert plane.post("launch", requested("train-test-bot", event_id="second")).status_code == 204
    assert plane.jobs() == [older]


def test_an_api_server_refusing_for_now_makes_the_broker_retry(plane: Plane) -> None:
    plane.put_spec(make_spec())
    plane.kube.state.fail_next(10, status=503, method="POST", resource="jobs")
    assert plane.post("launch", requested("train-test-bot", event_id="busy")).status_code == 503
    plane.kube.state.faults.clear()
    assert plane.post("launch", requested("train-test-bot", event_id="busy")).status_code == 200


def test_the_reconcile_tick_fails_runs_whose_jobs_were_deleted_by_hand(plane: Plane) -> None:
    plane.put_spec(make_spec())
    run_id = plane.post("launch", requested("train-test-bot", event_id="doomed")).headers["ce-subject"]
    plane.kube.state.delete("jobs", NS, run_id, propagation="Background")  # kubectl delete job
    assert plane.post("reconcile", ping()).status_code == 204
    assert runs.get_run(plane.store, run_id)["state"] == "launched"  # its create may still be in flight
    plane.clock[0] += CREATE_GRACE
    assert plane.post("reconcile", ping()).status_code == 204
    run = runs.get_run(plane.store, run_id)
    assert (run["state"], run["reason"]) == ("failed", "JobMissing")
