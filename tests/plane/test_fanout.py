"""The built-in fan-out specs end to end in the embedded plane with the real trainer: a bot is
trained, the local cron fires the committed PingSources, ``nightly-bot-tests`` tests the bot's
promoted model (numpy inference, on the validation examples its training saved) and
``retrain-all`` runs the bot's own training spec again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests
from support import plane as support_plane
from support.specs import TRAINING_EXAMPLES

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs
from jobplane.handlers.launch import FANOUT_SOURCE
from jobplane.local.plane import Plane

WAIT = 90.0


def final_run(plane: Plane, run_id: str) -> dict[str, Any]:
    return support_plane.final_run(plane, run_id, timeout=WAIT)


def fire(plane: Plane, before: str, at: str) -> list[ev.Event]:
    """The spec pings the plane's cron sends at ``at`` (``before`` starts its count)."""
    assert plane.cron is not None
    plane.cron.run_pending(datetime.fromisoformat(before))
    fired = plane.cron.run_pending(datetime.fromisoformat(at))
    return [e for e in fired if isinstance(e.data, dict) and "specId" in e.data]  # not the reconciler's tick


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    """A plane with the real trainer (its default command) and bot pizza-bot trained."""
    with Plane(tmp_path_factory.mktemp("fanout") / "data", env={}).start() as plane:
        event = ev.new_event(ev.BOT_CHANGED, source="/platform/bots", id="evt-1", subject="pizza-bot", data={
            "botId": "pizza-bot", "revision": "r1", "trainingData": {"examples": TRAINING_EXAMPLES}})
        headers, body = ev.to_http(event)
        assert requests.post(plane.url + "/default/default", data=body, headers=headers, timeout=10).status_code == 202
        run = final_run(plane, runs.run_id_for("train-pizza-bot", source=event.source, event_id=event.id))
        assert run["state"] == "succeeded" and run["promoted"], run
        yield plane


@pytest.mark.slow
def test_nightly_bot_tests_tests_each_trained_bots_promoted_model(trained: Plane) -> None:
    (ping,) = fire(trained, "2027-01-04T03:29:30+00:00", "2027-01-04T03:30:05+00:00")  # a Monday
    assert ping.data == {"specId": "nightly-bot-tests"}

    run = final_run(trained, runs.run_id_for("nightly-bot-tests", source=FANOUT_SOURCE, event_id=f"{ping.id}-pizza-bot"))

    assert (run["state"], run["type"], run["botId"]) == ("succeeded", "bot-test", "pizza-bot"), run
    figures = run["metrics"]
    model_run = trained.store.read(c.bot_model_key("pizza-bot"))
    held_out = json.loads(trained.store.read(c.run_artifacts_prefix(json.loads(model_run.data)["runId"]) + "test.json").data)
    assert figures["evaluatedOn"] == "test split held out of the model's training" and figures["n"] == len(held_out["examples"]) == 3
    assert not {e["text"] for e in held_out["examples"]} & {e["text"] for e in trained_on(trained)}
    assert figures["accuracy"] >= figures["minAccuracy"] == 0.8 and figures["per_intent"]
    assert figures["comparison"]["baselineRunId"] is None and figures["comparison"]["note"]
    assert trained.store.read(c.run_artifacts_prefix(run["id"]) + "bot_test.json")
    summary = final_run(trained, runs.run_id_for("nightly-bot-tests", source=ping.source, event_id=ping.id))
    assert (summary["reason"], summary["fanOut"]["runs"]) == ("FannedOut", 1)


def trained_on(plane: Plane) -> list[dict[str, Any]]:
    """The examples pizza-bot's promoted model trained on: its data less the held-out split."""
    pointer = json.loads(plane.store.read(c.bot_model_key("pizza-bot")).data)
    held = json.loads(plane.store.read(c.run_artifacts_prefix(pointer["runId"]) + "test.json").data)["examples"]
    return [e for e in TRAINING_EXAMPLES if e not in held]


@pytest.mark.slow
def test_a_bot_test_that_got_worse_fails_with_regression_naming_the_intents_and_the_history_shows_the_trend(trained: Plane) -> None:
    api = support_plane.api(trained)
    spec = {"id": "pizza-smoke", "type": "bot-test", "params": {"botId": "pizza-bot", "minAccuracy": 0.0, "maxDrop": 0.1}}
    assert api.post(f"{trained.url}/v1/specs", json=spec, timeout=10).status_code == 201
    right = [{"text": e["text"], "expectedIntent": e["intent"]} for e in trained_on(trained)]
    greets = [i for i, t in enumerate(right) if t["expectedIntent"] == "greet"][:2]
    wrong = [{**t, "expectedIntent": "bye"} if i in greets else t for i, t in enumerate(right)]  # two greetings now answered wrong

    def test_run(tests: list[dict[str, str]]) -> dict[str, Any]:
        response = api.post(f"{trained.url}/v1/specs/pizza-smoke/runs", json={"params": {"tests": tests}}, timeout=10)
        assert response.status_code == 202, response.text
        return final_run(trained, response.json()["runId"])

    first, worse, again = test_run(right), test_run(wrong), test_run(right)

    assert first["state"] == "succeeded" and first["metrics"]["comparison"]["baselineRunId"] is None, first
    assert (worse["state"], worse["reason"]) == ("failed", "Regression"), worse
    assert "greet" in worse["message"] and f"since run {first['id']}" in worse["message"]
    assert {"greet", "bye"} <= set(worse["metrics"]["comparison"]["worse"]["intents"])
    assert worse["metrics"]["comparison"]["worse"]["overall"]["accuracy"] < -0.1 and worse["artifacts"]["botTest"]
    assert again["state"] == "succeeded" and again["metrics"]["comparison"]["baselineRunId"] == first["id"]  # a failed run is no baseline
    trend = api.get(f"{trained.url}/v1/bots/pizza-bot/runs", params={"type": "bot-test", "limit": 100}, timeout=10).json()["runs"]
    mine = [(r["id"], r["metrics"]["accuracy"]) for r in trend if r["specId"] == "pizza-smoke"]
    assert mine == [(again["id"], again["metrics"]["accuracy"]), (worse["id"], worse["metrics"]["accuracy"]),
                    (first["id"], first["metrics"]["accuracy"])]


@pytest.mark.slow
def test_retrain_all_runs_each_bots_own_training_spec_and_an_unchanged_bot_reuses_its_model(trained: Plane) -> None:
    (ping,) = fire(trained, "2027-01-10T01:59:30+00:00", "2027-01-10T02:00:05+00:00")  # a Sunday
    assert ping.data == {"specId": "retrain-all"}

    run = final_run(trained, runs.run_id_for("train-pizza-bot", source=FANOUT_SOURCE, event_id=f"{ping.id}-pizza-bot"))

    history = runs.list_runs(trained.store, spec_id="train-pizza-bot")
    assert [r["trigger"]["source"] for r in history] == [FANOUT_SOURCE, "/platform/bots"]
    assert (run["state"], run["reason"], run["specId"], run["botId"]) == ("skipped", "CacheHit", "train-pizza-bot", "pizza-bot")
    assert run["reusedRun"] == history[1]["id"] and not run.get("job")  # nothing changed: no Job


@pytest.mark.slow
def test_one_bots_test_through_the_api_below_min_accuracy_fails_once_with_the_reason(trained: Plane) -> None:
    wrong = [{"text": e["text"], "expectedIntent": "bye"} for e in TRAINING_EXAMPLES if e["intent"] == "greet"]
    response = support_plane.api(trained).post(f"{trained.url}/v1/specs/nightly-bot-tests/runs", timeout=10,
                                               json={"params": {"botId": "pizza-bot", "tests": wrong, "minAccuracy": 0.9}})
    assert response.status_code == 202, response.text

    run = final_run(trained, response.json()["runId"])

    assert (run["state"], run["reason"], run["botId"]) == ("failed", "BelowMinAccuracy", "pizza-bot"), run
    assert "below minAccuracy 0.9" in run["message"]
    assert [p.name for p in (trained.data_dir / "jobs" / run["id"]).glob("attempt-*.log")] == ["attempt-1.log"]


@pytest.mark.slow
def test_a_fan_out_run_through_the_api_answers_a_run_id_that_resolves_to_the_sweep(trained: Plane) -> None:
    response = support_plane.api(trained).post(f"{trained.url}/v1/specs/retrain-all/runs", json={}, timeout=10)
    assert response.status_code == 202, response.text

    summary = final_run(trained, response.json()["runId"])

    assert (summary["state"], summary["reason"], summary["message"]) == ("succeeded", "FannedOut", "requested 1 run, one per bot")
