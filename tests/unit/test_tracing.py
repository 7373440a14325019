"""W3C traceparent: kept when valid, derived when absent, one hop per run's Job."""

from __future__ import annotations

import pytest

from jobplane import tracing

GIVEN = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize("value, ok", [
    (GIVEN, True), (GIVEN.upper(), False), ("01-" + GIVEN[3:], False), ("00-" + "0" * 32 + GIVEN[35:], False),
    (GIVEN[:36] + "0" * 16 + "-01", False), ("garbage", False), (None, False), (GIVEN + "-x", False),
])
def test_only_a_valid_version_00_traceparent_is_taken(value: object, ok: bool) -> None:
    assert (tracing.parse(value) is not None) is ok


def test_an_events_own_traceparent_is_kept_and_an_absent_one_derived_from_source_and_id() -> None:
    assert tracing.of_event("/s", "1", {"traceparent": GIVEN}) == GIVEN
    derived = tracing.of_event("/s", "1", {"traceparent": "bad"})
    assert tracing.parse(derived) == derived and derived == tracing.of_event("/s", "1", {})
    assert derived != tracing.of_event("/s", "2", {})


def test_a_child_keeps_the_trace_and_derives_its_parent_id_from_the_seed() -> None:
    child = tracing.child(GIVEN, seed="run-1")
    assert tracing.trace_id(child) == tracing.trace_id(GIVEN) and child != GIVEN
    assert child == tracing.child(GIVEN, seed="run-1") != tracing.child(GIVEN, seed="run-2")
    assert child.endswith("-01")


def test_new_ones_are_valid_and_differ() -> None:
    assert tracing.parse(tracing.new()) and tracing.new() != tracing.new()
