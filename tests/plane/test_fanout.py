"""The built-in fan-out specs end to end in the embedded plane with the real trainer: a bot is
trained, the local cron fires the committed PingSources, ``nightly-bot-tests`` tests the bot's
promoted model (numpy inference, on the validation examples its training saved) and
``retrain-all`` runs the bot's own training spec again."""

from __future__ import annotations

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
    assert figures["evaluatedOn"].startswith("validation") and figures["n"] > 0
    assert figures["accuracy"] >= figures["minAccuracy"] == 0.8 and figures["per_intent"]
    assert trained.store.read(c.run_artifacts_prefix(run["id"]) + "bot_test.json")
    summary = final_run(trained, runs.run_id_for("nightly-bot-tests", source=ping.source, event_id=ping.id))
    assert (summary["reason"], summary["fanOut"]["runs"]) == ("FannedOut", 1)


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
