"""``/v1/deadletters``: list the dead letters the dead-letter function stored, replay them through
the broker once (the api function's real app, a filesystem store, a recording sender)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobplane import events as ev
from jobplane import runtime
from jobplane.app import create_function_app
from jobplane.errors import UnavailableError
from jobplane.handlers.deadletter import record_dead_letter
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store.files import FileStore

NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
API_TOKEN = "test-api-token"


@dataclass
class Env:
    client: Any
    store: FileStore
    sent: list[ev.Event] = field(default_factory=list)
    send_error: Exception | None = None

    def dead(self, event_id: str, **ext: str) -> str:
        event = ev.new_event(ev.BOT_CHANGED, source="/platform", id=event_id, subject="b", data={"botId": "b"},
                             extensions={"knativeerrorcode": "503", "knativeerrordest": "http://launch", **ext})
        key, _ = record_dead_letter(self.store, event, now=NOW)
        return key

    def listed(self) -> list[dict[str, Any]]:
        response = self.client.get("/v1/deadletters")
        assert response.status_code == 200, response.get_json()
        return list(response.get_json()["deadLetters"])


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    store = FileStore(tmp_path / "store", fsync=False)
    holder: dict[str, Env] = {}

    def send(event: ev.Event) -> None:
        if holder["env"].send_error is not None:
            raise holder["env"].send_error
        holder["env"].sent.append(event)

    settings = Settings(store_url=store.url, sink="http://127.0.0.1:9/x", callback_key=b"k" * 32,
                        auth="token", api_token=API_TOKEN)
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: None, send=send,  # type: ignore[arg-type,return-value]
                            clock=lambda: NOW))
    client = create_function_app("api").test_client()  # type: ignore[attr-defined]
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    holder["env"] = Env(client=client, store=store)
    yield holder["env"]


def test_lists_stored_dead_letters_with_their_event_and_error(env: Env) -> None:
    env.dead("e1")
    (d,) = env.listed()
    assert (d["where"], d["type"], d["source"], d["eventId"], d["replayedAt"]) == ("store", ev.BOT_CHANGED, "/platform", "e1", None)
    assert d["error"]["code"] == 503 and d["id"].startswith(NOW.date().isoformat() + ".")


def test_replaying_one_sends_the_original_event_once(env: Env) -> None:
    env.dead("e1")
    (d,) = env.listed()
    response = env.client.post(f"/v1/deadletters/{d['id']}:replay")
    assert response.status_code == 202 and response.get_json()["replayed"] == [d["id"]]
    (sent,) = env.sent
    assert (sent.id, sent.source, sent.type) == ("e1", "/platform", ev.BOT_CHANGED)
    assert not any(k.startswith("knativeerror") for k in sent.extensions)
    again = env.client.post(f"/v1/deadletters/{d['id']}:replay")
    assert again.status_code == 409 and len(env.sent) == 1
    assert env.listed()[0]["replayedAt"] == "2026-12-06T02:00:00.000Z"


def test_replay_all_skips_those_replayed_already(env: Env) -> None:
    for i in range(3):
        env.dead(f"e{i}")
    env.client.post(f"/v1/deadletters/{env.listed()[0]['id']}:replay")
    response = env.client.post("/v1/deadletters:replay")
    assert response.status_code == 202 and response.get_json() == {"replayed": [d["id"] for d in env.listed()[1:]], "more": False}
    assert sorted(e.id for e in env.sent) == ["e0", "e1", "e2"]
    assert env.client.post("/v1/deadletters:replay").get_json()["replayed"] == []


def test_a_replay_the_broker_refuses_is_503_and_stays_replayable(env: Env) -> None:
    env.dead("e1")
    env.send_error = UnavailableError("broker is shutting down")
    response = env.client.post("/v1/deadletters:replay")
    assert response.status_code == 503 and env.listed()[0]["replayedAt"] is None
    env.send_error = None
    assert env.client.post("/v1/deadletters:replay").get_json()["replayed"] == [env.listed()[0]["id"]]


def test_a_replayed_dead_letter_that_fails_again_is_recorded_again_and_replayable(env: Env) -> None:
    env.dead("e1")
    env.client.post("/v1/deadletters:replay")
    env.dead("e1", knativeerrorcode="500")
    (d,) = env.listed()
    assert d["replayedAt"] is None and d["error"]["code"] == 500
    assert env.client.post(f"/v1/deadletters/{d['id']}:replay").status_code == 202 and len(env.sent) == 2


@pytest.mark.parametrize("bad", ["nope", "2026-12-06.a..b", "broker-12", "broker-x", "2026-12-06"])
def test_an_id_that_names_no_dead_letter_is_404(env: Env, bad: str) -> None:
    response = env.client.post(f"/v1/deadletters/{bad}:replay")
    assert response.status_code == 404, response.get_json()
    assert response.get_json()["error"]["code"]


def test_listing_pages_through_the_store(env: Env) -> None:
    for i in range(5):
        env.dead(f"e{i}")
    first = env.client.get("/v1/deadletters?limit=2").get_json()
    second = env.client.get(f"/v1/deadletters?limit=2&pageToken={first['nextPageToken']}").get_json()
    third = env.client.get(f"/v1/deadletters?limit=2&pageToken={second['nextPageToken']}").get_json()
    ids = [d["eventId"] for page in (first, second, third) for d in page["deadLetters"]]
    assert sorted(ids) == [f"e{i}" for i in range(5)] and "nextPageToken" not in third  # only when there is more


def test_a_replayed_run_callback_carries_a_fresh_token_of_its_run_in_place_of_the_redacted_one(env: Env) -> None:
    from jobplane import tokens
    from jobplane.conventions import TOKEN_EXTENSION

    stolen = tokens.callback_token(b"k" * 32, "run-1", expires=int(NOW.timestamp()) + 3600)
    event = ev.new_event(ev.RUN_SUCCEEDED, source="/jobs/run-1", id="done-1", subject="run-1", data={"seq": 9},
                         extensions={TOKEN_EXTENSION: stolen, "knativeerrorcode": "503"})
    key, _ = record_dead_letter(env.store, event, now=NOW)
    assert stolen.encode() not in env.store.read(key).data, "a dead letter never holds the token"
    assert env.client.post("/v1/deadletters:replay").status_code == 202
    (sent,) = env.sent
    token = sent.extensions[TOKEN_EXTENSION]
    assert token != ev.REDACTED and tokens.verify_token(b"k" * 32, "run-1", token, now=NOW)
    assert not tokens.verify_token(b"k" * 32, "run-2", token, now=NOW)


def test_a_replayed_event_that_is_not_a_run_callback_gets_no_token(env: Env) -> None:
    from jobplane.conventions import TOKEN_EXTENSION

    env.dead("e1", jobplanetoken="v2.1.abc")
    env.client.post("/v1/deadletters:replay")
    (sent,) = env.sent
    assert sent.extensions.get(TOKEN_EXTENSION) == ev.REDACTED
