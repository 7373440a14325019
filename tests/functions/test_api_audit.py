"""The audit trail through the real api and launch apps: who created, changed, deleted,
triggered or cancelled what, with the outcome (failed attempts too), filtered and paged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from support.fakes import FakeLauncher
from support.servers import serve_wsgi
from support.specs import TEST_DATA_PREFIXES, TRAINING_EXAMPLES, make_spec

from jobplane import audit, runs, runtime
from jobplane import events as ev
from jobplane.app import create_function_app
from jobplane.auth.base import Identity, Permission, RefusedError, UnauthenticatedError
from jobplane.handlers import launch
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store.files import FileStore

TOKENS = {"alice-token": "alice", "bob-token": "bob"}
"""alice may do everything; bob only read (a viewer)."""


class TableAccess:
    """Two people, one editor and one viewer: enough to see subjects and refusals."""

    mode = "kubernetes"

    def authenticate(self, credential: str) -> Identity:
        if credential not in TOKENS:
            raise UnauthenticatedError("unknown token", invalid=True)
        return Identity(user=TOKENS[credential])

    def authorize(self, who: Identity, permission: Permission | None) -> None:
        if permission is None or (who.user == "bob" and permission.verb not in ("get", "list")):
            raise RefusedError(f"{who.user} may not {permission}")


@dataclass
class Api:
    client: Any
    rt: Runtime
    store: FileStore
    sent: list[ev.Event] = field(default_factory=list)

    def as_(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def audit(self, query: str = "", token: str = "alice-token") -> dict[str, Any]:
        response = self.client.get(f"/v1/audit{query}", headers=self.as_(token))
        assert response.status_code == 200, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Api]:
    store = FileStore(tmp_path / "store", fsync=False)
    launcher = FakeLauncher()
    settings = Settings(data_prefixes=TEST_DATA_PREFIXES, store_url=store.url, sink="http://127.0.0.1:9/x",
                        callback_key=b"k" * 32, command=("true",), auth="kubernetes")
    sent: list[ev.Event] = []
    rt = Runtime(settings=settings, store=store, launcher_factory=lambda: launcher, send=sent.append,
                 access_factory=TableAccess)
    runtime.install(rt)
    client = create_function_app("api").test_client()  # type: ignore[attr-defined]
    yield Api(client=client, rt=rt, store=store, sent=sent)


def test_each_spec_and_run_change_is_an_entry_naming_who_what_and_the_outcome(env: Api) -> None:
    alice = env.as_("alice-token")
    assert env.client.post("/v1/specs", json=make_spec(), headers=alice).status_code == 201
    assert env.client.put("/v1/specs/train-test-bot", json=make_spec(description="v2"), headers=alice).status_code == 200
    run_id = env.client.post("/v1/specs/train-test-bot/runs", headers=alice).get_json()["runId"]
    launch.on_event(env.sent[-1], rt=env.rt)  # the broker's delivery of the api's run.requested
    assert env.client.post(f"/v1/runs/{run_id}:cancel", headers=alice).status_code == 200
    assert env.client.delete("/v1/specs/train-test-bot", headers=alice).status_code == 204

    entries = env.audit()["entries"]

    assert [(e["action"], e["target"], e["outcome"]) for e in entries] == [
        ("delete", "spec/train-test-bot", "ok"),
        ("cancel", f"run/{run_id}", "ok"),
        ("trigger", f"run/{run_id}", "ok"),
        ("update", "spec/train-test-bot", "ok"),
        ("create", "spec/train-test-bot", "ok"),
    ]
    assert {e["subject"] for e in entries} == {"alice"}
    assert all(e["specId"] == "train-test-bot" and e["botId"] == "test-bot" for e in entries)
    trigger, cancel = entries[2], entries[1]
    assert trigger["botId"] == cancel["botId"] == "test-bot" and trigger["runId"] == cancel["runId"] == run_id
    assert [e["time"] for e in entries] == sorted((e["time"] for e in entries), reverse=True)
    assert all(e["time"].endswith("Z") for e in entries)


def test_failed_attempts_are_kept_with_their_error_code(env: Api) -> None:
    alice, bob = env.as_("alice-token"), env.as_("bob-token")
    env.client.post("/v1/specs", json=make_spec(), headers=alice)
    assert env.client.post("/v1/specs", json=make_spec(), headers=alice).status_code == 409
    assert env.client.post("/v1/specs", json=make_spec(id="other", retries=99), headers=alice).status_code == 400
    assert env.client.post("/v1/specs/train-test-bot/runs", headers=bob).status_code == 403
    assert env.client.post("/v1/runs/nope:cancel", headers=alice).status_code == 404

    entries = env.audit()["entries"]

    assert [(e["subject"], e["action"], e["target"], e["outcome"]) for e in entries] == [
        ("alice", "cancel", "run/nope", "not_found"),
        ("bob", "trigger", "run", "forbidden"),
        ("alice", "create", "spec/other", "invalid"),
        ("alice", "create", "spec/train-test-bot", "conflict"),
        ("alice", "create", "spec/train-test-bot", "ok"),
    ]
    assert "retries" in entries[2]["detail"]


def test_reads_leave_no_entry_and_a_viewer_may_read_the_trail(env: Api) -> None:
    env.client.post("/v1/specs", json=make_spec(), headers=env.as_("alice-token"))
    env.client.get("/v1/specs/train-test-bot", headers=env.as_("bob-token"))
    assert [e["action"] for e in env.audit(token="bob-token")["entries"]] == ["create"]


def test_entries_filter_by_spec_bot_and_run_and_page_newest_first(env: Api) -> None:
    alice = env.as_("alice-token")
    env.client.post("/v1/specs", json=make_spec(), headers=alice)
    env.client.post("/v1/specs", json=make_spec(id="train-other", params={"botId": "other-bot"}), headers=alice)
    run_ids = [env.client.post("/v1/specs/train-test-bot/runs", headers=alice).get_json()["runId"] for _ in range(3)]
    env.client.post("/v1/specs/train-other/runs", headers=alice)

    by_spec = env.audit("?specId=train-test-bot")["entries"]
    assert [e["action"] for e in by_spec] == ["trigger"] * 3 + ["create"]
    assert [e["runId"] for e in by_spec[:3]] == run_ids[::-1]
    assert [e["specId"] for e in env.audit("?botId=other-bot")["entries"]] == ["train-other"] * 2
    assert [e["runId"] for e in env.audit(f"?runId={run_ids[1]}")["entries"]] == [run_ids[1]]
    assert env.audit(f"?runId={run_ids[1]}&botId=other-bot")["entries"] == []

    first = env.audit("?specId=train-test-bot&limit=3")
    second = env.audit(f"?specId=train-test-bot&limit=3&pageToken={first['nextPageToken']}")
    assert [e["id"] for e in first["entries"] + second["entries"]] == [e["id"] for e in by_spec]
    assert "nextPageToken" not in second
    everything = env.audit("?limit=100")["entries"]
    assert len(everything) == 6 and "nextPageToken" not in env.audit("?limit=100")


@pytest.mark.parametrize("query, field", [("?pageToken=../../x", "pageToken"), ("?specId=Not_An_Id", "specId"),
                                          ("?limit=0", "limit")])
def test_a_bad_query_is_400_naming_the_field(env: Api, query: str, field: str) -> None:
    response = env.client.get(f"/v1/audit{query}", headers=env.as_("alice-token"))
    assert response.status_code == 400
    assert response.get_json()["error"]["details"][0]["field"] == field


def test_entries_are_never_rewritten(env: Api) -> None:
    env.client.post("/v1/specs", json=make_spec(), headers=env.as_("alice-token"))
    [found] = env.audit()["entries"]
    keys = audit.keys(found)
    assert keys[0].startswith("audit/all/") and {k.split("/")[1] for k in keys} == {"all", "specs", "bots"}
    audit.record(env.store, {**found, "outcome": "forged"})  # the same keys again: create-only
    assert all(json.loads(env.store.read(k).data)["outcome"] == "ok" for k in keys)


# --- triggers by event -------------------------------------------------------------------------


@pytest.fixture
def launch_url(env: Api) -> Iterator[str]:
    with serve_wsgi(create_function_app("launch")) as url:
        yield url


def post(url: str, event: ev.Event) -> requests.Response:
    headers, body = ev.to_http(event)
    return requests.post(url, data=body, headers=headers, timeout=10)


def test_an_event_trigger_is_an_entry_with_the_events_source_as_subject(env: Api, launch_url: str) -> None:
    data = {"botId": "pizza-bot", "revision": "r1", "trainingData": {"examples": TRAINING_EXAMPLES}}
    event = ev.new_event(ev.BOT_CHANGED, source="/platform/bots", id="evt-1", data=data)
    assert post(launch_url, event).status_code == 200
    bad = ev.new_event(ev.RUN_REQUESTED, source="/ci/nightly", id="evt-2", data={"specId": "no-such-spec"})
    assert post(launch_url, bad).status_code == 400

    entries = env.audit()["entries"]

    run_id = runs.run_id_for("train-pizza-bot", source="/platform/bots", event_id="evt-1")
    assert [(e["subject"], e["action"], e["target"], e["outcome"]) for e in entries] == [
        ("/ci/nightly", "trigger", f"run/{runs.run_id_for('no-such-spec', source='/ci/nightly', event_id='evt-2')}",
         "invalid"),
        ("/platform/bots", "trigger", f"run/{run_id}", "ok"),
    ]
    assert entries[1]["botId"] == "pizza-bot" and entries[1]["specId"] == "train-pizza-bot"
    assert runs.get_run(env.store, run_id)["state"] == "launched"
    assert [e["runId"] for e in env.audit("?botId=pizza-bot")["entries"]] == [run_id]


def test_the_apis_own_run_requested_is_not_audited_twice(env: Api, launch_url: str) -> None:
    env.client.post("/v1/specs", json=make_spec(), headers=env.as_("alice-token"))
    env.client.post("/v1/specs/train-test-bot/runs", headers=env.as_("alice-token"))
    assert post(launch_url, env.sent[-1]).status_code == 200
    assert [(e["subject"], e["action"]) for e in env.audit()["entries"]] == [("alice", "trigger"), ("alice", "create")]
