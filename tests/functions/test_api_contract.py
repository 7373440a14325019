"""The API keeps its contract: every route's answers, success and error, are documented in
``/openapi.json`` for their status and validate against that status's response schema; the
run listings page with ``pageToken``; the CloudEvents catalogue serves each type's data schema.

Through the real functions-framework app of target ``api`` with Bearer auth, on a filesystem store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from support.fakes import FakeLauncher
from support.specs import TEST_DATA_PREFIXES, TRAINING_EXAMPLES, make_spec

from jobplane import catalogue, openapi, runs, runtime, schemas
from jobplane import conventions as c
from jobplane import events as ev
from jobplane.app import create_function_app
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store.files import FileStore

TOKEN = "contract-token"
DOCUMENT = openapi.document()
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _template(path: str) -> str:
    """The document's path template that ``path`` is an instance of."""
    for template in DOCUMENT["paths"]:
        pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part)
                          for part in re.split(r"(\{\w+\})", template))
        if re.fullmatch(pattern, path) and not (":" in path and ":" not in template):
            return template
    raise AssertionError(f"{path} is not in /openapi.json")


def _response_spec(template: str, method: str, status: int) -> dict[str, Any]:
    responses = DOCUMENT["paths"][template][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {template} answered an undocumented {status}"
    spec = responses[str(status)]
    if "$ref" in spec:
        spec = DOCUMENT["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
    return spec  # type: ignore[no-any-return]


@dataclass
class Contract:
    """A client whose every answer is checked against the document."""

    client: Any
    store: FileStore
    sent: list[ev.Event]
    checked: set[tuple[str, str, int]]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.open(path, method=method, **kwargs)
        template = _template(path.split("?", 1)[0])
        spec = _response_spec(template, method, response.status_code)
        content = spec.get("content") or {}
        if not content:
            assert not response.data, f"{method} {path}: {response.status_code} has no documented body"
        else:
            assert response.mimetype in content, f"{method} {path}: {response.mimetype} not in {list(content)}"
            schema = content[response.mimetype].get("schema")
            if response.mimetype == "application/json" and schema:
                validator = OAS31Validator({**schema, "components": DOCUMENT["components"]})
                errors = [e.message for e in validator.iter_errors(response.get_json())]
                assert not errors, f"{method} {path} {response.status_code}: {errors[:3]}"
        self.checked.add((method, template, response.status_code))
        return response


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Contract]:
    store = FileStore(tmp_path / "store", fsync=False)
    sent: list[ev.Event] = []
    settings = Settings(data_prefixes=TEST_DATA_PREFIXES, store_url=store.url, sink="http://127.0.0.1:9/x",
                        callback_key=b"k" * 32, command=("true",), auth="token", api_token=TOKEN)
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=FakeLauncher, send=sent.append))
    client = create_function_app("api").test_client()  # type: ignore[attr-defined]
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    yield Contract(client=client, store=store, sent=sent, checked=set())


def stored_run(store: FileStore, spec_id: str, n: int, **fields: Any) -> runs.Run:
    spec = {"id": spec_id, "type": "training", "params": {"botId": "test-bot"}}
    run = runs.new_run(spec=spec, trigger={"type": ev.RUN_REQUESTED, "source": "/test", "id": f"evt-{n}"},
                       requested_by="test", now=NOW + timedelta(minutes=n))
    run.update(fields)
    runs.create_run(store, run)
    return run


# --- every route, every answer -------------------------------------------------------------------


def test_spec_routes_answer_as_documented(api: Contract) -> None:
    spec = make_spec()
    assert api.call("POST", "/v1/specs", json=spec).status_code == 201
    assert api.call("POST", "/v1/specs", json=spec).status_code == 409
    assert api.call("POST", "/v1/specs", json={**spec, "id": "Bad"}).status_code == 400
    assert api.call("POST", "/v1/specs", data="x", content_type="text/plain").status_code == 415
    assert api.call("POST", "/v1/specs", json={"id": "other", "type": "kb-index", "params": {"botId": "b"}}).status_code == 201
    assert api.call("GET", "/v1/specs?limit=1").get_json()["nextPageToken"] == "other"
    assert api.call("GET", "/v1/specs?limit=0").status_code == 400
    assert api.call("GET", "/v1/specs/train-test-bot").status_code == 200
    assert api.call("GET", "/v1/specs/nope").status_code == 404
    assert api.call("PUT", "/v1/specs/train-test-bot", json=spec, headers={"If-Match": '"1"'}).status_code == 412
    assert api.call("PUT", "/v1/specs/train-test-bot", json={**spec, "description": "new"}).status_code == 200
    assert api.call("PUT", "/v1/specs/nope", json={**spec, "id": "nope"}).status_code == 404
    assert api.call("DELETE", "/v1/specs/other").status_code == 204
    assert api.call("DELETE", "/v1/specs/other").status_code == 404


def test_run_routes_answer_as_documented(api: Contract) -> None:
    api.call("POST", "/v1/specs", json=make_spec())
    assert api.call("POST", "/v1/specs/train-test-bot/runs", json={"params": {"epochs": 3}}).status_code == 202
    assert api.call("POST", "/v1/specs/train-test-bot/runs", json={"params": {"epochs": 0}}).status_code == 400
    assert api.call("POST", "/v1/specs/nope/runs").status_code == 404
    running = stored_run(api.store, "train-test-bot", 1, state="running", progress=40, eta=12.5, message="epoch 2")
    done = stored_run(api.store, "train-test-bot", 2)
    runs.update_run(api.store, done["id"], lambda r: {**runs.transition(r, "succeeded", now=NOW), "promoted": True,
                                                        "modelUri": "file:///m", "metrics": {"accuracy": 1.0}})
    assert api.call("GET", f"/v1/runs/{running['id']}").get_json()["eta"] == 12.5
    assert api.call("GET", "/v1/runs/nope").status_code == 404
    assert api.call("GET", "/v1/specs/train-test-bot/runs").status_code == 200
    assert api.call("GET", "/v1/specs/nope/runs").status_code == 404
    assert api.call("GET", "/v1/bots/test-bot/runs?type=training").status_code == 200
    assert api.call("GET", "/v1/bots/test-bot/runs?type=nope").status_code == 400
    assert api.call("POST", f"/v1/runs/{running['id']}:cancel").get_json()["state"] == "cancelled"
    assert api.call("POST", f"/v1/runs/{done['id']}:cancel").status_code == 409
    assert api.call("POST", "/v1/runs/nope:cancel").status_code == 404


def test_bot_routes_answer_as_documented(api: Contract) -> None:
    assert api.call("GET", "/v1/bots/test-bot/model").status_code == 404
    api.store.write(c.bot_model_key("test-bot"), json.dumps({"runId": "r", "modelUri": "file:///m", "metrics": {}}).encode())
    assert api.call("GET", "/v1/bots/test-bot/model").status_code == 200
    assert api.call("POST", "/v1/bots/test-bot:predict", json={"words": "hi"}).status_code == 400
    assert api.call("POST", "/v1/bots/nobody:predict", json={"text": "hi"}).status_code == 404
    assert api.call("POST", "/v1/bots/test-bot:search", json={"k": 3}).status_code == 400
    assert api.call("POST", "/v1/bots/nobody:search", json={"query": "hours"}).status_code in (404, 501)


def test_event_catalogue_and_dead_letter_routes_answer_as_documented(api: Contract) -> None:
    listed = api.call("GET", "/v1/events").get_json()["events"]
    for entry in listed:
        assert api.call("GET", entry["dataschema"]).status_code == 200
    assert api.call("GET", "/v1/events/dev.example.nothing/schema").status_code == 404
    asyncapi = api.call("GET", "/v1/asyncapi.json").get_json()
    assert {m["name"] for m in asyncapi["components"]["messages"].values()} == {e["type"] for e in listed}
    assert api.call("GET", "/v1/deadletters").status_code == 200
    assert api.call("GET", "/v1/deadletters?pageToken=..%2Fx").status_code == 400
    assert api.call("POST", "/v1/deadletters:replay").status_code == 202
    assert api.call("POST", "/v1/deadletters/2026-01-01.nope:replay").status_code == 404


def test_plain_pages_and_refusals_answer_as_documented(api: Contract) -> None:
    for path in ("/healthz", "/openapi.json", "/", "/login"):
        assert api.call("GET", path).status_code == 200
    api.client.environ_base.pop("HTTP_AUTHORIZATION")
    assert api.call("GET", "/v1/specs").status_code == 401
    assert api.call("POST", "/login", json={"token": "wrong"}).status_code == 401


def test_an_unknown_path_is_a_json_404_not_an_html_page(api: Contract) -> None:
    for path in ("/nope", "/v1/specs/a/b/c", "/v1/runs/x:explode", "/%ff"):
        response = api.client.get(path)
        assert (response.status_code, response.mimetype) == (404, "application/json"), path
        assert response.get_json()["error"]["code"] == "not_found"


# --- pagination --------------------------------------------------------------------------------


@pytest.mark.parametrize("listing", ["/v1/specs/train-test-bot/runs", "/v1/bots/test-bot/runs"])
def test_run_listings_page_newest_first_to_the_end(api: Contract, listing: str) -> None:
    api.call("POST", "/v1/specs", json=make_spec())
    made = [stored_run(api.store, "train-test-bot", n)["id"] for n in range(7)]
    seen, token, pages = [], "", 0
    while True:
        body = api.call("GET", f"{listing}?limit=3" + (f"&pageToken={token}" if token else "")).get_json()
        seen += [r["id"] for r in body["runs"]]
        pages += 1
        if "nextPageToken" not in body:
            break
        token = body["nextPageToken"]
    assert seen == made[::-1] and pages == 3


@pytest.mark.parametrize("listing", ["/v1/specs", "/v1/specs/train-test-bot/runs", "/v1/bots/test-bot/runs",
                                     "/v1/deadletters", "/v1/audit"])
@pytest.mark.parametrize("token", ["../../etc", "x" * 300, "-dash-", "Bad Token"])
def test_a_page_token_no_listing_gave_is_a_400_at_page_token(api: Contract, listing: str, token: str) -> None:
    api.call("POST", "/v1/specs", json=make_spec())
    response = api.call("GET", f"{listing}?pageToken={token}")
    assert response.status_code == 400
    assert [d["field"] for d in response.get_json()["error"]["details"]] == ["pageToken"]


def test_a_type_filtered_listing_pages_on_past_a_scan_with_no_match(api: Contract, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs, "FILTER_SCAN", 2)
    api.call("POST", "/v1/specs", json=make_spec())
    for n in range(3):
        stored_run(api.store, "train-test-bot", n)
    first = api.call("GET", "/v1/bots/test-bot/runs?type=bot-test").get_json()
    assert first["runs"] == [] and first["nextPageToken"]
    second = api.call("GET", f"/v1/bots/test-bot/runs?type=bot-test&pageToken={first['nextPageToken']}").get_json()
    assert second == {"runs": []}


# --- one schema source ---------------------------------------------------------------------------


def test_the_document_takes_its_data_schemas_from_the_schema_source() -> None:
    components = DOCUMENT["components"]["schemas"]
    for name in schemas.definitions():
        assert name in components, name
    spec = components["Spec"]
    assert spec["discriminator"]["propertyName"] == "type"
    assert set(spec["discriminator"]["mapping"]) == {"training", "kb-index", "bot-test"}
    assert components["TrainingSpec"]["properties"]["params"] == {"$ref": "#/components/schemas/TrainingParams"}
    assert {"message", "eta", "promoted", "modelUri", "updatedAt", "seq"} <= set(components["Run"]["properties"])
    assert "x-expected" not in json.dumps(components)


def test_every_catalogued_event_type_has_its_data_schema_and_every_type_the_plane_names_is_catalogued() -> None:
    named = {getattr(ev, n) for n in dir(ev) if n.isupper() and isinstance(getattr(ev, n), str)
             and getattr(ev, n).startswith(("dev.jobplane.", "dev.knative."))}
    assert {e["type"] for e in catalogue.catalogue()["events"]} == named == set(schemas.EVENT_DATA)


def test_an_event_types_schema_accepts_its_real_data_and_refuses_bad_data() -> None:
    from jsonschema import Draft202012Validator

    bot_changed = Draft202012Validator(catalogue.data_schema(ev.BOT_CHANGED))
    assert bot_changed.is_valid({"botId": "pizza-bot", "revision": "r1", "trainingData": {"examples": TRAINING_EXAMPLES}})
    assert not bot_changed.is_valid({"botId": "Pizza Bot", "trainingData": {"examples": TRAINING_EXAMPLES}})
    assert not bot_changed.is_valid({"botId": "pizza-bot"})
    progress = Draft202012Validator(catalogue.data_schema(ev.RUN_PROGRESS))
    assert progress.is_valid({"seq": 3, "progress": 40, "phase": "train", "message": "epoch 2", "eta": 12.5})
    assert not progress.is_valid({"seq": 0, "progress": 140})


def test_the_asyncapi_document_refers_only_to_what_it_holds() -> None:
    document = catalogue.asyncapi("1")
    assert document["asyncapi"].startswith("3.")
    text = json.dumps(document)
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node: Any = document
        for part in ref.split("/"):
            node = node[part]
    actions = {op["action"] for op in document["operations"].values()}
    assert actions == {"send", "receive"}
    assert "receiveBotChanged" in document["operations"] and "sendModelReady" in document["operations"]
