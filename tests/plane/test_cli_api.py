"""The ``jobplane`` API commands against a real embedded plane over HTTP (a stand-in trainer as
the Job's command): each command's human output and ``--json``, following a run to its end,
and the exit codes for not found, validation errors, auth and an unreachable plane."""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.plane import api, wait_for
from support.servers import free_port
from support.specs import TEST_DATA_PREFIXES, TRAINING_EXAMPLES, make_spec
from typer.testing import CliRunner, Result

from jobplane import conventions as c
from jobplane.cli import Exit, app
from jobplane.cli.client import Api, Target
from jobplane.local.plane import Plane

STANDIN = Path(__file__).with_name("standin_trainer.py")
WAIT = 60.0
BOT = "cli-bot"
SPEC = f"train-{BOT}"


def start_plane(data_dir: Path, *trainer_args: str) -> Plane:
    env = {"JOBPLANE_COMMAND": json.dumps([sys.executable, str(STANDIN), *(trainer_args or ("succeed",))]),
           "JOBPLANE_DATA_PREFIXES": ",".join(TEST_DATA_PREFIXES)}
    return Plane(data_dir, port=0, env=env, launcher_env={"OMP_NUM_THREADS": "1"}).start()


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    with start_plane(tmp_path / "data") as p:
        yield p


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    """The file the stand-in trainer waits on after its first progress report."""
    return tmp_path / "gate"


@pytest.fixture
def waiting_plane(tmp_path: Path, gate: Path) -> Iterator[Plane]:
    with start_plane(tmp_path / "data", "wait", str(gate)) as p:
        yield p
    gate.write_text("succeed")  # let a Job still waiting end


def cli(plane: Plane, *args: str) -> Result:
    """``jobplane ARGS`` with the plane's URL and data dir (where its api.token is)."""
    return CliRunner().invoke(app, [*args, "--url", plane.url, "--data-dir", str(plane.data_dir)])


def create_spec(plane: Plane, tmp_path: Path, **overrides: Any) -> str:
    spec = make_spec(**{"id": SPEC, "params": {"botId": BOT, "trainingData": {"examples": TRAINING_EXAMPLES}}, **overrides})
    path = tmp_path / f"{spec['id']}.json"
    path.write_text(json.dumps(spec))
    result = cli(plane, "specs", "create", str(path))
    assert result.exit_code == 0, result.output
    return str(spec["id"])


def running(plane: Plane, run_id: str) -> dict[str, Any]:
    def check() -> Any:
        response = api(plane).get(f"{plane.url}/v1/runs/{run_id}", timeout=10)
        return response.status_code == 200 and response.json()["state"] == "running" and response.json()

    return wait_for(check, timeout=WAIT, what=f"run {run_id} to run")  # type: ignore[no-any-return]


def row(name: str, out: str) -> str:
    """The value on a summary's ``name   value`` line."""
    found = re.search(rf"^{re.escape(name)}  +(.*?)\s*$", out, re.M)
    assert found, f"no {name!r} line in:\n{out}"
    return found.group(1)


# --- specs ---------------------------------------------------------------------------------------


def test_specs_create_list_show_and_delete_a_spec_with_inline_training_data(plane: Plane, tmp_path: Path) -> None:
    create_spec(plane, tmp_path, schedule="0 3 * * *", timezone="UTC")

    listed = cli(plane, "specs", "list")
    assert listed.exit_code == 0
    header, *rows = [line.split() for line in listed.stdout.splitlines() if line.strip() and "──" not in line]
    assert header == ["SPEC", "TYPE", "BOT", "SCHEDULE", "DESCRIPTION"]
    assert [SPEC, "training", BOT, "0", "3", "*", "*", "*", "UTC"] in [row[:9] for row in rows]
    as_json = json.loads(cli(plane, "specs", "list", "--json").stdout)
    assert as_json == api(plane).get(f"{plane.url}/v1/specs", timeout=10).json()

    shown = json.loads(cli(plane, "specs", "show", SPEC, "--json").stdout)
    assert f"/{c.bot_data_prefix(BOT)}" in shown["params"]["trainingData"]["uri"]  # stored under the bot
    assert '"trainingData"' in cli(plane, "specs", "show", SPEC).stdout

    deleted = cli(plane, "specs", "delete", SPEC)
    assert (deleted.exit_code, deleted.stdout.strip()) == (0, f"deleted spec {SPEC}")
    gone = cli(plane, "specs", "show", SPEC)
    assert gone.exit_code == Exit.NOT_FOUND and gone.stdout == "" and f"no spec '{SPEC}'" in gone.stderr


def test_an_invalid_spec_exits_2_with_every_field_path_on_stderr(plane: Plane, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: Bad_Id\ntype: juggling\n")  # YAML is read too

    result = cli(plane, "specs", "create", str(path), "--json")
    assert result.exit_code == Exit.USAGE and result.stdout == ""
    assert "HTTP 400" in result.stderr
    assert "\n  spec.id: " in result.stderr and "\n  spec.type: " in result.stderr
    create_spec(plane, tmp_path)
    again = cli(plane, "specs", "create", str(tmp_path / f"{SPEC}.json"))
    assert again.exit_code == Exit.USAGE and "HTTP 409" in again.stderr


def test_listings_follow_page_tokens_past_one_page(plane: Plane, tmp_path: Path) -> None:
    for n in range(3):
        create_spec(plane, tmp_path, id=f"paged-{n}")
    client = Api(Target(url=plane.url, token=plane.settings.api_token, broker_url=""), page_size=2)

    pages = list(client.pages("/v1/specs", "specs"))
    everything = client.listing("/v1/specs", "specs")
    first_three = client.listing("/v1/specs", "specs", want=3)

    assert len(pages) == 3 and all(len(p["specs"]) <= 2 for p in pages)
    assert [s["id"] for s in everything["specs"]] == [s["id"] for p in pages for s in p["specs"]]
    assert {"paged-0", "paged-1", "paged-2"} <= {s["id"] for s in everything["specs"]}
    assert "nextPageToken" not in everything
    assert first_three["specs"] == everything["specs"][:3] and first_three["nextPageToken"]


def test_the_connection_can_come_from_the_environment_and_options_from_the_root(plane: Plane) -> None:
    env = {"JOBPLANE_URL": plane.url, "JOBPLANE_TOKEN": plane.settings.api_token}
    result = CliRunner().invoke(app, ["--json", "specs", "list"], env=env)
    assert result.exit_code == 0 and "retrain-all" in [s["id"] for s in json.loads(result.stdout)["specs"]]


# --- runs --------------------------------------------------------------------------------------------


def test_run_follow_draws_the_progress_and_exits_0_when_the_run_succeeds(plane: Plane, tmp_path: Path) -> None:
    create_spec(plane, tmp_path)

    result = cli(plane, "run", SPEC, "--param", "epochs=3", "--follow", "--interval", "0.1")
    assert result.exit_code == 0, result.output
    run_id = result.stdout.split()[2]
    assert result.stdout.startswith(f"requested run {run_id} of spec {SPEC}")
    assert "100% succeeded" in result.stdout  # a line per state or phase (no terminal: no redrawn bar)
    assert row("state", result.stdout) == "succeeded" and row("accuracy", result.stdout) == "0.900"

    listed = cli(plane, "runs", SPEC).stdout.splitlines()
    assert listed[0].split() == ["RUN", "TYPE", "STATE", "PROGRESS", "CREATED", "TOOK", "DETAIL"]
    assert listed[2].split()[:4] == [run_id, "training", "succeeded", "100%"]
    assert [r["id"] for r in json.loads(cli(plane, "runs", SPEC, "--json").stdout)["runs"]] == [run_id]
    assert len(json.loads(cli(plane, "runs", "--bot", BOT, "--last", "1", "--json").stdout)["runs"]) == 1
    record = api(plane).get(f"{plane.url}/v1/runs/{run_id}", timeout=10).json()
    assert json.loads(cli(plane, "status", run_id, "--json").stdout) == record
    assert record["trigger"]["type"] == "dev.jobplane.run.requested"


def test_runs_lists_the_last_n_newest_first(plane: Plane, tmp_path: Path) -> None:
    create_spec(plane, tmp_path)
    made = [json.loads(cli(plane, "run", SPEC, "--force", "--json").stdout)["runId"] for _ in range(3)]
    wait_for(lambda: len(api(plane).get(f"{plane.url}/v1/specs/{SPEC}/runs", timeout=10).json()["runs"]) == 3,
             timeout=WAIT, what="three runs recorded")

    listed = json.loads(cli(plane, "runs", SPEC, "--last", "2", "--json").stdout)["runs"]
    assert len(listed) == 2 and {r["id"] for r in listed} <= set(made)
    assert [r["createdAt"] for r in listed] == sorted((r["createdAt"] for r in listed), reverse=True)


def test_a_followed_run_that_fails_exits_6_with_only_the_record_on_stdout(tmp_path: Path) -> None:
    with start_plane(tmp_path / "data", "crash") as plane:
        create_spec(plane, tmp_path)
        result = cli(plane, "run", SPEC, "--follow", "--json", "--interval", "0.1")
    assert result.exit_code == Exit.RUN_FAILED, result.output
    record = json.loads(result.stdout)
    assert record["state"] == "failed" and "simulated crash" in result.stderr  # the bar and its message: stderr


def test_status_follow_watches_a_running_run_to_its_end(waiting_plane: Plane, gate: Path, tmp_path: Path) -> None:
    plane = waiting_plane
    create_spec(plane, tmp_path)
    run_id = json.loads(cli(plane, "run", SPEC, "--json").stdout)["runId"]
    running(plane, run_id)

    now = cli(plane, "status", run_id)
    assert now.exit_code == 0
    assert (row("state", now.stdout), row("progress", now.stdout), row("message", now.stdout)) == (
        "running", "40%  training", "epoch 1/2")
    threading.Timer(1.0, gate.write_text, args=("succeed",)).start()
    followed = cli(plane, "status", run_id, "--follow", "--interval", "0.1")
    assert followed.exit_code == 0, followed.output
    assert " 40% training: epoch 1/2\n" in followed.stdout and row("state", followed.stdout) == "succeeded"


def test_cancel_ends_a_running_run_and_following_it_exits_7(waiting_plane: Plane, tmp_path: Path) -> None:
    plane = waiting_plane
    create_spec(plane, tmp_path)
    run_id = json.loads(cli(plane, "run", SPEC, "--json").stdout)["runId"]
    running(plane, run_id)

    cancelled = cli(plane, "cancel", run_id)
    assert cancelled.exit_code == 0 and cancelled.stdout.startswith(f"run {run_id} cancelled")
    followed = cli(plane, "status", run_id, "--follow")
    assert followed.exit_code == Exit.RUN_STOPPED and row("state", followed.stdout) == "cancelled"
    assert cli(plane, "cancel", "no-such-run").exit_code == Exit.NOT_FOUND


# --- events and bots -----------------------------------------------------------------------------------


def test_emit_bot_changed_trains_the_bot_and_follows_its_run(plane: Plane, tmp_path: Path) -> None:
    data = tmp_path / "bot.json"
    data.write_text(json.dumps({"examples": TRAINING_EXAMPLES}))

    sent = cli(plane, "emit", "bot-changed", BOT, "--data", str(data), "--follow", "--interval", "0.1")
    assert sent.exit_code == 0, sent.output
    run_id = next(line.split()[1] for line in sent.stdout.splitlines() if line.startswith("run "))
    assert run_id.startswith(f"{SPEC}-") and row("state", sent.stdout) == "succeeded"
    record = api(plane).get(f"{plane.url}/v1/runs/{run_id}", timeout=10).json()
    assert record["trigger"]["type"] == "dev.jobplane.bot.changed" and record["trigger"]["source"] == "/jobplane/cli"

    again = cli(plane, "emit", "bot-changed", BOT, "--data", str(data), "--json")  # same data: a cache hit
    answer = json.loads(again.stdout)
    assert again.exit_code == 0 and answer["id"] and answer["runs"][0]["specId"] == SPEC
    followed = cli(plane, "status", answer["runs"][0]["runId"], "--follow")
    assert followed.exit_code == 0 and row("reason", followed.stdout) == "CacheHit"  # the model exists: nothing failed


def test_predict_answers_with_the_promoted_model(plane: Plane) -> None:
    assert cli(plane, "predict", BOT, "hello").exit_code == Exit.NOT_FOUND  # no model yet
    promote_a_model(plane)

    shown = cli(plane, "predict", BOT, "book a table for two")
    assert shown.exit_code == 0, shown.output
    assert row("text", shown.stdout) == "book a table for two" and row("intent", shown.stdout).startswith("book (")
    answer = json.loads(cli(plane, "predict", BOT, "book a table for two", "--json").stdout)
    assert answer["intent"] == "book" and 0 < answer["confidence"] <= 1 and answer["model"]["runId"] == "run-1"
    empty = cli(plane, "predict", BOT, " ")
    assert empty.exit_code == Exit.USAGE and "text:" in empty.stderr


def promote_a_model(plane: Plane) -> None:
    """A small model trained here and promoted as a run's would be (``bots/{botId}/model.json``)."""
    from jobplane_trainer.data import from_project
    from jobplane_trainer.train import TrainConfig, train

    trained = train(from_project({"examples": TRAINING_EXAMPLES}),
                    cfg=TrainConfig(max_epochs=20, tagger_epochs=2, min_steps=60, tagger_min_steps=10, threads=1))
    key = "runs/run-1/artifacts/model.npz"
    plane.store.write(key, trained.model, content_type="application/octet-stream")
    pointer = {"botId": BOT, "runId": "run-1", "modelUri": plane.store.uri(key), "metrics": {}}
    plane.store.write(c.bot_model_key(BOT), json.dumps(pointer).encode())


# --- what went wrong, said by the exit code -------------------------------------------------------


def test_exit_codes_say_not_found_validation_auth_and_unreachable(plane: Plane, tmp_path: Path) -> None:
    create_spec(plane, tmp_path)
    missing = cli(plane, "status", "no-such-run")
    assert missing.exit_code == Exit.NOT_FOUND and "no run 'no-such-run'" in missing.stderr and missing.stdout == ""
    invalid = cli(plane, "run", SPEC, "--param", "nope=1")
    assert invalid.exit_code == Exit.USAGE and "\n  spec.params.nope: unknown field" in invalid.stderr
    assert cli(plane, "run", SPEC, "--param", "no-equals-sign").exit_code == Exit.USAGE
    assert cli(plane, "runs").exit_code == Exit.USAGE  # neither SPEC nor --bot
    assert cli(plane, "no-such-command").exit_code == Exit.USAGE
    denied = CliRunner().invoke(app, ["specs", "list", "--url", plane.url, "--token", "wrong"])
    assert denied.exit_code == Exit.AUTH and "HTTP 401" in denied.stderr
    down = CliRunner().invoke(app, ["status", "x", "--url", f"http://127.0.0.1:{free_port()}"])
    assert down.exit_code == Exit.UNAVAILABLE and "cannot reach the plane" in down.stderr


def test_help_lists_the_exit_codes() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "3 not found (404)" in text and "6 a followed run ended failed" in text


# --- operations -------------------------------------------------------------------------------------


def test_deadletter_list_and_audit_answer_json(plane: Plane) -> None:
    assert json.loads(cli(plane, "deadletter", "list", "--json").stdout) == {"deadLetters": []}
    assert cli(plane, "deadletter", "list").stdout.strip() == "no dead letters"
    if api(plane).get(f"{plane.url}/v1/audit", timeout=10).status_code == 404:
        pytest.skip("this plane has no /v1/audit yet")
    assert "entries" in json.loads(cli(plane, "audit", "--last", "5", "--json").stdout)
