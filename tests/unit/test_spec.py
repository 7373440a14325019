"""Job spec validation: defaults, every problem with its path, per-type params, cron, quantities."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from jobplane import checks, cronexpr
from jobplane.errors import ValidationError
from jobplane.spec import for_one_bot, is_fan_out, merge_params, training_spec_for_bot, validate_spec, validate_training_data

EXAMPLES = [
    {"text": "book a table for two", "intent": "book_table",
     "entities": [{"start": 17, "end": 20, "entity": "party_size", "value": "two"}]},
    {"text": "cancel my booking", "intent": "cancel"},
]


def make_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": "train-bot-1",
        "type": "training",
        "params": {"botId": "bot-1", "trainingData": {"examples": copy.deepcopy(EXAMPLES)}},
    }
    for key, value in overrides.items():
        if value is DELETE:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


DELETE = object()


def with_params(**params: Any) -> dict[str, Any]:
    base = make_spec()["params"]
    base.update(params)
    return make_spec(params={k: v for k, v in base.items() if v is not DELETE})


def problems_of(obj: Any, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        validate_spec(obj, **kwargs)
    return {p.field: p.problem for p in info.value.problems}


# --- valid specs and defaults ----------------------------------------------------------------


def test_fills_defaults_into_a_minimal_spec() -> None:
    spec = validate_spec(make_spec())
    assert spec == {
        **make_spec(),
        "description": "",
        "timezone": "UTC",
        "priority": "normal",
        "concurrency": "Forbid",
        "timeoutSeconds": 3600,
        "retries": 2,
        "resources": {"gpus": 0, "cpu": "2", "memory": "4Gi"},
    }
    assert "schedule" not in spec


def test_keeps_given_values_and_normalizes_numbers() -> None:
    spec = validate_spec(make_spec(
        description="nightly", schedule="0  3 * * MON-FRI", timezone="Europe/Berlin", priority="high",
        concurrency="Replace", timeoutSeconds=7200.0, retries=0, resources={"gpus": 2, "cpu": 1.5, "memory": "16Gi"},
    ))
    assert spec["schedule"] == "0 3 * * MON-FRI"
    assert spec["timeoutSeconds"] == 7200 and isinstance(spec["timeoutSeconds"], int)
    assert spec["resources"] == {"gpus": 2, "cpu": "1.5", "memory": "16Gi"}
    assert (spec["priority"], spec["concurrency"], spec["timezone"]) == ("high", "Replace", "Europe/Berlin")


@pytest.mark.parametrize("spec", [make_spec(), make_spec(schedule="@daily", resources={"cpu": 1}),
                                  make_spec(type="bot-test", params={"botId": "b", "tests": [{"text": "hi",
                                                                                           "expectedIntent": "g"}]})])
def test_validation_is_idempotent(spec: dict[str, Any]) -> None:
    once = validate_spec(spec)
    assert validate_spec(once) == once


def test_does_not_alias_the_input() -> None:
    original = make_spec()
    spec = validate_spec(original)
    spec["params"]["trainingData"]["examples"].clear()
    assert original["params"]["trainingData"]["examples"]


VALID_PARAMS: list[tuple[str, str, dict[str, Any]]] = [
    ("training by uri", "training", {"botId": "b", "trainingData": {"uri": "gs://my-bucket/bots/b/data.json"}}),
    ("training file uri and format", "training",
     {"botId": "b", "trainingData": {"uri": "file:///data/nlu.yml", "format": "rasa"}}),
    ("training all hyper-parameters", "training",
     {"botId": "b", "trainingData": {"uri": "gs://bkt/x"}, "epochs": 200, "learningRate": 1, "batchSize": 4096,
      "validationSplit": 0.5, "seed": 0, "embeddingDim": 64, "hiddenDim": 128, "dropout": 0.1, "maxLength": 64,
      "patience": 3, "weightDecay": 0.0, "promote": False, "testData": {"uri": "gs://bkt/test.json"}}),
    ("kb-index text and uri articles", "kb-index",
     {"botId": "b", "articles": [{"id": "a1", "title": "Opening hours", "text": "We open at 9."},
                                 {"id": "a2", "title": "Menu", "uri": "gs://bkt/menu.html"}]}),
    ("bot-test inline", "bot-test",
     {"botId": "b", "tests": [{"text": "hi", "expectedIntent": "greet"}], "minAccuracy": 0.9}),
    ("bot-test data", "bot-test", {"botId": "b", "testData": {"uri": "gs://bkt/tests.json"}}),
    ("bot-test on the model's held-out test split", "bot-test", {"botId": "b", "minAccuracy": 0.8, "maxDrop": 0.05}),
    ("training with a test split", "training", {"botId": "b", "trainingData": {"uri": "gs://bkt/x"}, "testSplit": 0.2}),
    ("training without a test split", "training", {"botId": "b", "trainingData": {"uri": "gs://bkt/x"}, "testSplit": 0}),
    ("training fan-out", "training", {"bots": "all"}),
    ("training fan-out with hyper-parameters", "training", {"bots": "all", "epochs": 5}),
    ("bot-test fan-out", "bot-test", {"bots": "all", "minAccuracy": 0.8}),
]


@pytest.mark.parametrize(("job_type", "params"), [c[1:] for c in VALID_PARAMS], ids=[c[0] for c in VALID_PARAMS])
def test_accepts_valid_params_per_type(job_type: str, params: dict[str, Any]) -> None:
    assert validate_spec(make_spec(type=job_type, params=params))["params"] == params


# --- every problem, with its path ----------------------------------------------------------------

INVALID: list[tuple[str, Any, str, str]] = [
    ("not an object", [], "spec", "must be an object, got array"),
    ("missing id", make_spec(id=DELETE), "spec.id", "required"),
    ("uppercase id", make_spec(id="Train"), "spec.id", "DNS-1123 label"),
    ("id too long", make_spec(id="a" * 64), "spec.id", "at most 63"),
    ("id ends with dash", make_spec(id="a-"), "spec.id", "DNS-1123"),
    ("unknown type", make_spec(type="train"), "spec.type", "must be one of training, kb-index, bot-test, got 'train'"),
    ("unknown field", make_spec(gpu=1), "spec.gpu", "unknown field"),
    ("description not a string", make_spec(description=3), "spec.description", "string"),
    ("bad priority", make_spec(priority="urgent"), "spec.priority", "must be one of high, normal, low"),
    ("bad concurrency", make_spec(concurrency="forbid"), "spec.concurrency", "Allow, Forbid, Replace"),
    ("timeout too short", make_spec(timeoutSeconds=59), "spec.timeoutSeconds", "must be between 60 and 86400, got 59"),
    ("timeout too long", make_spec(timeoutSeconds=86401), "spec.timeoutSeconds", "between 60 and 86400"),
    ("timeout a string", make_spec(timeoutSeconds="60"), "spec.timeoutSeconds", "must be an integer, got string"),
    ("retries negative", make_spec(retries=-1), "spec.retries", "must be between 0 and 10, got -1"),
    ("retries boolean", make_spec(retries=True), "spec.retries", "got boolean"),
    ("retries too many", make_spec(retries=11), "spec.retries", "between 0 and 10"),
    ("gpus above limit", make_spec(resources={"gpus": 12}), "spec.resources.gpus", "must be between 0 and 8, got 12"),
    ("gpus fractional", make_spec(resources={"gpus": 0.5}), "spec.resources.gpus", "must be an integer"),
    ("cpu not a quantity", make_spec(resources={"cpu": "two"}), "spec.resources.cpu", "Kubernetes quantity"),
    ("cpu zero", make_spec(resources={"cpu": "0"}), "spec.resources.cpu", "at least"),
    ("memory in millibytes", make_spec(resources={"memory": "512m"}), "spec.resources.memory", "did you mean 512Mi"),
    ("memory bad suffix", make_spec(resources={"memory": "4GB"}), "spec.resources.memory", "quantity"),
    ("memory tiny", make_spec(resources={"memory": "1k"}), "spec.resources.memory", "at least"),
    ("unknown resource", make_spec(resources={"tpus": 1}), "spec.resources.tpus", "unknown field"),
    ("resources a list", make_spec(resources=[1]), "spec.resources", "must be an object"),
    ("schedule six fields", make_spec(schedule="0 0 3 * * *"), "spec.schedule", "expected 5 fields"),
    ("schedule minute out of range", make_spec(schedule="60 * * * *"), "spec.schedule", "minute: 60 is out of range"),
    ("schedule unknown macro", make_spec(schedule="@fortnightly"), "spec.schedule", "unknown macro"),
    ("schedule that never fires", make_spec(schedule="0 0 30 2 *"), "spec.schedule", "never fires"),
    ("schedule on the 31st of short months", make_spec(schedule="0 0 31 4,6,9,11 *"), "spec.schedule", "never fires"),
    ("schedule a number", make_spec(schedule=5), "spec.schedule", "cron expression"),
    ("bad timezone", make_spec(timezone="Mars/Olympus"), "spec.timezone", "IANA time zone"),
    ("timezone path", make_spec(timezone="../../etc/passwd"), "spec.timezone", "IANA time zone"),
    ("missing params", make_spec(params=DELETE), "spec.params", "required"),
    ("params a string", make_spec(params="x"), "spec.params", "must be an object, got string"),
    ("missing botId", with_params(botId=DELETE), "spec.params.botId", "required"),
    ("botId too long for train-", with_params(botId="b" * 58), "spec.params.botId", "at most 57"),
    ("missing trainingData", with_params(trainingData=DELETE), "spec.params.trainingData", "required"),
    ("unknown param", with_params(epoch=3), "spec.params.epoch", "unknown field"),
    ("epochs zero", with_params(epochs=0), "spec.params.epochs", "must be between 1 and 200, got 0"),
    ("epochs too many", with_params(epochs=201), "spec.params.epochs", "between 1 and 200"),
    ("learning rate zero", with_params(learningRate=0), "spec.params.learningRate", "must be in (0, 1], got 0"),
    ("learning rate above 1", with_params(learningRate=1.5), "spec.params.learningRate", "(0, 1]"),
    ("learning rate NaN", with_params(learningRate=float("nan")), "spec.params.learningRate", "got nan"),
    ("batch size too big", with_params(batchSize=4097), "spec.params.batchSize", "between 1 and 4096"),
    ("validation split too big", with_params(validationSplit=0.6), "spec.params.validationSplit", "(0, 0.5]"),
    ("seed not an int", with_params(seed="x"), "spec.params.seed", "integer"),
    ("promote not a bool", with_params(promote="yes"), "spec.params.promote", "true or false"),
    ("uri and examples", with_params(trainingData={"uri": "gs://bkt/x", "examples": EXAMPLES}),
     "spec.params.trainingData", "exactly one of uri or examples"),
    ("http uri", with_params(trainingData={"uri": "http://x/y"}), "spec.params.trainingData.uri", "gs://bucket/object"),
    ("gs uri without object", with_params(trainingData={"uri": "gs://bucket"}), "spec.params.trainingData.uri", "gs://"),
    ("bad format", with_params(trainingData={"uri": "gs://bkt/x", "format": "csv"}),
     "spec.params.trainingData.format", "jobplane, rasa, snips"),
    ("kb-index no bot", make_spec(type="kb-index", params={"articles": [{"id": "a", "title": "t", "text": "x"}]}),
     "spec.params.botId", "required"),
    ("kb-index empty articles", make_spec(type="kb-index", params={"botId": "b", "articles": []}),
     "spec.params.articles", "non-empty array"),
    ("kb-index text and uri", make_spec(type="kb-index", params={"botId": "b", "articles": [
        {"id": "a", "title": "t", "text": "x", "uri": "gs://bkt/x"}]}), "spec.params.articles[0]", "exactly one of text or uri"),
    ("kb-index duplicate ids", make_spec(type="kb-index", params={"botId": "b", "articles": [
        {"id": "a", "title": "t", "text": "x"}, {"id": "a", "title": "u", "text": "y"}]}),
     "spec.params.articles[1].id", "duplicate article id"),
    ("kb-index missing title", make_spec(type="kb-index", params={"botId": "b", "articles": [{"id": "a", "text": "x"}]}),
     "spec.params.articles[0].title", "non-empty string"),
    ("bot-test both", make_spec(type="bot-test", params={"botId": "b", "tests": [{"text": "hi", "expectedIntent": "greet"}],
                                                       "testData": {"uri": "gs://bkt/t"}}), "spec.params", "at most one of tests or testData"),
    ("fan-out and botId", with_params(bots="all", trainingData=DELETE), "spec.params", "exactly one of botId or bots"),
    ("fan-out not all", make_spec(params={"bots": ["b1", "b2"]}), "spec.params.bots", "must be 'all' (one run per bot), got ['b1', 'b2']"),
    ("fan-out with training data", make_spec(params={"bots": "all", "trainingData": {"uri": "gs://bkt/x"}}),
     "spec.params.trainingData", "not allowed with bots: every bot has its own data"),
    ("bot-test fan-out with tests", make_spec(type="bot-test", params={"bots": "all", "tests": [
        {"text": "hi", "expectedIntent": "greet"}]}), "spec.params.tests", "not allowed with bots"),
    ("kb-index cannot fan out", make_spec(type="kb-index", params={"bots": "all", "articles": [
        {"id": "a", "title": "t", "text": "x"}]}), "spec.params.bots", "unknown field"),
    ("bot-test missing expected intent", make_spec(type="bot-test", params={"botId": "b", "tests": [{"text": "hi"}]}),
     "spec.params.tests[0].expectedIntent", "non-empty string"),
    ("bot-test accuracy above 1", make_spec(type="bot-test", params={"botId": "b", "testData": {"uri": "gs://bkt/t"},
                                                                    "minAccuracy": 2}), "spec.params.minAccuracy", "[0, 1]"),
    ("bot-test negative max drop", make_spec(type="bot-test", params={"botId": "b", "maxDrop": -0.1}),
     "spec.params.maxDrop", "[0, 1]"),
    ("bot-test max drop not a number", make_spec(type="bot-test", params={"bots": "all", "maxDrop": "5%"}),
     "spec.params.maxDrop", "number"),
    ("bot-test baseline is the plane's", make_spec(type="bot-test", params={"botId": "b", "baseline": {"runId": "r"}}),
     "spec.params.baseline", "unknown field"),
    ("training test split above half", with_params(testSplit=0.9), "spec.params.testSplit", "[0, 0.5]"),
]


@pytest.mark.parametrize(("spec", "field", "problem"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_reports_the_problem_at_its_path(spec: Any, field: str, problem: str) -> None:
    found = problems_of(spec)
    assert field in found, found
    assert problem in found[field]


def test_collects_every_problem_at_once() -> None:
    spec = make_spec(id="Bad_Id", priority="asap", retries=99, resources={"gpus": 12, "cpu": "x"}, extra=True,
                     schedule="* * * *")
    spec["params"]["epochs"] = 0
    with pytest.raises(ValidationError) as info:
        validate_spec(spec)
    fields = [p.field for p in info.value.problems]
    assert sorted(fields) == sorted([
        "spec.id", "spec.priority", "spec.retries", "spec.resources.gpus", "spec.resources.cpu", "spec.extra",
        "spec.schedule", "spec.params.epochs",
    ])
    assert "spec.resources.gpus: must be between 0 and 8, got 12" in str(info.value)
    assert info.value.status == 400


def test_field_prefix_is_configurable() -> None:
    assert "data.spec.id" in problems_of(make_spec(id="X"), field="data.spec")


# --- training data ---------------------------------------------------------------------------

TRAINING_DATA: list[tuple[str, Any, dict[str, str]]] = [
    ("valid", {"examples": EXAMPLES}, {}),
    ("not an object", [1], {"data.trainingData": "must be an object"}),
    ("empty examples", {"examples": []}, {"data.trainingData.examples": "non-empty array"}),
    ("empty text", {"examples": [{"text": "", "intent": "a"}]}, {"data.trainingData.examples[0].text": "non-empty"}),
    ("missing intent", {"examples": [{"text": "hi"}]}, {"data.trainingData.examples[0].intent": "non-empty string"}),
    ("intent not a string", {"examples": [{"text": "hi", "intent": 3}]},
     {"data.trainingData.examples[0].intent": "got int"}),
    ("entities not a list", {"examples": [{"text": "hi", "intent": "a", "entities": {}}]},
     {"data.trainingData.examples[0].entities": "must be an array"}),
    ("entity start after end", {"examples": [{"text": "hello", "intent": "a",
                                              "entities": [{"start": 3, "end": 2, "entity": "x"}]}]},
     {"data.trainingData.examples[0].entities[0]": "0 <= start < end <= 5"}),
    ("entity past the text", {"examples": [{"text": "hello", "intent": "a",
                                            "entities": [{"start": 3, "end": 9, "entity": "x"}]}]},
     {"data.trainingData.examples[0].entities[0]": "got 3..9"}),
    ("entity offsets strings", {"examples": [{"text": "hello", "intent": "a",
                                              "entities": [{"start": "0", "end": 2, "entity": "x"}]}]},
     {"data.trainingData.examples[0].entities[0].start": "must be an integer, got string"}),
    ("entity value mismatch", {"examples": [{"text": "book for two", "intent": "a",
                                             "entities": [{"start": 9, "end": 12, "entity": "n", "value": "three"}]}]},
     {"data.trainingData.examples[0].entities[0].value": "must equal text[9:12] = 'two'"}),
    ("entity without name", {"examples": [{"text": "hello", "intent": "a", "entities": [{"start": 0, "end": 2}]}]},
     {"data.trainingData.examples[0].entities[0].entity": "non-empty string"}),
]


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in TRAINING_DATA], ids=[c[0] for c in TRAINING_DATA])
def test_validates_training_data(data: Any, expected: dict[str, str]) -> None:
    found = {p.field: p.problem for p in validate_training_data(data)}
    assert set(found) == set(expected), found
    for field, problem in expected.items():
        assert problem in found[field]


def test_caps_problems_from_a_huge_broken_example_list() -> None:
    problems = validate_training_data({"examples": [{"text": ""}] * 5000})
    assert 100 <= len(problems) <= 102
    assert "stopped after 100 problems (5000 examples)" in problems[-1].problem


# --- a bot's training spec ---------------------------------------------------------------------


def test_training_spec_for_bot_uses_defaults_and_replace() -> None:
    spec = training_spec_for_bot("bot-7", defaults={"params": {"epochs": 20}, "resources": {"gpus": 1},
                                                    "id": "ignored", "type": "kb-index"})
    assert spec["id"] == "train-bot-7" and spec["type"] == "training"
    assert spec["params"] == {"epochs": 20, "botId": "bot-7"}
    assert spec["concurrency"] == "Replace"
    assert spec["resources"] == {"gpus": 1, "cpu": "2", "memory": "4Gi"}


def test_training_spec_for_bot_rejects_bad_ids_and_defaults() -> None:
    with pytest.raises(ValidationError) as info:
        training_spec_for_bot("Bot_7", defaults={"retries": 50})
    assert {p.field for p in info.value.problems} == {"spec.id", "spec.params.botId", "spec.retries"}


def test_training_spec_with_data_validates_whole() -> None:
    spec = training_spec_for_bot("bot-7", defaults={})
    spec["params"]["trainingData"] = {"uri": "gs://bkt/bots/bot-7/data/r1.json"}
    assert validate_spec(spec)["params"]["trainingData"]["uri"].endswith("r1.json")


# --- cron ------------------------------------------------------------------------------------

CRON_VALID: list[tuple[str, datetime, bool]] = [
    ("*/15 * * * *", datetime(2026, 1, 1, 10, 30), True),
    ("*/15 * * * *", datetime(2026, 1, 1, 10, 31), False),
    ("0 3 * * MON-FRI", datetime(2026, 11, 30, 3, 0), True),  # a Monday
    ("0 3 * * mon-fri", datetime(2026, 11, 29, 3, 0), False),  # a Sunday
    ("0 0 * * 7", datetime(2026, 11, 29, 0, 0), True),  # 7 is Sunday too
    ("0 0 * * SUN", datetime(2026, 11, 29, 0, 0), True),
    ("0 12 1,15 JAN,jul *", datetime(2026, 7, 15, 12, 0), True),
    ("0 12 1,15 JAN,JUL *", datetime(2026, 8, 15, 12, 0), False),
    ("5/20 * * * *", datetime(2026, 1, 1, 0, 45), True),
    ("0-10/5 * * * *", datetime(2026, 1, 1, 0, 10), True),
    ("0 0 13 * FRI", datetime(2026, 11, 13, 0, 0), True),  # Friday the 13th: either day field
    ("0 0 13 * FRI", datetime(2026, 11, 20, 0, 0), True),  # a Friday, not the 13th
    ("0 0 13 * FRI", datetime(2026, 11, 21, 0, 0), False),
    ("0 0 ? * *", datetime(2026, 1, 1, 0, 0), True),
    ("? ? ? ? ?", datetime(2026, 1, 1, 0, 0), True),
    ("0 0 */1 * FRI", datetime(2026, 11, 13, 0, 0), True),  # */1 is unrestricted: FRI alone decides
    ("0 0 */1 * FRI", datetime(2026, 11, 14, 0, 0), False),
    ("0 0 */2 * FRI", datetime(2026, 11, 15, 0, 0), True),  # */2 restricts: an odd Sunday fires,
    ("0 0 */2 * FRI", datetime(2026, 11, 20, 0, 0), True),  # so does an even Friday,
    ("0 0 */2 * FRI", datetime(2026, 11, 14, 0, 0), False),  # not an even Saturday
    ("@hourly", datetime(2026, 1, 1, 7, 0), True),
    ("@daily", datetime(2026, 1, 1, 7, 0), False),
    ("@weekly", datetime(2026, 11, 29, 0, 0), True),
    ("@monthly", datetime(2026, 11, 1, 0, 0), True),
    ("@yearly", datetime(2027, 1, 1, 0, 0), True),
    ("@annually", datetime(2027, 1, 2, 0, 0), False),
]


@pytest.mark.parametrize(("expr", "moment", "fires"), CRON_VALID)
def test_cron_matches_like_pingsource(expr: str, moment: datetime, fires: bool) -> None:
    assert cronexpr.parse(expr).matches(moment) is fires


CRON_INVALID: list[tuple[str, str]] = [
    ("* * * *", "expected 5 fields"),
    ("* * * * * *", "expected 5 fields"),
    ("60 * * * *", "minute: 60 is out of range 0-59"),
    ("* 24 * * *", "hour: 24 is out of range 0-23"),
    ("* * 0 * *", "day of month: 0 is out of range 1-31"),
    ("* * * 13 *", "month: 13 is out of range 1-12"),
    ("* * * * 8", "day of week: 8 is out of range 0-7"),
    ("* * * FOO *", "month: 'FOO' is not a number or one of JAN"),
    ("MON * * * *", "minute: 'MON' is not a number"),
    ("*/0 * * * *", "step must be at least 1"),
    ("10-5 * * * *", "starts after it ends"),
    ("1,,2 * * * *", "cannot parse"),
    ("@every 5m", "unknown macro"),
    ("CRON_TZ=UTC 0 * * * *", "timezone field"),
]


@pytest.mark.parametrize(("expr", "reason"), CRON_INVALID)
def test_cron_rejects_with_a_reason(expr: str, reason: str) -> None:
    with pytest.raises(cronexpr.CronError, match=None) as info:
        cronexpr.parse(expr)
    assert reason in str(info.value)


# --- quantities ------------------------------------------------------------------------------

QUANTITIES: list[tuple[str, Decimal | None]] = [
    ("2", Decimal(2)), ("500m", Decimal("0.5")), ("1.5", Decimal("1.5")), (".5", Decimal("0.5")),
    ("4Gi", Decimal(4 * 2**30)), ("128Mi", Decimal(128 * 2**20)), ("1k", Decimal(1000)), ("1e3", Decimal(1000)),
    ("2E-3", Decimal("0.002")), ("+1", Decimal(1)), ("1Ki", Decimal(1024)),
    ("", None), ("Gi", None), ("4 Gi", None), ("4gi", None), ("4GB", None), ("1.2.3", None), ("0x10", None),
]


@pytest.mark.parametrize(("text", "value"), QUANTITIES)
def test_parses_kubernetes_quantities(text: str, value: Decimal | None) -> None:
    if value is None:
        with pytest.raises(ValueError):
            checks.parse_quantity(text)
    else:
        assert checks.parse_quantity(text) == value


# --- fan-out specs (params.bots: "all") ------------------------------------------------------

BUILT_IN = Path(__file__).resolve().parents[2] / "functions" / "jobplane" / "data" / "specs"


@pytest.mark.parametrize(("spec", "expected"), [
    (make_spec(params={"bots": "all"}), True),
    (make_spec(type="bot-test", params={"bots": "all", "minAccuracy": 0.8}), True),
    (make_spec(), False),
    (make_spec(type="bot-test", params={"botId": "b"}), False),
    (make_spec(type="kb-index", params={"bots": "all"}), False),
], ids=["training", "bot-test", "one bot", "one bot test", "kb-index"])
def test_tells_a_fan_out_spec_from_a_one_bot_spec(spec: dict[str, Any], expected: bool) -> None:
    assert is_fan_out(spec) is expected


def test_one_bots_params_drop_bots_keep_the_rest_and_validate() -> None:
    fan_out = validate_spec(make_spec(type="bot-test", params={"bots": "all", "minAccuracy": 0.8}))
    params = for_one_bot(fan_out["params"], "pizza-bot")
    assert params == {"botId": "pizza-bot", "minAccuracy": 0.8}
    assert validate_spec({**fan_out, "params": params})["params"] == params
    assert fan_out["params"] == {"bots": "all", "minAccuracy": 0.8}  # not aliased


@pytest.mark.parametrize("spec_id", ["retrain-all", "nightly-bot-tests"])
def test_built_in_fan_out_specs_validate_and_fan_out(spec_id: str) -> None:
    spec = validate_spec(json.loads((BUILT_IN / f"{spec_id}.json").read_text(encoding="utf-8")))
    assert spec["id"] == spec_id and spec["schedule"] and is_fan_out(spec)


@pytest.mark.parametrize(("params", "overrides", "expected"), [
    ({"bots": "all", "minAccuracy": 0.8}, {"botId": "b"}, {"botId": "b", "minAccuracy": 0.8}),
    ({"bots": "all", "minAccuracy": 0.8}, {"minAccuracy": 0.9}, {"bots": "all", "minAccuracy": 0.9}),
    ({"botId": "a", "epochs": 3}, {"epochs": 5}, {"botId": "a", "epochs": 5}),
    ({"botId": "a"}, {"botId": "b"}, {"botId": "b"}),
], ids=["one bot of a fan-out", "fan-out override", "one-bot override", "botId override"])
def test_merges_run_params_over_the_specs(params: dict[str, Any], overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    assert merge_params(params, overrides) == expected
