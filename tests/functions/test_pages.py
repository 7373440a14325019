"""The dashboard's pages through the api function's real app: the lists are in the HTML (no
JavaScript needed), every value is escaped, and a browser without a session goes to login."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.dashboard import LABELS, seed_figures, seed_run
from support.fakes import FakeLauncher
from support.specs import TEST_DATA_PREFIXES, make_spec

from jobplane import conventions as c
from jobplane import dashboard, runtime
from jobplane.app import create_function_app
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store.base import ObjectStore
from jobplane.store.files import FileStore

TOKEN = "page-test-token"


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store", fsync=False)


@pytest.fixture
def client(store: FileStore) -> Iterator[Any]:
    settings = Settings(data_prefixes=TEST_DATA_PREFIXES, store_url=store.url, callback_key=b"k" * 32,
                        auth="token", api_token=TOKEN)
    launcher = FakeLauncher()
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher, send=lambda e: None))
    client = create_function_app("api").test_client()  # type: ignore[attr-defined]
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    yield client


def put_spec(store: ObjectStore, spec: dict[str, Any]) -> dict[str, Any]:
    store.write(c.spec_key(spec["id"]), json.dumps(spec).encode())
    return spec


def page(client: Any, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/html", response.status_code
    return response.get_data(as_text=True)  # type: ignore[no-any-return]


def rows(text: str, table_class: str = "runs") -> list[str]:
    """Each ``<tr class="run …">``'s run id, in page order."""
    return re.findall(r'<tr class="run [a-z]+" data-run="([^"]+)"', text)


# --- the overview ------------------------------------------------------------------------------


def test_the_overview_lists_each_specs_schedule_next_fire_times_last_run_and_last_ten_runs(client: Any, store: FileStore) -> None:
    spec = put_spec(store, make_spec(schedule="30 3 * * *", timezone="Europe/Berlin"))
    made = [seed_run(store, spec, n=n, state="succeeded", progress=100, metrics={"accuracy": 0.5 + n / 100})
            for n in range(12)]

    text = page(client, "/")

    assert 'href="./runs/' + made[-1]["id"] in text, "links are relative to the page"
    assert rows(text) == [r["id"] for r in reversed(made)][:10], "the newest ten, newest first"
    fires = re.findall(r'<time datetime="([^"]+)">[A-Z][a-z]{2} \d\d [A-Z][a-z]{2} 03:30</time>',
                       text.split('class="next-fires"')[1].split("</dd>")[0])
    assert len(fires) == 3 and all(t.endswith("T03:30+01:00") for t in fires), fires
    assert "<code>30 3 * * *</code> (Europe/Berlin)" in text
    assert "61.0%" in text, "the last run's accuracy"
    assert 'data-post="v1/specs/train-test-bot/runs"' in text


def test_the_overview_shows_a_running_runs_progress_and_marks_the_list_live(client: Any, store: FileStore) -> None:
    spec = put_spec(store, make_spec())
    seed_run(store, spec, state="running", progress=42, phase="training")

    text = page(client, "/")

    assert 'aria-valuenow="42"' in text and "width: 42%" in text
    assert 'data-active="yes"' in text, "the script polls fast while a run is active"


def test_the_overview_pages_specs_with_a_next_link(client: Any, store: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "SPECS_PER_PAGE", 2)
    for name in ("a", "b", "c"):
        put_spec(store, make_spec(id=f"train-{name}", params={"botId": name}))

    first, second = page(client, "/"), page(client, "/?pageToken=train-b")

    assert re.findall(r'data-spec="([^"]+)"', first) == ["train-a", "train-b"]
    assert 'href="?pageToken=train-b"' in first
    assert re.findall(r'data-spec="([^"]+)"', second) == ["train-c"] and "pageToken=" not in second


def test_a_page_runs_only_its_own_script(client: Any, store: FileStore) -> None:
    response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce is not None and f'<script nonce="{nonce.group(1)}">' in response.get_data(as_text=True)
    assert "frame-ancestors 'none'" in policy and response.headers["X-Frame-Options"] == "DENY"
    assert nonce.group(1) not in client.get("/").headers["Content-Security-Policy"], "a fresh nonce each time"


def test_every_value_from_the_store_is_escaped(client: Any, store: FileStore) -> None:
    evil = "<script>alert(1)</script>"
    spec = put_spec(store, make_spec(description=evil))
    run = seed_run(store, spec, state="failed", reason=f'"><img src=x onerror=alert(1)>', message=evil)

    for text in (page(client, "/"), page(client, f"/runs/{run['id']}")):
        assert "<script>alert" not in text and "<img src=x" not in text
    assert html.escape(evil, quote=False) in page(client, "/")


# --- a run ---------------------------------------------------------------------------------------


def test_the_run_page_shows_who_why_timings_figures_heatmap_events_and_artifact_links(client: Any, store: FileStore) -> None:
    spec = put_spec(store, make_spec())
    run = seed_run(store, spec, state="succeeded", progress=100, startedAt="2026-12-01T09:00:02.000Z",
                   finishedAt="2026-12-01T09:01:32.000Z", metrics={"accuracy": 0.818, "macro_f1": 0.813})
    seed_figures(store, run["id"])

    text = page(client, f"/runs/{run['id']}")

    assert "alice@example.com" in text and "/platform/bots" in text and "dev.jobplane.bot.changed" in text
    assert "1 min 30 s" in text and "2.0 s" in text, "ran and waited"
    intents = text.split('id="intents"')[1].split("</section>")[0]
    assert re.findall(r"<tr><td>(\w+)</td>", intents) == sorted(LABELS)
    assert "<td>goodbye</td><td>0.667</td><td>1.000</td><td>0.800</td><td>2</td>" in intents
    assert "<td>party_size</td><td>1.000</td><td>0.500</td><td>0.667</td>" in text
    heat = text.split('class="heatmap"')[1].split("</table>")[0]
    assert re.findall(r'<th scope="col" class="col"><span>(\w+)</span>', heat) == LABELS
    assert re.findall(r'<th scope="row">(\w+)</th>', heat) == LABELS
    assert 'style="background: rgb(8,48,107)"' in heat and ">4</td>" in heat, "a full row share is the darkest blue"
    assert "step 0" in text and "step 1" in text, "the event log"
    link = f'href="../v1/runs/{run["id"]}/artifacts/confusion_matrix.json"'
    assert link in text and f'href="../v1/runs/{run["id"]}/artifacts/model.npz"' in text


def test_a_running_runs_page_has_a_cancel_button_and_its_eta(client: Any, store: FileStore) -> None:
    run = seed_run(store, put_spec(store, make_spec()), state="running", progress=30, eta=125.0)

    text = page(client, f"/runs/{run['id']}")

    assert f'data-post="v1/runs/{run["id"]}:cancel"' in text and "about 2 min 5 s left" in text
    assert 'data-state="running"' in text, "the script polls the run until it ends"


def test_an_unknown_run_or_bot_is_a_404_page(client: Any) -> None:
    for path in ("/runs/nope", "/bots/nope"):
        response = client.get(path)
        assert response.status_code == 404 and response.mimetype == "text/html"
        assert "nope" in response.get_data(as_text=True)


# --- a bot ---------------------------------------------------------------------------------------


def test_the_bot_page_shows_the_promoted_model_and_accuracy_over_succeeded_runs(client: Any, store: FileStore) -> None:
    spec = put_spec(store, make_spec())
    for n, accuracy in enumerate([0.5, 0.75, 1.0]):
        seed_run(store, spec, n=n, state="succeeded", progress=100, metrics={"accuracy": accuracy})
    failed = seed_run(store, spec, n=3, state="failed", progress=40)
    pointer = {"botId": "test-bot", "runId": "train-test-bot-x", "metrics": {"accuracy": 1.0}, "modelUri": "file:///m.npz"}
    store.write(c.bot_model_key("test-bot"), json.dumps(pointer).encode())

    text = page(client, "/bots/test-bot")

    assert 'href="../runs/train-test-bot-x"' in text and "file:///m.npz" in text
    points = re.search(r'<polyline points="([^"]+)"', text)
    assert points is not None
    ys = [float(p.split(",")[1]) for p in points.group(1).split()]
    assert len(ys) == 3 and ys[0] > ys[1] > ys[2], "oldest first, rising accuracy drawn higher"
    assert rows(text)[0] == failed["id"], "the history lists every training run, newest first"
    assert 'data-post-json="v1/bots/test-bot:predict"' in text and 'data-post-json="v1/bots/test-bot:search"' in text


# --- who may look ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "login"), [("/", "./login"), ("/runs/r-1", "../login"), ("/bots/b-1", "../login")])
def test_a_page_without_a_session_redirects_to_the_login_page(client: Any, path: str, login: str) -> None:
    del client.environ_base["HTTP_AUTHORIZATION"]
    response = client.get(path)
    assert response.status_code == 303 and response.headers["Location"] == login, "relative: works behind a path prefix"
    assert client.get("/v1/specs").status_code == 401, "the API still answers JSON 401"
