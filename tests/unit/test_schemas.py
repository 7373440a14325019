"""The one schema source (``schemas/jobplane.json``): a valid JSON Schema 2020-12 document
that agrees with the job-type registry, describes the records and event data the plane really
writes and sends, and whose errors read as field paths with reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from jobplane import events as ev
from jobplane import jobtypes, launching, runs, schemas, settings
from jobplane.errors import Problem
from jobplane.handlers import status

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_the_document_is_a_valid_2020_12_schema() -> None:
    Draft202012Validator.check_schema(schemas.document())
    assert Draft202012Validator(schemas.standalone("RunProgressData")).is_valid({"seq": 1, "progress": 5})


def test_the_spec_schema_has_one_branch_per_registered_job_type() -> None:
    defs = schemas.definitions()
    assert tuple(defs["JobSpec"]["properties"]["type"]["enum"]) == jobtypes.NAMES == settings.JOB_TYPES
    for name, job_type in jobtypes.REGISTRY.items():
        spec = defs[schemas.spec_def(name)]
        assert spec["properties"]["type"] == {"const": name}
        assert spec["properties"]["params"] == {"$ref": f"#/$defs/{job_type.params_schema}"}
        assert spec["properties"]["timeoutSeconds"]["default"] == job_type.timeout_seconds
    assert len(defs["Spec"]["oneOf"]) == len(jobtypes.REGISTRY)


def a_run() -> runs.Run:
    spec = {"id": "train-b", "type": "training", "params": {"botId": "b"}}
    return runs.new_run(spec=spec, trigger={"type": ev.BOT_CHANGED, "source": "/p", "id": "1"}, requested_by="/p", now=NOW)


def test_run_records_as_the_plane_writes_them_are_valid_runs() -> None:
    run = a_run()
    assert schemas.is_valid(run, "Run")
    progressed = runs.apply_event(run, type=ev.RUN_PROGRESS, now=NOW,
                                  data={"seq": 1, "progress": 40, "phase": "train", "message": "epoch 2", "eta": 9.5})
    assert progressed is not None and schemas.is_valid(progressed, "Run")
    done = runs.apply_event(progressed, type=ev.RUN_SUCCEEDED, now=NOW,
                            data={"metrics": {"accuracy": 0.9}, "artifacts": {"model": "file:///m"}})
    assert done is not None
    promoted = {**done, "promoted": True, "gate": {"decision": "promoted"}, "modelUri": "file:///m"}
    assert schemas.is_valid(promoted, "Run")
    assert not schemas.is_valid({**promoted, "state": "exploded"}, "Run")


def test_the_event_data_the_plane_sends_is_valid_for_its_type() -> None:
    run = {**a_run(), "job": {"name": "train-b-1", "namespace": "jobplane"}}
    assert schemas.is_valid(launching.summary(run), schemas.EVENT_DATA[ev.RUN_LAUNCHED])
    ready = status.model_ready({**run, "state": "succeeded", "promoted": True, "modelUri": "file:///m", "metrics": {}})
    assert ready is not None and schemas.is_valid(ready.data, schemas.EVENT_DATA[ev.MODEL_READY])


@pytest.mark.parametrize(("instance", "name", "expected"), [
    ({"botId": "b", "bots": "all"}, "TrainingParams", Problem("p", "must have exactly one of botId or bots")),
    ({"bots": "all", "tests": []}, "BotTestParams", Problem("p.tests", "not allowed with bots: every bot has its own data")),
    ({"botId": "b"}, "BotChangedData", Problem("p.trainingData", "required (or knowledgeBase)")),
    ({"uri": "gs://b/x", "examples": []}, "TrainingData", Problem("p", "must have exactly one of uri or examples")),
    ({"seq": 1, "progress": 101}, "RunProgressData", Problem("p.progress", "must be in [0, 100], got 101")),
    ({"epochs": 2, "bots": "all", "x": 1}, "TrainingParams",
     Problem("p.x", "unknown field (expected one of batchSize, botId, bots, dropout, embeddingDim, epochs, hiddenDim, "
                    "learningRate, maxLength, patience, promote, seed, testData, testSplit, trainingData, validationSplit, "
                    "weightDecay)")),
    ([{"id": "a", "title": "t", "text": "x", "format": "pdf"}], "Articles",
     Problem("p[0].format", "must be one of markdown, html, text, got 'pdf'")),
])
def test_schema_errors_read_as_a_field_path_and_a_reason(instance: Any, name: str, expected: Problem) -> None:
    assert expected in schemas.problems(instance, name, "p")


def test_a_value_of_the_wrong_type_gets_one_problem_not_its_object_rules_too() -> None:
    assert schemas.problems("x", "TrainingData", "p") == [Problem("p", "must be an object, got string")]


def test_problems_stop_at_the_limit() -> None:
    found = schemas.problems({"examples": [{"text": ""}] * 50}, "TrainingData", "p", limit=10)
    assert len(found) == 10
