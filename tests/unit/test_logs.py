"""Log lines as JSON objects carrying the run and event context they were logged in."""

from __future__ import annotations

import io
import json
import logging

from jobplane import logs


def capture(fmt: str = "json") -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.formatter(fmt))
    logger = logging.getLogger(f"test.logs.{fmt}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, out


def test_a_line_is_one_json_object_with_the_bound_event_run_and_traceparent() -> None:
    logger, out = capture()
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with logs.bound(eventSource="/platform", eventId="e-1", traceparent=trace):
        logs.bind(runId="run-1")
        logger.info("run %s: %s", "run-1", "launched")
    logger.warning("outside", extra={"runId": "run-2"})

    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {"time": first["time"], "level": "INFO", "logger": "test.logs.json", "message": "run run-1: launched",
                     "eventSource": "/platform", "eventId": "e-1", "traceparent": trace, "runId": "run-1"}
    assert first["time"].endswith("Z")
    assert second["runId"] == "run-2" and "traceparent" not in second and "eventId" not in second


def test_an_exception_travels_inside_the_line() -> None:
    logger, out = capture()
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        logger.exception("failed")
    [line] = out.getvalue().splitlines()
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_text_is_the_opt_out_for_people() -> None:
    logger, out = capture("text")
    logger.info("hello")
    assert out.getvalue().rstrip().endswith("INFO test.logs.text: hello")
    assert logs.format_from({"JOBPLANE_LOG_FORMAT": "TEXT"}) == "text"
    assert logs.format_from({}) == logs.format_from({"JOBPLANE_LOG_FORMAT": "yaml"}) == "json"


def test_configure_replaces_its_own_handler_and_keep_leaves_the_first() -> None:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        first = logs.configure("text", stream=io.StringIO())
        assert logs.configure("json", keep=True) is first
        second = logs.configure("json", stream=io.StringIO())
        assert first not in root.handlers and second in root.handlers
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])


def test_a_field_bound_outside_a_block_is_not_kept() -> None:
    logs.bind(runId="stray")
    logger, out = capture()
    logger.info("later")
    assert "runId" not in json.loads(out.getvalue())
