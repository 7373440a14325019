"""The HTTP API through the real functions-framework app of target ``api``, on a filesystem store."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from openapi_spec_validator import validate as validate_openapi
from support.fakes import FakeLauncher
from support.servers import serve_wsgi
from support.specs import TEST_DATA_PREFIXES, TRAINING_EXAMPLES, make_spec

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs, runtime
from jobplane.app import create_function_app
from jobplane.errors import UnavailableError
from jobplane.handlers import api, launch
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store.base import ObjectStore
from jobplane.store.files import FileStore


@dataclass
class Api:
    client: Any
    rt: Runtime
    store: ObjectStore
    launcher: FakeLauncher
    sent: list[ev.Event] = field(default_factory=list)
    send_error: Exception | None = None

    def create(self, spec: dict[str, Any]) -> Any:
        response = self.client.post("/v1/specs", json=spec)
        assert response.status_code == 201, response.get_json()
        return response

    def trigger(self, spec_id: str, body: Any = None) -> Any:
        return self.client.post(f"/v1/specs/{spec_id}/runs", json=body)


API_TOKEN = "test-api-token"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Api]:
    store = FileStore(tmp_path / "store", fsync=False)
    launcher = FakeLauncher()
    settings = Settings(data_prefixes=TEST_DATA_PREFIXES, store_url=store.url, sink="http://127.0.0.1:9/x", callback_key=b"k" * 32, command=("true",),
                        auth="token", api_token=API_TOKEN)
    holder: dict[str, Api] = {}

    def send(event: ev.Event) -> None:
        if holder["api"].send_error is not None:
            raise holder["api"].send_error
        holder["api"].sent.append(event)

    rt = Runtime(settings=settings, store=store, launcher_factory=lambda: launcher, send=send)
    runtime.install(rt)
    app = create_function_app("api")
    client = app.test_client()  # type: ignore[attr-defined]
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    holder["api"] = Api(client=client, rt=rt, store=store, launcher=launcher)
    yield holder["api"]


def error_of(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]  # type: ignore[no-any-return]


def run_through_launch(env: Api, event: ev.Event) -> None:
    """What the broker would do with the API's run.requested: deliver it to launch."""
    launch.on_event(event, rt=env.rt)


# --- plain pages ---------------------------------------------------------------------------------


def test_healthz(env: Api) -> None:
    response = env.client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_head_is_answered_like_get_without_a_body(env: Api) -> None:
    response = env.client.head("/healthz")
    assert response.status_code == 200 and response.data == b""


def test_openapi_document_is_valid_and_describes_every_route(env: Api) -> None:
    document = env.client.get("/openapi.json").get_json()
    validate_openapi(document)
    documented = {re.sub(r"\{\w+\}", "x", path) for path in document["paths"]}
    for route in api.ROUTES:
        example = re.sub(r"\(\?P<\w+>\[\^/:\]\+\)", "x", route.pattern.pattern).replace("\\", "")
        assert example in documented, example
        methods = {m.lower() for m in route.methods}
        path = next(p for p in document["paths"] if re.sub(r"\{\w+\}", "x", p) == example)
        assert methods <= set(document["paths"][path]), path


def test_dashboard_is_a_self_contained_page_rendered_on_the_server(env: Api) -> None:
    env.create(make_spec())
    response = env.client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "train-test-bot" in page, "the specs are in the HTML, not fetched by a script"
    assert "<script src=" not in page and "<link" not in page


# --- specs ---------------------------------------------------------------------------------------


def test_create_spec_stores_it_normalized_create_only(env: Api) -> None:
    spec = make_spec(priority=None)
    del spec["priority"]
    response = env.create(spec)
    assert response.headers["Location"] == "/v1/specs/train-test-bot"
    body = response.get_json()
    assert body["priority"] == "normal" and body["timezone"] == "UTC"
    assert json.loads(env.store.read(c.spec_key("train-test-bot")).data) == body
    assert env.client.get("/v1/specs/train-test-bot").get_json() == body


def test_create_existing_spec_is_a_conflict(env: Api) -> None:
    env.create(make_spec())
    response = env.client.post("/v1/specs", json=make_spec(description="other"))
    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    assert env.client.get("/v1/specs/train-test-bot").get_json()["description"] == "test training spec"


def test_invalid_spec_lists_every_problem(env: Api) -> None:
    response = env.client.post("/v1/specs", json=make_spec(id="Bad_Id", retries=50, resources={"gpus": 12}))
    assert response.status_code == 400
    error = error_of(response)
    assert {d["field"] for d in error["details"]} == {"spec.id", "spec.retries", "spec.resources.gpus"}
    assert "spec.resources.gpus: must be between 0 and 8, got 12" in error["message"]
    assert list(env.store.list("specs/")) == []


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]"], ids=["not-json", "empty", "array"])
def test_malformed_bodies_are_400(env: Api, body: bytes) -> None:
    response = env.client.post("/v1/specs", data=body, content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["details"]


def test_oversized_body_is_413_at_the_configured_limit(env: Api) -> None:
    runtime.install(Runtime(settings=env.rt.settings.with_(max_event_bytes=2000), store=env.store,
                            launcher_factory=lambda: env.launcher, send=env.sent.append))
    client = create_function_app("api").test_client()  # type: ignore[attr-defined]
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    response = client.post("/v1/specs", json=make_spec(description="x" * 3000))
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert "JOBPLANE_MAX_EVENT_BYTES" in error_of(response)["message"]
    assert client.post("/v1/specs", json=make_spec(description="x" * 100)).status_code == 201


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_that_is_not_json_is_415(env: Api, content_type: str) -> None:
    response = env.client.post("/v1/specs", data=json.dumps(make_spec()), content_type=content_type)
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    assert list(env.store.list("specs/")) == []


def test_deeply_nested_json_is_400_naming_the_body(env: Api) -> None:
    response = env.client.post("/v1/specs", data=b"[" * 100_000 + b"]" * 100_000, content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["details"] == [{"field": "body", "problem": "JSON nested deeper than 64 levels"}]


def test_a_schedule_that_can_never_fire_is_refused_at_create_and_update(env: Api) -> None:
    created = env.client.post("/v1/specs", json=make_spec(id="leap", schedule="0 0 30 2 *"))
    assert created.status_code == 400
    assert [d["field"] for d in error_of(created)["details"]] == ["spec.schedule"]
    assert "never fires" in error_of(created)["details"][0]["problem"]
    env.create(make_spec(id="leap", schedule="0 0 29 2 *"))
    updated = env.client.put("/v1/specs/leap", json=make_spec(id="leap", schedule="0 0 31 4 *"))
    assert updated.status_code == 400 and error_of(updated)["details"][0]["field"] == "spec.schedule"
    assert env.client.get("/v1/specs/leap").get_json()["schedule"] == "0 0 29 2 *"


def test_an_unreadable_store_is_503_with_retry_after(env: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(FileStore, "_stage", refuse)
    response = env.client.post("/v1/specs", json=make_spec())
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert error_of(response)["code"] == "unavailable"
    assert str(env.store.url) not in response.get_data(as_text=True)


def test_inline_training_examples_are_stored_and_the_spec_keeps_a_uri(env: Api) -> None:
    body = env.create(make_spec(params={"trainingData": {"examples": TRAINING_EXAMPLES}})).get_json()
    uri = body["params"]["trainingData"]["uri"]
    [key] = env.store.list(c.bot_data_prefix("test-bot"))
    assert uri == env.store.uri(key)
    assert json.loads(env.store.read(key).data) == {"examples": TRAINING_EXAMPLES}


class CloudStore(FileStore):
    """A FileStore that says it is a bucket, as GcsStore would."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, fsync=False)
        self.url = "gs://bucket/jobplane"


def test_data_uris_outside_the_bots_prefix_are_refused_when_the_store_is_a_bucket(env: Api, tmp_path: Path) -> None:
    env.rt.store = CloudStore(tmp_path / "cloud")
    spec = make_spec(type="kb-index", params={"articles": [{"id": "a", "title": "t", "uri": "file:///etc/passwd"}]})
    del spec["params"]["trainingData"]
    response = env.client.post("/v1/specs", json=spec)
    assert response.status_code == 400
    assert error_of(response)["details"][0]["field"] == "spec.params.articles[0].uri"
    response = env.client.post("/v1/specs", json=make_spec(params={"trainingData": {"uri": "file:///data/x.json"}}))
    assert [d["field"] for d in error_of(response)["details"]] == ["spec.params.trainingData.uri"]
    ok = make_spec(params={"trainingData": {"uri": "gs://bucket/jobplane/bots/test-bot/data.json"}})
    assert env.client.post("/v1/specs", json=ok).status_code == 201


def test_lists_specs_in_pages(env: Api) -> None:
    for name in ("a", "b", "c"):
        env.create(make_spec(id=f"spec-{name}"))
    first = env.client.get("/v1/specs?limit=2").get_json()
    assert [s["id"] for s in first["specs"]] == ["spec-a", "spec-b"]
    second = env.client.get(f"/v1/specs?limit=2&pageToken={first['nextPageToken']}").get_json()
    assert [s["id"] for s in second["specs"]] == ["spec-c"] and "nextPageToken" not in second
    assert len(env.client.get("/v1/specs").get_json()["specs"]) == 3


def test_put_replaces_with_the_read_generation(env: Api) -> None:
    etag = env.create(make_spec()).headers["ETag"]
    response = env.client.put("/v1/specs/train-test-bot", json=make_spec(description="new"), headers={"If-Match": etag})
    assert response.status_code == 200 and response.get_json()["description"] == "new"
    assert response.headers["ETag"] != etag
    stale = env.client.put("/v1/specs/train-test-bot", json=make_spec(), headers={"If-Match": etag})
    assert stale.status_code == 412


def test_put_fills_the_id_from_the_path_and_rejects_another(env: Api) -> None:
    env.create(make_spec())
    spec = make_spec(description="no id")
    del spec["id"]
    assert env.client.put("/v1/specs/train-test-bot", json=spec).status_code == 200
    response = env.client.put("/v1/specs/train-test-bot", json=make_spec(id="other"))
    assert response.status_code == 400 and error_of(response)["details"][0]["field"] == "spec.id"


def test_put_of_a_missing_spec_is_404(env: Api) -> None:
    assert env.client.put("/v1/specs/train-test-bot", json=make_spec()).status_code == 404


class RacingStore(FileStore):
    """A FileStore where another writer changes ``key`` right before our conditional write."""

    race_key = ""

    def write(self, key: str, data: bytes, *, if_generation_match: int | None = None,
              content_type: str = "application/json", durable: bool = True) -> int:
        if key == self.race_key and if_generation_match not in (None, 0):
            self.race_key = ""
            super().write(key, data)
        return super().write(key, data, if_generation_match=if_generation_match, content_type=content_type,
                             durable=durable)


def test_put_racing_another_writer_is_a_conflict(env: Api, tmp_path: Path) -> None:
    env.create(make_spec())
    store = RacingStore(Path(env.store.url.removeprefix("file://")), fsync=False)
    store.race_key = c.spec_key("train-test-bot")
    env.rt.store = store
    response = env.client.put("/v1/specs/train-test-bot", json=make_spec(description="mine"))
    assert response.status_code == 409
    assert "changed while" in error_of(response)["message"]


def test_delete_spec(env: Api) -> None:
    env.create(make_spec())
    assert env.client.delete("/v1/specs/train-test-bot").status_code == 204
    assert env.client.get("/v1/specs/train-test-bot").status_code == 404
    assert env.client.delete("/v1/specs/train-test-bot").status_code == 404


@pytest.mark.parametrize("path", ["/v1/specs/nope", "/v1/specs/Bad_Id", "/v1/specs/..%2Fx", "/v1/runs/nope",
                                  "/v1/bots/nope/model", "/v2/specs", "/v1/specs/a/b/c"])
def test_unknown_ids_and_paths_are_404(env: Api, path: str) -> None:
    response = env.client.get(path)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("delete", "/v1/specs", "GET, POST"), ("post", "/v1/specs/x", "DELETE, GET, PUT"),
    ("get", "/v1/runs/x:cancel", "POST"), ("put", "/healthz", "GET"),
])
def test_wrong_methods_are_405_with_allow(env: Api, method: str, path: str, allowed: str) -> None:
    response = getattr(env.client, method)(path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert error_of(response)["code"] == "method_not_allowed"


def test_trailing_slash_is_the_same_path(env: Api) -> None:
    env.create(make_spec())
    assert env.client.get("/v1/specs/").status_code == 200
    assert env.client.get("/v1/specs/train-test-bot/").status_code == 200


# --- runs ----------------------------------------------------------------------------------------


def test_trigger_sends_run_requested_and_answers_the_run_id(env: Api) -> None:
    env.create(make_spec())
    response = env.trigger("train-test-bot")
    assert response.status_code == 202
    [event] = env.sent
    assert (event.type, event.source, event.subject) == (ev.RUN_REQUESTED, "/jobplane/api", "train-test-bot")
    assert event.data == {"specId": "train-test-bot"}
    run_id = runs.run_id_for("train-test-bot", source=event.source, event_id=event.id)
    assert response.get_json() == {"runId": run_id, "specId": "train-test-bot"}
    assert response.headers["Location"] == f"/v1/runs/{run_id}"


def test_the_run_id_is_the_one_launch_creates(env: Api) -> None:
    env.create(make_spec())
    run_id = env.trigger("train-test-bot").get_json()["runId"]
    run_through_launch(env, env.sent[0])
    run = env.client.get(f"/v1/runs/{run_id}").get_json()
    assert (run["id"], run["state"], run["specId"]) == (run_id, "launched", "train-test-bot")
    assert env.launcher.launch_calls == [run_id]
    assert "token" not in json.dumps(run).lower()


def test_trigger_with_param_overrides(env: Api) -> None:
    env.create(make_spec())
    response = env.trigger("train-test-bot", {"params": {"epochs": 5, "trainingData": {"examples": TRAINING_EXAMPLES}}})
    assert response.status_code == 202
    params = env.sent[0].data["params"]
    assert params["epochs"] == 5
    assert params["trainingData"]["uri"].startswith("file://"), "inline data goes to the store, the event gets a URI"


def test_trigger_with_force_asks_launch_to_train_even_on_a_cache_hit(env: Api) -> None:
    env.create(make_spec())
    assert env.trigger("train-test-bot", {"force": True}).status_code == 202
    assert env.trigger("train-test-bot", {}).status_code == 202

    assert env.sent[0].data["force"] is True and "force" not in env.sent[1].data


@pytest.mark.parametrize(("body", "field"), [
    ({"force": "yes"}, "body.force"),
    ({"params": {"epochs": 0}}, "spec.params.epochs"),
    ({"params": {"nope": 1}}, "spec.params.nope"),
    ({"parameters": {}}, "body.parameters"),
    ({"params": [1]}, "body.params"),
    ([1], "body"),
])
def test_invalid_run_requests_are_400_and_send_nothing(env: Api, body: Any, field: str) -> None:
    env.create(make_spec())
    response = env.trigger("train-test-bot", body)
    assert response.status_code == 400
    assert field in [d["field"] for d in error_of(response)["details"]]
    assert env.sent == []


def test_trigger_of_a_missing_spec_is_404(env: Api) -> None:
    assert env.trigger("nope").status_code == 404
    assert env.sent == []


def test_trigger_when_the_broker_is_down_is_503(env: Api) -> None:
    env.create(make_spec())
    env.send_error = UnavailableError("broker 503")
    response = env.trigger("train-test-bot")
    assert response.status_code == 503
    assert error_of(response)["code"] == "unavailable"


def test_lists_a_specs_runs_newest_first(env: Api) -> None:
    env.create(make_spec())
    ids = []
    for _ in range(3):
        ids.append(env.trigger("train-test-bot").get_json()["runId"])
        run_through_launch(env, env.sent[-1])
    listed = env.client.get("/v1/specs/train-test-bot/runs").get_json()["runs"]
    assert {r["id"] for r in listed} == set(ids)
    assert [r["createdAt"] for r in listed] == sorted((r["createdAt"] for r in listed), reverse=True)
    assert len(env.client.get("/v1/specs/train-test-bot/runs?limit=2").get_json()["runs"]) == 2
    assert len(env.client.get("/v1/bots/test-bot/runs?limit=2").get_json()["runs"]) == 2


def test_a_bots_runs_filtered_by_type_give_its_bot_test_trend(env: Api) -> None:
    env.create(make_spec())
    env.create({**make_spec(id="smoke", type="bot-test"), "params": {"botId": "test-bot", "minAccuracy": 0.5}})
    tests = []
    for spec_id in ("train-test-bot", "smoke", "train-test-bot", "smoke", "smoke"):
        run_id = env.trigger(spec_id).get_json()["runId"]
        run_through_launch(env, env.sent[-1])
        tests += [run_id] if spec_id == "smoke" else []

    listed = env.client.get("/v1/bots/test-bot/runs?type=bot-test&limit=2").get_json()["runs"]

    assert [r["id"] for r in listed] == tests[::-1][:2] and {r["type"] for r in listed} == {"bot-test"}
    assert len(env.client.get("/v1/bots/test-bot/runs?type=training").get_json()["runs"]) == 2
    bad = env.client.get("/v1/bots/test-bot/runs?type=train")
    assert bad.status_code == 400 and error_of(bad)["details"] == [
        {"field": "type", "problem": "must be one of training, kb-index, bot-test, got 'train'"}]


@pytest.mark.parametrize("limit", ["0", "101", "x", "-1", "2.5"])
def test_invalid_limits_are_400(env: Api, limit: str) -> None:
    env.create(make_spec())
    response = env.client.get(f"/v1/specs/train-test-bot/runs?limit={limit}")
    assert response.status_code == 400
    assert error_of(response)["details"][0]["field"] == "limit"


def test_runs_of_an_unknown_spec_are_404(env: Api) -> None:
    assert env.client.get("/v1/specs/nope/runs").status_code == 404


def launched_run(env: Api) -> str:
    env.create(make_spec())
    run_id: str = env.trigger("train-test-bot").get_json()["runId"]
    run_through_launch(env, env.sent[-1])
    return run_id


def test_cancel_marks_the_run_and_deletes_the_job(env: Api) -> None:
    run_id = launched_run(env)
    response = env.client.post(f"/v1/runs/{run_id}:cancel")
    assert response.status_code == 200
    assert response.get_json()["state"] == "cancelled"
    assert env.launcher.cancelled == [run_id]
    assert runs.get_run(env.store, run_id)["state"] == "cancelled"
    assert run_id not in runs.list_active(env.store)


def test_cancel_of_a_queued_run_cancels_it_and_deletes_its_waiting_job(env: Api) -> None:
    run_id = launched_run(env)
    runs.update_run(env.store, run_id, lambda r: {**runs.transition(r, "queued", now=datetime.now(UTC)), "reason": "WaitingForQuota"})
    response = env.client.post(f"/v1/runs/{run_id}:cancel")
    assert response.status_code == 200 and response.get_json()["state"] == "cancelled"
    assert env.launcher.cancelled == [run_id]


def test_cancel_again_retries_the_job_delete(env: Api) -> None:
    run_id = launched_run(env)
    env.client.post(f"/v1/runs/{run_id}:cancel")
    assert env.client.post(f"/v1/runs/{run_id}:cancel").status_code == 200
    assert env.launcher.cancelled == [run_id, run_id]


def test_cancel_of_a_finished_run_is_409(env: Api) -> None:
    run_id = launched_run(env)
    runs.update_run(env.store, run_id, lambda r: runs.transition(r, "succeeded", now=env.rt.clock()))
    response = env.client.post(f"/v1/runs/{run_id}:cancel")
    assert response.status_code == 409
    assert "already succeeded" in error_of(response)["message"]
    assert env.launcher.cancelled == []


def test_cancel_of_an_unknown_run_is_404(env: Api) -> None:
    assert env.client.post("/v1/runs/nope:cancel").status_code == 404


# --- bots ----------------------------------------------------------------------------------------


def test_model_pointer(env: Api) -> None:
    assert env.client.get("/v1/bots/test-bot/model").status_code == 404
    pointer = {"runId": "r-1", "modelUri": "file:///m", "metrics": {"accuracy": 0.9}}
    env.store.write(c.bot_model_key("test-bot"), json.dumps(pointer).encode())
    assert env.client.get("/v1/bots/test-bot/model").get_json() == pointer


def test_predict_delegates_to_the_predict_module(env: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from jobplane.handlers import predict as predict_module

    calls: list[tuple[str, str]] = []

    def fake(rt: Runtime, bot_id: str, text: str) -> dict[str, Any]:
        calls.append((bot_id, text))
        return {"intent": "greet", "confidence": 0.97, "entities": []}

    monkeypatch.setattr(predict_module, "predict", fake)
    response = env.client.post("/v1/bots/test-bot:predict", json={"text": "hello"})
    assert (response.status_code, response.get_json()["intent"]) == (200, "greet")
    assert calls == [("test-bot", "hello")]


def test_predict_without_a_model_is_404(env: Api) -> None:
    response = env.client.post("/v1/bots/test-bot:predict", json={"text": "hello"})
    assert response.status_code == 404


def test_predict_rejects_bad_bodies(env: Api) -> None:
    assert env.client.post("/v1/bots/test-bot:predict", json={"txt": "hello"}).status_code == 400
    assert env.client.post("/v1/bots/test-bot:predict", json={"text": ""}).status_code == 400


def test_predict_is_501_when_the_module_is_missing(env: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jobplane.handlers.predict", None)
    response = env.client.post("/v1/bots/test-bot:predict", json={"text": "hello"})
    assert response.status_code == 501
    assert error_of(response)["code"] == "not_implemented"


# --- failures ------------------------------------------------------------------------------------


class BrokenStore(FileStore):
    def list(self, prefix: str, *, start_after: str = "", limit: int | None = None) -> Iterator[str]:
        raise RuntimeError("disk on fire: /secret/path")


def test_unexpected_errors_are_500_without_internals(env: Api, tmp_path: Path) -> None:
    env.rt.store = BrokenStore(tmp_path / "broken")
    response = env.client.get("/v1/specs")
    assert response.status_code == 500
    assert error_of(response) == {"code": "internal", "message": "internal error", "details": []}


def test_over_real_http(env: Api) -> None:
    app = create_function_app("api")
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {API_TOKEN}"
    with serve_wsgi(app) as url:
        created = http.post(f"{url}/v1/specs", json=make_spec(), timeout=10)
        assert created.status_code == 201
        accepted = http.post(f"{url}/v1/specs/train-test-bot/runs", timeout=10)
        assert accepted.status_code == 202
        assert http.get(f"{url}{accepted.headers['Location']}", timeout=10).status_code == 404
        run_through_launch(env, env.sent[-1])
        assert http.get(f"{url}{accepted.headers['Location']}", timeout=10).json()["state"] == "launched"
