"""The ``bot-test`` job: score a bot's promoted model on test utterances, without training.

Cases come from ``params.tests`` (``[{"text", "expectedIntent"}]``), ``params.testData``
(``{"uri"}`` of any supported format, or inline ``{"examples"}``), or else the held-out
validation examples saved with the promoted model (``validationUri`` in ``model.json``). The
run succeeds when accuracy reaches ``minAccuracy`` (default 0.8); below it the run fails with
reason ``BelowMinAccuracy`` and the bad-data exit code (a retry would score the same).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jobplane import conventions as c
from jobplane import inference
from jobplane.errors import ForbiddenError, NotFoundError, Problem
from jobplane.settings import DEFAULT_MAX_DATA_BYTES
from jobplane.store import ObjectStore, split_uri
from jobplane.store.scoped import ScopedStore

from .data import BadDataError, Example, from_project, parse
from .inputs import read_data, run_store
from .metrics import evaluate

DEFAULT_MIN_ACCURACY = 0.8


class BelowMinAccuracy(BadDataError):
    """The model answered too few test cases right."""


def execute(env: Any, *, store: ObjectStore | None = None) -> dict[str, Any]:
    """Test the bot named by ``env`` (a ``job.JobEnv``); the succeeded event's data."""
    store = store or run_store(env.store_url, run_id=env.run_id, bot_id=env.bot_id)
    pointer = _pointer(store, env.bot_id)
    if isinstance(store, ScopedStore) and isinstance(pointer.get("runId"), str):
        store.allow_reads(c.run_artifacts_prefix(pointer["runId"]))  # the tested model is an input too
    model = inference.Model.from_bytes(_read(store, pointer["modelUri"], what="the promoted model"))
    cases, source = test_cases(store, env.params, pointer, env=env)
    report, entities, confusion = evaluate(model, cases, labels=model.labels)
    minimum = float(env.params.get("minAccuracy", DEFAULT_MIN_ACCURACY))
    figures = {k: v for k, v in report.items()} | {"evaluatedOn": source, "minAccuracy": minimum,
                                                     "passed": report["accuracy"] >= minimum, "modelRunId": pointer.get("runId")}
    if entities:
        figures["entities"] = entities
    key = c.run_artifacts_prefix(env.run_id) + "bot_test.json"
    store.write(key, json.dumps(figures | {"confusion_matrix": confusion}, indent=1).encode())
    if not figures["passed"]:
        raise BelowMinAccuracy([Problem("accuracy", f"{report['accuracy']:.3f} is below minAccuracy {minimum}")], what="bot test")
    return {"metrics": figures, "artifacts": {"botTest": store.uri(key)}, "promoted": False, "botId": env.bot_id}


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
    if not pointer.get("validationUri"):
        raise BadDataError([Problem("params", "no tests or testData, and the promoted model has no saved validation examples")])
    examples = from_project(json.loads(_read(store, pointer["validationUri"], what="the saved validation examples")))
    if not examples:
        raise BadDataError([Problem("params", "the promoted model's validation split is empty: give tests or testData")])
    return examples, "validation (saved with the promoted model)"


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
