"""The runs an event will make, named from the event alone exactly as launch names them."""

from __future__ import annotations

from typing import Any

from jobplane import events as ev
from jobplane import planning, receipts, runs


def event(type_: str, data: Any, *, source: str = "/platform", id: str = "e-1") -> ev.Event:
    return ev.new_event(type_, source=source, id=id, data=data)


def test_a_bot_changed_with_training_data_names_its_training_run() -> None:
    found = receipts.expected_runs(event(ev.BOT_CHANGED, {"botId": "b", "trainingData": {"uri": "gs://x/y"}}))
    assert found == [{"runId": runs.run_id_for("train-b", source="/platform", event_id="e-1"), "specId": "train-b",
                      "type": "training", "botId": "b"}]


def test_a_bot_changed_with_a_knowledge_base_also_names_the_kb_run_its_follow_up_makes() -> None:
    found = receipts.expected_runs(event(ev.BOT_CHANGED, {"botId": "b", "trainingData": {"uri": "gs://x/y"},
                                                          "knowledgeBase": {"uri": "gs://x/kb"}})) or []
    source, follow_up_id = planning.kb_trigger("e-1")
    assert [r["specId"] for r in found] == ["train-b", "kb-b"]
    assert found[1]["runId"] == runs.run_id_for("kb-b", source=source, event_id=follow_up_id)
    only_kb = receipts.expected_runs(event(ev.BOT_CHANGED, {"botId": "b", "knowledgeBase": {"uri": "gs://x/kb"}}))
    assert only_kb == [{"runId": runs.run_id_for("kb-b", source="/platform", event_id="e-1"), "specId": "kb-b",
                        "type": "kb-index", "botId": "b"}]


def test_a_run_requested_names_its_spec_with_the_type_read_for_it_or_inline() -> None:
    stored = receipts.expected_runs(event(ev.RUN_REQUESTED, {"specId": "s"}), spec_type={"s": "bot-test"}.get)
    assert stored == [{"runId": runs.run_id_for("s", source="/platform", event_id="e-1"), "specId": "s",
                       "type": "bot-test"}]
    inline = receipts.expected_runs(event(ev.RUN_REQUESTED, {"spec": {"id": "t", "type": "training"}}))
    assert inline and inline[0]["specId"] == "t" and inline[0]["type"] == "training"


def test_events_that_make_no_run_name_none() -> None:
    assert receipts.expected_runs(event(ev.RUN_PROGRESS, {})) is None
    assert receipts.expected_runs(event(ev.BOT_CHANGED, {"botId": ""})) == []
    assert receipts.expected_runs(event(ev.RUN_REQUESTED, b"not json")) == []
