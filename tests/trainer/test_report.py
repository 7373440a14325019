"""The trainer's reporter: seq that a retried attempt continues without coordination, and a
crash reported as progress in phase ``error`` (a retry may cure it), never as ``run.failed``."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from typing import Any

import pytest
from support.servers import serve_wsgi

from jobplane import conventions as c
from jobplane import events as ev
from jobplane.errors import PermanentError, TransientError, UnavailableError
from jobplane_trainer.job import JobEnv
from jobplane_trainer.report import FINAL_RETRY_SECONDS, Reporter, Throttle
from jobplane_trainer.train import Progress


class FakeTime:
    """A monotonic clock that only sleeping moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class MsClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def reporter(sent: list[ev.Event], clock: MsClock) -> Reporter:
    return Reporter(sent.append, run_id="r1", token="tok", throttle=Throttle(0.0), clock_ms=clock, sleep=lambda _: None)


def test_seq_increases_within_a_millisecond_and_a_retry_continues_past_the_earlier_attempt() -> None:
    clock = MsClock(1_800_000_000_000)
    first: list[ev.Event] = []
    second: list[ev.Event] = []
    attempt1 = reporter(first, clock)
    for i in range(5):  # all within one millisecond
        attempt1.progress(Progress("intent", float(i), "x"), force=True)
    clock.now += 1000  # a new pod a second later (the restart delay), its reporter fresh
    attempt2 = reporter(second, clock)
    attempt2.progress(Progress("prepare", 0.5, "reading"), force=True)
    seqs = [e.data["seq"] for e in first]
    assert seqs == list(range(clock.now - 1000, clock.now - 995))
    assert second[0].data["seq"] > seqs[-1]


def test_seq_fits_the_status_functions_bound() -> None:
    from jobplane.progress import MAX_SEQ

    sent: list[ev.Event] = []
    Reporter(sent.append, run_id="r1", token="t").progress(Progress("prepare", 0.0, "x"))
    assert 1_700_000_000_000 < sent[0].data["seq"] <= MAX_SEQ


def test_a_crash_is_progress_in_phase_error_with_the_message_not_run_failed() -> None:
    sent: list[ev.Event] = []
    r = reporter(sent, MsClock(5))
    r.progress(Progress("intent", 40.0, "epoch 3"))
    r.crashed("ValueError: invalid literal for int()")
    assert [e.type for e in sent] == [ev.RUN_PROGRESS, ev.RUN_PROGRESS]
    crash = sent[-1].data
    assert (crash["phase"], crash["message"], crash["progress"]) == (c.PHASE_ERROR, "ValueError: invalid literal for int()", 40.0)
    assert crash["seq"] > sent[0].data["seq"]


def test_a_crash_report_is_retried_and_never_raises() -> None:
    calls: list[ev.Event] = []

    def down(event: ev.Event) -> None:
        calls.append(event)
        raise TransientError("sink down")

    time = FakeTime()
    Reporter(down, run_id="r1", token="t", sleep=time.sleep, clock=time.clock).crashed("RuntimeError: boom")
    assert len(calls) > 1 and {e.id for e in calls} == {calls[0].id}


def test_a_crash_message_is_cut_short() -> None:
    sent: list[ev.Event] = []
    reporter(sent, MsClock(1)).crashed("x" * 5000)
    assert len(sent[0].data["message"]) == 2000


# --- the final event outlasts a plane restart; progress stays best effort ----------------------


class Sink:
    """A broker ingress stand-in: answers the statuses in ``script`` in turn, then 202."""

    def __init__(self, *script: int) -> None:
        self.script = list(script)
        self.received: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        status = self.script.pop(0) if self.script else 202
        if status < 300:
            self.received.append(environ.get("HTTP_CE_ID", ""))
        start_response(f"{status} X", [("Content-Length", "0")])
        return [b""]


def succeeded_with(send: Callable[[ev.Event], None], time: FakeTime) -> Reporter:
    return Reporter(send, run_id="r1", token="t", sleep=time.sleep, clock=time.clock)


def test_the_final_event_waits_out_a_plane_that_refuses_connections_until_it_is_back() -> None:
    with socket.socket() as s:  # a port nobody listens on: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink, time = Sink(), FakeTime()
    with contextlib.ExitStack() as stack:
        def sleep(seconds: float) -> None:
            time.sleep(seconds)
            if len(time.slept) == 4:  # the plane is back after a few tries
                stack.enter_context(serve_wsgi(sink, port=port))

        reporter = Reporter(ev.http_sender(f"http://127.0.0.1:{port}/default/default"), run_id="r1", token="t",
                            sleep=sleep, clock=time.clock)
        reporter.succeeded({"metrics": {"accuracy": 0.9}})

    assert len(sink.received) == 1 and time.slept[:4] == [0.5, 1.0, 2.0, 4.0]


def test_the_final_event_is_retried_on_5xx_and_429_and_sent_once_accepted() -> None:
    sink, time = Sink(503, 429, 502), FakeTime()
    with serve_wsgi(sink) as url:
        succeeded_with(ev.http_sender(url + "/default/default"), time).failed("BadData", "no examples")
    assert len(sink.received) == 1 and len(time.slept) == 3


def test_the_final_event_is_retried_for_longer_than_a_plane_restart_then_gives_up() -> None:
    calls: list[ev.Event] = []

    def down(event: ev.Event) -> None:
        calls.append(event)
        raise UnavailableError("connection refused")

    time = FakeTime()
    with pytest.raises(UnavailableError):
        succeeded_with(down, time).succeeded({"metrics": {}})
    assert FINAL_RETRY_SECONDS >= 120
    assert FINAL_RETRY_SECONDS - 10 <= sum(time.slept) <= FINAL_RETRY_SECONDS and max(time.slept) == 10.0
    assert len({e.id for e in calls}) == 1


def test_the_final_events_retry_time_is_configurable_in_the_jobs_env() -> None:
    env = {c.ENV_RUN_ID: "r1", c.ENV_STORE: "file:///tmp/x", c.ENV_FINAL_RETRY: "600"}
    assert JobEnv.from_env(env).final_retry_s == 600.0
    assert JobEnv.from_env({**env, c.ENV_FINAL_RETRY: ""}).final_retry_s == FINAL_RETRY_SECONDS


def test_a_final_event_refused_for_good_is_not_retried() -> None:
    sink, time = Sink(400), FakeTime()
    with serve_wsgi(sink) as url, pytest.raises(PermanentError):
        succeeded_with(ev.http_sender(url + "/default/default"), time).succeeded({"metrics": {}})
    assert time.slept == []


def test_progress_that_cannot_be_delivered_is_dropped_at_once() -> None:
    sink, time = Sink(503), FakeTime()
    with serve_wsgi(sink) as url:
        r = Reporter(ev.http_sender(url + "/default/default"), run_id="r1", token="t", throttle=Throttle(0.0),
                     sleep=time.sleep, clock=time.clock)
        r.progress(Progress("intent", 10.0, "epoch 1"))
        r.progress(Progress("intent", 20.0, "epoch 2"))
    assert time.slept == [] and len(sink.received) == 1


def test_a_failed_bot_test_sends_its_figures_with_the_reason() -> None:
    sent: list[ev.Event] = []
    results = {"metrics": {"accuracy": 0.5}, "artifacts": {"botTest": "file:///b"}, "botId": "acme"}
    Reporter(sent.append, run_id="r1", token="t").failed("Regression", "greet -0.200", results=results)
    assert sent[0].type == ev.RUN_FAILED
    assert sent[0].data == {"reason": "Regression", "message": "greet -0.200", "metrics": {"accuracy": 0.5},
                            "artifacts": {"botTest": "file:///b"}}


def test_every_callback_carries_the_runs_traceparent_when_the_job_has_one() -> None:
    sent: list[ev.Event] = []
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    traced = Reporter(sent.append, run_id="r1", token="tok", throttle=Throttle(0.0), clock_ms=MsClock(1),
                      sleep=lambda _: None, traceparent=trace)
    traced.progress(Progress("intent", 10.0, "epoch 1"))
    traced.succeeded({"metrics": {}})
    reporter(sent, MsClock(2)).progress(Progress("intent", 10.0, "epoch 1"))
    assert [e.extensions.get(c.TRACE_EXTENSION) for e in sent] == [trace, trace, None]
    assert all(e.extensions[c.TOKEN_EXTENSION] == "tok" for e in sent)


def test_the_job_env_reads_the_traceparent() -> None:
    env = JobEnv.from_env({c.ENV_RUN_ID: "r1", c.ENV_STORE: "file:///tmp/x", c.ENV_TRACEPARENT: "00-a-b-01"})
    assert env.traceparent == "00-a-b-01"
    assert JobEnv.from_env({c.ENV_RUN_ID: "r1", c.ENV_STORE: "file:///tmp/x"}).traceparent == ""
