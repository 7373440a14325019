"""The trainer's reporter: seq that a retried attempt continues without coordination, and a
crash reported as progress in phase ``error`` (a retry may cure it), never as ``run.failed``."""

from __future__ import annotations

from jobplane import conventions as c
from jobplane import events as ev
from jobplane.errors import TransientError
from jobplane_trainer.report import Reporter, Throttle
from jobplane_trainer.train import Progress


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

    Reporter(down, run_id="r1", token="t", sleep=lambda _: None).crashed("RuntimeError: boom")
    assert len(calls) > 1 and {e.id for e in calls} == {calls[0].id}


def test_a_crash_message_is_cut_short() -> None:
    sent: list[ev.Event] = []
    reporter(sent, MsClock(1)).crashed("x" * 5000)
    assert len(sent[0].data["message"]) == 2000
