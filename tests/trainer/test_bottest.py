"""The ``bot-test`` job on real models: it scores the test split its model's training held out
(never a training example), records accuracy, macro-F1, per-intent and entity figures, and
fails with ``Regression`` naming the intents that got worse since the previous succeeded run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobplane import conventions as c
from jobplane import events
from jobplane.store import ObjectStore, open_store
from jobplane_trainer import bottest, regression
from jobplane_trainer.data import BadDataError, data_hash, from_project, normalize, to_project
from jobplane_trainer.job import JobEnv, execute
from jobplane_trainer.report import Reporter
from jobplane_trainer.train import TrainConfig, train

from .conftest import make_bot

FAST = {"maxEpochs": 10, "taggerEpochs": 4, "minSteps": 40, "taggerMinSteps": 20, "threads": 1}


def _env(store: ObjectStore, run_id: str, job_type: str = "bot-test", **params: Any) -> JobEnv:
    return JobEnv(run_id=run_id, spec_id="nightly", bot_id="acme", job_type=job_type, sink="", token="",
                  store_url=store.url, params={"botId": "acme", **params})


def _promote(store: ObjectStore, run_id: str, model: bytes, cases: dict[str, Any]) -> None:
    """A training run's model and held-out split, and the pointer naming it (as promotion leaves them)."""
    prefix = c.run_artifacts_prefix(run_id)
    store.write(prefix + "model.npz", model)
    store.write(prefix + "test.json", json.dumps(cases).encode())
    store.write(c.bot_model_key("acme"), json.dumps({"runId": run_id, "modelUri": store.uri(prefix + "model.npz")}).encode())


def _baseline(store: ObjectStore, run_id: str) -> dict[str, str]:
    return {"runId": run_id, "metricsUri": store.uri(c.run_artifacts_prefix(run_id) + "bot_test.json")}


@pytest.fixture(scope="module")
def unseen() -> dict[str, Any]:
    """Cases drawn apart from the session's training data (other utterances of the same bot)."""
    seen = {normalize(e["text"]) for e in make_bot()["examples"]}
    return {"examples": [e for e in make_bot(per_intent=8, seed=11)["examples"] if normalize(e["text"]) not in seen]}


@pytest.fixture(scope="module")
def worse(bot_data: dict[str, Any]) -> Any:
    """The bot trained again after two intents lost all but two of their examples."""
    kept: dict[str, int] = {}
    examples = []
    for e in bot_data["examples"]:
        kept[e["intent"]] = kept.get(e["intent"], 0) + 1
        if e["intent"] not in ("weather", "balance") or kept[e["intent"]] <= 2:
            examples.append(e)
    return train(from_project({"examples": examples}), cfg=TrainConfig(max_epochs=6, tagger_epochs=2, min_steps=20, tagger_min_steps=0, threads=1))


@pytest.mark.slow
def test_training_holds_out_a_test_split_and_the_bot_test_scores_only_it(tmp_path: Path, bot_data: dict[str, Any]) -> None:
    store = open_store(tmp_path.as_uri())
    store.write("bots/acme/data/r1.json", json.dumps(bot_data).encode())
    sent: list[events.Event] = []
    env = _env(store, "train-acme-1", "training", trainingData={"uri": store.uri("bots/acme/data/r1.json")}, **FAST)
    done = execute(env, Reporter(sent.append, run_id=env.run_id, token=""), stop=__import__("threading").Event())
    held = from_project(json.loads(store.read(c.run_artifacts_prefix("train-acme-1") + "test.json").data))
    every = from_project(bot_data)
    training = [e for e in every if e not in held]
    card = json.loads(store.read(c.run_artifacts_prefix("train-acme-1") + "model_card.json").data)

    assert len(held) == 8 * round(25 * 0.1) and {e.intent for e in held} == {e.intent for e in every}
    assert not {normalize(e.text) for e in held} & {normalize(e.text) for e in training}
    assert card["trainedOnHash"] == f"sha256:{data_hash(training)}"  # the model saw exactly the rest
    assert done["metrics"]["accuracy"] > 0.5
    store.write(c.bot_model_key("acme"), json.dumps({"runId": "train-acme-1", "modelUri": done["artifacts"]["model"]}).encode())

    figures = bottest.execute(_env(store, "bt1"))["metrics"]

    assert figures["evaluatedOn"] == bottest.HELD_OUT and figures["n"] == len(held)
    assert figures["casesHash"] == bottest.cases_hash(held)
    assert figures["comparison"]["note"] == regression.FIRST_RUN_NOTE and figures["passed"]


def test_the_figures_are_accuracy_macro_f1_per_intent_and_entity_f1(tmp_path: Path, trained: Any, unseen: dict[str, Any]) -> None:
    store = open_store(tmp_path.as_uri())
    _promote(store, "train-1", trained.model, unseen)

    figures = bottest.execute(_env(store, "bt1"))["metrics"]

    assert {"accuracy", "macro_f1", "entity_f1", "per_intent", "entities", "n"} <= set(figures)
    assert set(figures["per_intent"]) == {e["intent"] for e in unseen["examples"]}
    assert {"precision", "recall", "f1", "support"} <= set(figures["per_intent"]["weather"])
    stored = json.loads(store.read(c.run_artifacts_prefix("bt1") + "bot_test.json").data)
    assert stored["accuracy"] == figures["accuracy"] and stored["confusion_matrix"]["labels"]


@pytest.mark.slow
def test_a_model_that_got_worse_fails_with_regression_naming_the_intents(tmp_path: Path, trained: Any, worse: Any,
                                                                        unseen: dict[str, Any]) -> None:
    store = open_store(tmp_path.as_uri())
    _promote(store, "train-1", trained.model, unseen)
    before = bottest.execute(_env(store, "bt1"))["metrics"]
    _promote(store, "train-2", worse.model, unseen)

    with pytest.raises(bottest.Regression) as failed:
        bottest.execute(_env(store, "bt2", minAccuracy=0.0, baseline=_baseline(store, "bt1")))

    comparison = failed.value.results["metrics"]["comparison"]
    assert comparison["baselineRunId"] == "bt1" and comparison["regressed"]
    assert {"weather", "balance"} <= set(comparison["worse"]["intents"])
    for intent, drop in comparison["worse"]["intents"].items():
        assert drop == pytest.approx(failed.value.results["metrics"]["per_intent"][intent]["f1"] - before["per_intent"][intent]["f1"], abs=1e-6)
        assert drop < -0.05 and f"{intent} {drop:+.3f}" in failed.value.message
    assert "intents got worse (F1)" in failed.value.message and "since run bt1" in failed.value.message
    assert json.loads(store.read(c.run_artifacts_prefix("bt2") + "bot_test.json").data)["passed"] is False


@pytest.mark.slow
def test_an_equal_or_better_model_passes_against_its_baseline(tmp_path: Path, trained: Any, worse: Any,
                                                            unseen: dict[str, Any]) -> None:
    store = open_store(tmp_path.as_uri())
    cases = {"testData": {"examples": [e for e in unseen["examples"] if e["intent"] in ("weather", "balance")]}}
    _promote(store, "train-2", worse.model, unseen)
    bottest.execute(_env(store, "bt1", minAccuracy=0.0, **cases))
    _promote(store, "train-1", trained.model, unseen)

    better = bottest.execute(_env(store, "bt2", baseline=_baseline(store, "bt1"), **cases))["metrics"]
    same = bottest.execute(_env(store, "bt3", baseline=_baseline(store, "bt2"), **cases))["metrics"]

    assert better["passed"] and better["comparison"]["overall"]["macro_f1"]["change"] > 0
    assert same["passed"] and not same["comparison"]["worse"]["intents"] and same["comparison"]["overall"]["accuracy"]["change"] == 0
    assert "note" not in same["comparison"]  # the same cases: like with like


@pytest.mark.slow
def test_a_drop_within_max_drop_passes(tmp_path: Path, trained: Any, worse: Any, unseen: dict[str, Any]) -> None:
    store = open_store(tmp_path.as_uri())
    _promote(store, "train-1", trained.model, unseen)
    bottest.execute(_env(store, "bt1"))
    _promote(store, "train-2", worse.model, unseen)

    figures = bottest.execute(_env(store, "bt2", minAccuracy=0.0, maxDrop=1.0, baseline=_baseline(store, "bt1")))["metrics"]

    assert figures["passed"] and figures["comparison"]["intents"]["weather"]["change"] < 0


def test_below_min_accuracy_fails_first_and_keeps_the_figures(tmp_path: Path, trained: Any, unseen: dict[str, Any]) -> None:
    store = open_store(tmp_path.as_uri())
    _promote(store, "train-1", trained.model, unseen)
    tests = [{"text": "book a flight to rome", "expectedIntent": "book_flight"}, {"text": "hello", "expectedIntent": "weather"}]

    with pytest.raises(bottest.BelowMinAccuracy, match="0.500 is below minAccuracy 0.9") as failed:
        bottest.execute(_env(store, "bt1", tests=tests, minAccuracy=0.9))

    assert failed.value.results["metrics"]["accuracy"] == 0.5 and failed.value.results["artifacts"]["botTest"]


def test_a_model_without_a_held_out_split_asks_for_tests(tmp_path: Path, trained: Any) -> None:
    store = open_store(tmp_path.as_uri())
    store.write("runs/old/artifacts/model.npz", trained.model)
    store.write("runs/old/artifacts/validation.json", json.dumps(to_project(trained.validation)).encode())
    store.write(c.bot_model_key("acme"), json.dumps({"runId": "old", "modelUri": store.uri("runs/old/artifacts/model.npz"),
                                                     "validationUri": store.uri("runs/old/artifacts/validation.json")}).encode())

    with pytest.raises(BadDataError, match="has no held-out test split: give tests or testData"):
        bottest.execute(_env(store, "bt1"))  # never its validation examples: the refit trained on them


def test_a_baseline_uri_other_than_its_runs_figures_is_refused(tmp_path: Path, trained: Any, unseen: dict[str, Any]) -> None:
    store = open_store(tmp_path.as_uri())
    _promote(store, "train-1", trained.model, unseen)

    with pytest.raises(BadDataError, match="params.baseline.metricsUri: must name run bt0's bot_test.json"):
        bottest.execute(_env(store, "bt1", baseline={"runId": "bt0", "metricsUri": store.uri("bots/acme/model.json")}))
