"""The ``bot-test`` job: score a bot's promoted model on cases it never trained on, without
training, and compare with the previous succeeded test of the same spec and bot.

Cases come from ``params.tests`` (``[{"text", "expectedIntent"}]``), ``params.testData``
(``{"uri"}`` of any supported format under the bot's prefix, or inline ``{"examples"}``), or
else the test split its training held out (``holdout``: kept out of the refit too, stored
beside the model as ``runs/{modelRunId}/artifacts/test.json``). Never the validation examples:
the refit model was trained on them.

Figures: accuracy, macro-F1, precision/recall/F1 per intent, entity F1 (when the model tags
and the cases carry entities), and ``comparison`` with the baseline the plane passed in
``params.baseline`` (``{"runId", "metricsUri"}``: the previous succeeded run's
``bot_test.json``, the one object of another run this Job may read). The run fails, with the
bad-data exit code (a retry would score the same), with reason ``BelowMinAccuracy`` when
accuracy is under ``minAccuracy`` (default 0.8), else ``Regression`` when a figure dropped by
more than ``maxDrop`` (default 0.05; ``regression``); the failed event carries the figures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from jobplane import conventions as c
from jobplane import inference
from jobplane.errors import ForbiddenError, NotFoundError, Problem
from jobplane.settings import DEFAULT_MAX_DATA_BYTES
from jobplane.store import ObjectStore, split_uri
from jobplane.store.scoped import ScopedStore

from . import metrics, regression
from .data import BadDataError, Example, from_project, normalize, parse
from .holdout import TEST_FILE
from .inputs import read_data, run_store

DEFAULT_MIN_ACCURACY = 0.8
RESULTS_FILE = "bot_test.json"
HELD_OUT = "test split held out of the model's training"


class BotTestFailed(BadDataError):
    """The model did not pass; ``results`` is what the failed event carries (figures, artifacts)."""

    def __init__(self, problems: Sequence[Problem], *, results: Mapping[str, Any]) -> None:
        super().__init__(problems, what="bot test")
        self.results = dict(results)


class BelowMinAccuracy(BotTestFailed):
    """The model answered too few test cases right."""


class Regression(BotTestFailed):
    """Figures dropped by more than ``maxDrop`` since the previous succeeded bot test."""


def execute(env: Any, *, store: ObjectStore | None = None) -> dict[str, Any]:
    """Test the bot named by ``env`` (a ``job.JobEnv``); the succeeded event's data."""
    store = store or run_store(env.store_url, run_id=env.run_id, bot_id=env.bot_id)
    pointer = _pointer(store, env.bot_id)
    if isinstance(store, ScopedStore) and isinstance(pointer.get("runId"), str):
        store.allow_reads(c.run_artifacts_prefix(pointer["runId"]))  # the tested model and its held-out split are inputs too
    model = inference.Model.from_bytes(_read(store, pointer["modelUri"], what="the promoted model"))
    cases, source = test_cases(store, env.params, pointer, env=env)
    figures = score(model, cases) | {"evaluatedOn": source, "modelRunId": pointer.get("runId")}
    minimum = float(env.params.get("minAccuracy", DEFAULT_MIN_ACCURACY))
    max_drop = float(env.params.get("maxDrop", regression.DEFAULT_MAX_DROP))
    baseline_id, previous = baseline(store, env.params)
    figures["comparison"] = regression.compare(figures, previous, max_drop=max_drop, baseline_run=baseline_id)
    figures |= {"minAccuracy": minimum, "maxDrop": max_drop, "passed": figures["accuracy"] >= minimum
                and not figures["comparison"]["regressed"]}
    confusion = figures.pop("_confusion")
    key = c.run_artifacts_prefix(env.run_id) + RESULTS_FILE
    store.write(key, json.dumps(figures | {"confusion_matrix": confusion}, indent=1).encode())
    results = {"metrics": figures, "artifacts": {"botTest": store.uri(key)}, "botId": env.bot_id}
    _judge(figures, minimum=minimum, results=results)
    return results | {"promoted": False}


def score(model: inference.Model, cases: Sequence[Example]) -> dict[str, Any]:
    """The figures of ``model`` on ``cases`` (``_confusion``: the matrix, for the artifact)."""
    report, entities, confusion = metrics.evaluate(model, cases, labels=model.labels)
    figures: dict[str, Any] = dict(report) | metrics.summary(report, entities)
    if entities and entities.get("support"):
        figures["entities"] = entities
    return figures | {"casesHash": cases_hash(cases), "_confusion": confusion}


def _judge(figures: Mapping[str, Any], *, minimum: float, results: Mapping[str, Any]) -> None:
    comparison = figures["comparison"]
    problems = [Problem("regression", regression.message(comparison))] if comparison["regressed"] else []
    if figures["accuracy"] < minimum:
        below = Problem("accuracy", f"{figures['accuracy']:.3f} is below minAccuracy {minimum}")
        raise BelowMinAccuracy([below, *problems], results=results)
    if problems:
        raise Regression(problems, results=results)


def test_cases(store: ObjectStore, params: Mapping[str, Any], pointer: Mapping[str, Any], *,
               env: Any = None) -> tuple[list[Example], str]:
    """The examples to score and where they came from."""
    if isinstance(params.get("tests"), list):
        return [Example(str(t["text"]), str(t["expectedIntent"])) for t in params["tests"]], "tests"
    data = params.get("testData")
    if isinstance(data, Mapping) and "examples" in data:
        return from_project(data, name="testData"), "testData"
    if isinstance(data, Mapping) and isinstance(data.get("uri"), str):
        raw, name = read_data(store, data["uri"], field="params.testData.uri", bot_id=_bot(params, env),
                              prefixes=getattr(env, "data_prefixes", ()),
                              limit=getattr(env, "max_data_bytes", DEFAULT_MAX_DATA_BYTES))
        return parse(raw, name=name), "testData"
    return held_out_cases(store, pointer), HELD_OUT


def held_out_cases(store: ObjectStore, pointer: Mapping[str, Any]) -> list[Example]:
    """The test split the promoted model's training run kept out of training."""
    run_id = pointer.get("runId")
    if not isinstance(run_id, str) or not run_id:
        raise BadDataError([Problem("params", "no tests or testData, and the promoted model names no training run")])
    try:
        raw = store.read(c.run_artifacts_prefix(run_id) + TEST_FILE).data
    except NotFoundError as e:
        raise BadDataError([Problem("params", f"no tests or testData, and the promoted model (run {run_id}) has no "
                                              "held-out test split: give tests or testData, or train it again")]) from e
    examples = from_project(json.loads(raw), name=TEST_FILE)
    if not examples:
        raise BadDataError([Problem("params", f"the promoted model's held-out test split is empty (run {run_id}: "
                                              "every intent is too small to spare one): give tests or testData")])
    return examples


def baseline(store: ObjectStore, params: Mapping[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """The previous succeeded run's id and figures, from ``params.baseline`` (set by the plane's
    launch, never by a user: spec validation refuses it); ``(None, None)`` on a first run."""
    given = params.get("baseline")
    if not isinstance(given, Mapping) or not isinstance(given.get("runId"), str):
        return None, None
    run_id = str(given["runId"])
    key = c.run_artifacts_prefix(run_id) + RESULTS_FILE
    if given.get("metricsUri") != store.uri(key):
        raise BadDataError([Problem("params.baseline.metricsUri", f"must name run {run_id}'s {RESULTS_FILE}")])
    if isinstance(store, ScopedStore):
        store.allow_reads(key)  # that one object, an input the plane gave
    try:
        return run_id, dict(json.loads(store.read(key).data))
    except NotFoundError:
        return None, None  # its run left no figures (deleted): nothing to compare with


def cases_hash(cases: Sequence[Example]) -> str:
    """Which cases were scored (two runs on the same cases compare like with like)."""
    canon = sorted(f"{ex.intent}\t{normalize(ex.text)}" for ex in cases)
    return "sha256:" + hashlib.sha256("\n".join(canon).encode()).hexdigest()


def _pointer(store: ObjectStore, bot_id: str) -> dict[str, Any]:
    try:
        return dict(json.loads(store.read(c.bot_model_key(bot_id)).data))
    except NotFoundError as e:
        raise BadDataError([Problem("botId", f"bot {bot_id!r} has no promoted model to test")]) from e


def _bot(params: Mapping[str, Any], env: Any) -> str:
    return str(getattr(env, "bot_id", "") or params.get("botId", ""))


def _read(store: ObjectStore, uri: str, *, what: str) -> bytes:
    """An artifact the pointer names: in the plane's store, within the Job's read scope."""
    url, key = split_uri(uri, base_url=store.url)
    if url != store.url:
        raise BadDataError([Problem(what, "must be an object in the plane's store")])
    try:
        return store.read(key).data
    except (NotFoundError, ForbiddenError) as e:
        raise BadDataError([Problem(what, f"no readable object {key!r}")]) from e
