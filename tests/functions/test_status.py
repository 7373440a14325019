"""The status function through its real functions-framework app over HTTP, with real
CloudEvents in binary and structured mode, on the filesystem store and on a real GCS server."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from support.servers import serve_wsgi
from support.specs import make_spec
from support.stores import CountingStore

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import progress, runs, runtime, tokens
from jobplane.app import create_function_app
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store import open_store
from jobplane.store.base import ObjectStore
from jobplane.store.gcs import GcsStore

KEY = b"k" * 32


def token_of(run_id: str, *, expires: int | None = None) -> str:
    return tokens.callback_token(KEY, run_id, expires=expires or int(time.time()) + 3600)


@dataclass
class Status:
    url: str
    store: ObjectStore
    session: requests.Session = field(default_factory=requests.Session)

    def new_run(self, spec_id: str = "train-test-bot", *, trigger_id: str = "t1") -> str:
        trigger = {"type": ev.BOT_CHANGED, "source": "/tests", "id": trigger_id, "subject": "test-bot"}
        run = runs.new_run(spec=make_spec(id=spec_id), trigger=trigger, requested_by="tests", now=datetime.now(UTC))
        stored, _ = runs.create_run(self.store, run)
        runs.update_run(self.store, stored["id"], lambda r: runs.transition(r, "launched", now=datetime.now(UTC)))
        return str(stored["id"])

    def post(self, event: ev.Event, *, structured: bool = False) -> requests.Response:
        headers, body = ev.to_http(event, structured=structured)
        return self.session.post(self.url, data=body, headers=headers, timeout=30)

    def run(self, run_id: str) -> dict[str, Any]:
        return runs.get_run(self.store, run_id)

    def drain(self) -> None:
        assert progress.coalescer_for(self.store).drain(timeout=20)


def callback(run_id: str, type: str = ev.RUN_PROGRESS, *, id: str | None = None, token: str | None = "valid",
             **data: Any) -> ev.Event:
    exts = {c.TOKEN_EXTENSION: token_of(run_id) if token == "valid" else token} if token else {}
    return ev.new_event(type, source=f"/jobplane/trainer/{run_id}", subject=run_id, data=data,
                        extensions=exts, id=id)


@pytest.fixture(scope="module")
def status_url() -> Iterator[str]:
    """One server for the module: the target reads the runtime each test installs."""
    with serve_wsgi(create_function_app("status")) as url:
        yield url


def start(store: ObjectStore, url: str) -> Iterator[Status]:
    settings = Settings(store_url=store.url, sink="http://127.0.0.1:9/default/default", callback_key=KEY)
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: None,  # type: ignore[arg-type,return-value]
                            send=lambda e: None))
    try:
        yield Status(url=url, store=store)
    finally:
        progress.close_coalescer(store)
        runtime.install(None)  # type: ignore[arg-type]


@pytest.fixture
def status(tmp_path: Path, status_url: str) -> Iterator[Status]:
    yield from start(open_store((tmp_path / "store").as_uri()), status_url)


@pytest.fixture(params=["files", "gcs"])
def any_status(request: pytest.FixtureRequest, tmp_path: Path, status_url: str) -> Iterator[Status]:
    url = (tmp_path / "store").as_uri() if request.param == "files" else request.getfixturevalue("gcs_store_url")
    yield from start(open_store(url), status_url)


@pytest.fixture
def counted(tmp_path: Path, status_url: str) -> Iterator[Status]:
    yield from start(CountingStore(open_store((tmp_path / "store").as_uri())), status_url)


# --- the contract --------------------------------------------------------------------------


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
def test_progress_is_answered_204_and_lands_in_the_run_and_its_log(any_status: Status, structured: bool) -> None:
    run_id = any_status.new_run()
    response = any_status.post(callback(run_id, seq=1, progress=30, phase="training", message="epoch 1"),
                               structured=structured)

    assert response.status_code == 204 and response.content == b""
    any_status.drain()
    run = any_status.run(run_id)
    assert (run["state"], run["progress"], run["phase"], run["message"], run["seq"]) == (
        "running", 30, "training", "epoch 1", 1)
    assert run["startedAt"]
    assert len(list(any_status.store.list(c.run_events_prefix(run_id)))) == 1


def test_success_is_written_before_the_answer_and_the_model_it_promotes_is_announced(any_status: Status) -> None:
    run_id = any_status.new_run()
    any_status.post(callback(run_id, seq=1, progress=50, phase="training"))
    data = {"metrics": {"accuracy": 0.9}, "artifacts": {"model": "gs://elsewhere/m"}, "modelUri": "gs://elsewhere/m"}
    response = any_status.post(callback(run_id, ev.RUN_SUCCEEDED, **data))

    assert response.status_code == 200
    reply = ev.from_http(dict(response.headers), response.content)
    assert (reply.type, reply.subject) == (ev.MODEL_READY, "test-bot")
    own_model = any_status.store.uri(f"runs/{run_id}/artifacts/model.npz")  # never the callback's URI
    assert reply.data == {"botId": "test-bot", "runId": run_id, "modelUri": own_model, "metrics": {"accuracy": 0.9}}
    assert json.loads(any_status.store.read(c.bot_model_key("test-bot")).data)["modelUri"] == own_model
    run = any_status.run(run_id)  # no drain: the final state is durable before the answer
    assert (run["state"], run["progress"], run["metrics"]["accuracy"]) == ("succeeded", 100, 0.9)
    assert run["finishedAt"] and run_id not in runs.list_active(any_status.store)


def test_success_without_promotion_is_answered_with_an_empty_body(status: Status) -> None:
    run_id = status.new_run()
    response = status.post(callback(run_id, ev.RUN_SUCCEEDED, metrics={"accuracy": 0.5}, promote=False))

    assert (response.status_code, response.content) == (204, b"")
    assert status.run(run_id)["state"] == "succeeded"


def test_failure_merges_pending_progress_first(status: Status) -> None:
    run_id = status.new_run()
    status.post(callback(run_id, seq=1, progress=10))
    status.post(callback(run_id, seq=2, progress=40, phase="training"))
    response = status.post(callback(run_id, ev.RUN_FAILED, reason="OOMKilled", message="out of memory"))

    assert response.status_code == 204
    run = status.run(run_id)
    assert (run["state"], run["reason"], run["progress"], run["seq"]) == ("failed", "OOMKilled", 40, 2)


@pytest.mark.parametrize("token", [None, "forged", "other-run", "expired"])
def test_callbacks_without_the_runs_valid_token_get_403_are_counted_and_change_nothing(status: Status, token: str | None) -> None:
    run_id = status.new_run()
    other = status.new_run(trigger_id="t2")
    if token == "other-run":
        token = token_of(other)
    elif token == "expired":
        token = token_of(run_id, expires=int(time.time()) - 1)
    before = status.run(run_id)
    for event in (callback(run_id, seq=1, progress=50, token=token), callback(run_id, ev.RUN_SUCCEEDED, token=token)):
        assert status.post(event).status_code == 403
    status.drain()

    assert status.run(run_id) == before
    assert list(status.store.list(c.run_events_prefix(run_id))) == []
    tally = json.loads(status.store.read(progress.rejected_key(run_id)).data)
    assert tally["count"] >= 1 and "token" in tally["last"]["reason"]
    assert KEY.decode() not in json.dumps(tally) and (not token or token not in json.dumps(tally))


def test_five_hundred_forged_callbacks_are_counted_in_one_object_not_stored_one_each(status: Status) -> None:
    run_id = status.new_run()
    before = progress.rejections.total
    for i in range(500):
        assert status.post(callback(run_id, seq=i + 1, progress=1, token=f"forged-{i}")).status_code == 403

    assert progress.rejections.total - before == 500
    under_run = list(status.store.list(f"runs/{run_id}/"))
    assert under_run == [progress.rejected_key(run_id), c.run_key(run_id)]
    assert 1 <= json.loads(status.store.read(progress.rejected_key(run_id)).data)["count"] <= 500


def test_duplicates_and_out_of_order_progress_change_nothing(status: Status) -> None:
    run_id = status.new_run()
    latest = callback(run_id, seq=5, progress=60, phase="training")
    for event in (latest, latest, callback(run_id, seq=3, progress=20, phase="loading"), latest):
        assert status.post(event).status_code == 204
    status.drain()

    run = status.run(run_id)
    assert (run["seq"], run["progress"], run["phase"]) == (5, 60, "training")
    assert len(list(status.store.list(c.run_events_prefix(run_id)))) == 2


def test_terminal_states_are_sticky(status: Status) -> None:
    run_id = status.new_run()
    succeeded = callback(run_id, ev.RUN_SUCCEEDED, metrics={"accuracy": 1.0})
    status.post(succeeded)
    final = status.run(run_id)
    for event in (callback(run_id, seq=9, progress=10), callback(run_id, ev.RUN_FAILED, reason="Late"), succeeded):
        assert status.post(event).status_code in (200, 204)
    status.drain()

    assert status.run(run_id) == final


def test_a_retried_attempts_progress_with_millisecond_seqs_goes_on_past_the_earlier_attempts(status: Status) -> None:
    run_id = status.new_run()
    first = 1_800_000_000_000  # the trainer's seq: milliseconds since the epoch, or last + 1
    for seq, message in ((first, "epoch 3"), (first + 1, "ValueError: boom"), (first + 12_000, "retry: reading data")):
        phase = c.PHASE_ERROR if message.startswith("ValueError") else "training"
        assert status.post(callback(run_id, seq=seq, progress=40, phase=phase, message=message)).status_code == 204
    status.drain()
    run = status.run(run_id)
    assert (run["seq"], run["message"], run["state"]) == (first + 12_000, "retry: reading data", "running")
    keys = list(status.store.list(c.run_events_prefix(run_id)))
    assert [k.rsplit("/", 1)[1].split("-", 1)[0] for k in keys] == [f"{s:016d}" for s in (first, first + 1, first + 12_000)]


@pytest.mark.parametrize(("data", "field"), [
    ({"progress": 10}, "data.seq"),
    ({"seq": 0, "progress": 10}, "data.seq"),
    ({"seq": 10**16, "progress": 10}, "data.seq"),
    ({"seq": True, "progress": 10}, "data.seq"),
    ({"seq": 1, "progress": 140}, "data.progress"),
    ({"seq": 1, "progress": "half"}, "data.progress"),
    ({"seq": 1, "progress": 1, "metrics": [1]}, "data.metrics"),
])
def test_malformed_progress_gets_400_naming_the_field_and_writes_nothing(status: Status, data: dict[str, Any],
                                                                          field: str) -> None:
    run_id = status.new_run()
    response = status.post(callback(run_id, **data))

    assert response.status_code == 400
    assert field in [d["field"] for d in response.json()["error"]["details"]]
    assert list(status.store.list(c.run_events_prefix(run_id))) == []


def test_events_that_are_not_callbacks_or_name_no_run_get_400(status: Status) -> None:
    no_subject = ev.new_event(ev.RUN_PROGRESS, source="/x", data={"seq": 1, "progress": 1})
    wrong_type = ev.new_event(ev.BOT_CHANGED, source="/x", subject="r", data={})
    for event in (no_subject, wrong_type):
        assert status.post(event).status_code == 400


def test_run_launched_replies_are_acknowledged_without_a_write(status: Status) -> None:
    run_id = status.new_run()
    before = status.run(run_id)
    event = ev.new_event(ev.RUN_LAUNCHED, source="/jobplane/launch", subject=run_id, data={"id": run_id})

    assert (status.post(event).status_code, status.run(run_id)) == (204, before)


def test_a_dead_store_answers_503_so_the_broker_retries(status_url: str) -> None:
    from jobplane.store.gcs import default_client

    dead = GcsStore("gs://b/p", deadline=0.5, timeout=0.5,
                    client=default_client({"STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"}))
    for s in start(dead, status_url):
        response = s.post(callback("some-run-0123", ev.RUN_FAILED, reason="Crash"))
        assert response.status_code == 503


def test_progress_a_crashed_replica_logged_reaches_the_final_record(status: Status) -> None:
    run_id = status.new_run()
    for seq in (1, 2, 3):  # logged by a replica that died before its flush
        event = callback(run_id, seq=seq, progress=seq * 10, phase=f"p{seq}")
        progress.append_log(status.store, run_id, event, event.data, now=datetime.now(UTC))
    status.post(callback(run_id, ev.RUN_FAILED, reason="NodeLost"))

    run = status.run(run_id)
    assert (run["state"], run["progress"], run["seq"]) == ("failed", 30, 3)


# --- load: nothing lost, writes coalesced ---------------------------------------------------


def post_all(status: Status, events: list[ev.Event], *, writers: int) -> None:
    failures: list[int] = []

    def send(chunk: list[ev.Event]) -> None:
        session = requests.Session()
        for event in chunk:
            headers, body = ev.to_http(event)
            code = session.post(status.url, data=body, headers=headers, timeout=30).status_code
            if code >= 300:
                failures.append(code)

    threads = [threading.Thread(target=send, args=(events[i::writers],)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


@pytest.mark.slow
def test_eight_writers_of_200_progress_events_for_one_run_lose_nothing(status: Status) -> None:
    run_id = status.new_run()
    events = [callback(run_id, seq=s, progress=s // 16, phase=f"step-{s}", metrics={f"m{s % 8}": s})
              for s in range(1, 1601)]
    random.Random(5).shuffle(events)
    post_all(status, events, writers=8)
    status.drain()

    run = status.run(run_id)
    assert (run["seq"], run["progress"], run["phase"]) == (1600, 100, "step-1600")
    assert len(list(status.store.list(c.run_events_prefix(run_id)))) == 1600
    assert status.post(callback(run_id, ev.RUN_SUCCEEDED, metrics={"accuracy": 0.8}, promote=False)).status_code == 204
    assert status.run(run_id)["state"] == "succeeded"


@pytest.mark.slow
def test_a_thousand_events_for_fifty_runs_keep_each_runs_last_progress_at_one_write_a_second(counted: Status) -> None:
    run_ids = [counted.new_run(f"spec-{n}") for n in range(50)]
    counted.store.writes.clear()  # type: ignore[attr-defined]
    events = [callback(r, seq=s, progress=s * 5, phase=f"s{s}") for s in range(1, 21) for r in run_ids]
    started = time.monotonic()
    post_all(counted, events, writers=8)
    counted.drain()
    seconds = time.monotonic() - started

    for run_id in run_ids:
        run = counted.run(run_id)
        assert (run["seq"], run["progress"], run["phase"]) == (20, 100, "s20")
        writes = len(counted.store.writes[c.run_key(run_id)])  # type: ignore[attr-defined]
        assert 1 <= writes <= seconds / progress.FLUSH_INTERVAL_S + 1, (writes, seconds)


def test_callbacks_that_arrive_before_their_runs_record_are_kept_until_it_lands(status: Status) -> None:
    """The launch writes the record just after the Job's create: an authenticated callback
    can beat it. Progress waits in the coalescer; a final callback answers 503 (redelivered)."""
    trigger = {"type": ev.BOT_CHANGED, "source": "/tests", "id": "early", "subject": "test-bot"}
    run = runs.new_run(spec=make_spec(), trigger=trigger, requested_by="tests", now=datetime.now(UTC))
    assert status.post(callback(run["id"], seq=1, progress=20, phase="training")).status_code == 204
    final = callback(run["id"], ev.RUN_SUCCEEDED, metrics={"accuracy": 0.8}, promote=False)
    assert status.post(final).status_code == 503

    runs.create_run(status.store, runs.transition(run, "launched", now=datetime.now(UTC)))
    assert status.post(final).status_code == 204  # the broker's redelivery
    record = status.run(run["id"])
    assert (record["state"], record["seq"], record["phase"]) == ("succeeded", 1, "succeeded")
    assert record["metrics"]["accuracy"] == 0.8


def test_progress_for_a_run_whose_record_is_late_reaches_it_once_written(status: Status) -> None:
    trigger = {"type": ev.BOT_CHANGED, "source": "/tests", "id": "late", "subject": "test-bot"}
    run = runs.new_run(spec=make_spec(), trigger=trigger, requested_by="tests", now=datetime.now(UTC))
    assert status.post(callback(run["id"], seq=1, progress=20, phase="training")).status_code == 204
    time.sleep(progress.FLUSH_INTERVAL_S + 0.2)  # its first flush finds no record

    runs.create_run(status.store, runs.transition(run, "launched", now=datetime.now(UTC)))
    status.drain()
    record = status.run(run["id"])
    assert (record["state"], record["progress"], record["phase"]) == ("running", 20, "training")


# --- promotion: only the status function moves a bot's pointer, for a succeeded run --------


def run_created(status: Status, trigger_id: str, created: datetime) -> str:
    trigger = {"type": ev.BOT_CHANGED, "source": "/tests", "id": trigger_id, "subject": "test-bot"}
    run = runs.new_run(spec=make_spec(id="train-test-bot"), trigger=trigger, requested_by="tests", now=created)
    stored, _ = runs.create_run(status.store, runs.transition(run, "launched", now=created))
    return str(stored["id"])


def succeeded(run_id: str, macro_f1: float) -> ev.Event:
    return callback(run_id, ev.RUN_SUCCEEDED, metrics={"macro_f1": macro_f1, "accuracy": macro_f1},
                    model={"format": "jobplane-npz-v1", "threshold": 0.3, "trainingDataHash": "sha256:ab"})


def pointer(status: Status) -> dict[str, Any]:
    return json.loads(status.store.read(c.bot_model_key("test-bot")).data)  # type: ignore[no-any-return]


@pytest.mark.parametrize("ended", ["failed", "cancelled", "superseded"])
def test_a_run_that_ended_otherwise_never_promotes_whatever_its_trainer_sends(status: Status, ended: str) -> None:
    run_id = status.new_run()
    runs.update_run(status.store, run_id, lambda r: runs.transition(r, ended, reason="JobMissing", now=datetime.now(UTC)))

    response = status.post(succeeded(run_id, 0.99))

    assert (response.status_code, response.content) == (204, b"")
    assert status.run(run_id)["state"] == ended and "promoted" not in status.run(run_id)
    assert list(status.store.list("bots/")) == []


def test_the_pointer_names_only_the_succeeded_run_with_the_models_own_uri(status: Status) -> None:
    run_id = status.new_run()
    response = status.post(succeeded(run_id, 0.9))

    assert response.status_code == 200 and ev.from_http(dict(response.headers), response.content).type == ev.MODEL_READY
    found = pointer(status)
    assert (found["runId"], found["threshold"], found["trainingDataHash"]) == (run_id, 0.3, "sha256:ab")
    assert found["modelUri"] == status.store.uri(f"runs/{run_id}/artifacts/model.npz")
    assert found["runCreatedAt"] == status.run(run_id)["createdAt"]
    assert status.run(run_id)["promoted"] is True and status.run(run_id)["gate"]["decision"] == "promoted"


def test_an_older_run_finishing_late_never_moves_the_pointer_back(status: Status) -> None:
    older = run_created(status, "old", datetime(2026, 1, 1, 10, tzinfo=UTC))
    newer = run_created(status, "new", datetime(2026, 1, 1, 11, tzinfo=UTC))
    assert status.post(succeeded(newer, 0.7)).status_code == 200

    assert status.post(succeeded(older, 0.99)).status_code == 204  # better, but older

    assert pointer(status)["runId"] == newer
    assert status.run(older)["promoted"] is False and "newer" in status.run(older)["gate"]["decision"]


def test_a_newer_model_worse_by_more_than_the_margin_keeps_the_current_one(status: Status) -> None:
    first = run_created(status, "a", datetime(2026, 1, 1, 10, tzinfo=UTC))
    second = run_created(status, "b", datetime(2026, 1, 1, 11, tzinfo=UTC))
    third = run_created(status, "c", datetime(2026, 1, 1, 12, tzinfo=UTC))
    assert status.post(succeeded(first, 0.9)).status_code == 200
    assert status.post(succeeded(second, 0.8)).status_code == 204
    assert pointer(status)["runId"] == first and "margin" in status.run(second)["gate"]["decision"]
    assert status.post(succeeded(third, 0.89)).status_code == 200  # within the margin: the newer wins
    assert pointer(status)["runId"] == third


def test_a_redelivered_success_after_promotion_changes_nothing(status: Status) -> None:
    run_id = status.new_run()
    event = succeeded(run_id, 0.9)
    assert status.post(event).status_code == 200
    record, found = status.run(run_id), pointer(status)

    assert status.post(event).status_code == 200  # model.ready again: the broker may have lost the first
    assert status.run(run_id) == record and pointer(status) == found
