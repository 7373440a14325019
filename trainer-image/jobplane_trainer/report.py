"""CloudEvents from the trainer to ``$K_SINK``: progress (at most about once a second), and the
run's end (succeeded with results, or failed with a reason the data caused: no retry can help).

A crash a retry may cure is no end: it goes out as progress in phase ``error`` with the error as
its message, since ``run.failed`` is sticky and would hide a later attempt's success. When the
Job has failed for good, the reconciler fails the run and quotes that message.

Every event carries the run's callback token in the ``jobplanetoken`` extension, ``subject`` =
run id and ``source`` = ``/jobplane/trainer/{runId}``. Progress that cannot be delivered is
logged and dropped (training goes on, and the next progress supersedes it). The final event
(and a crash's report) is the run's outcome: a refused connection, a timeout, 5xx or 429 is
retried with backoff for ``FINAL_RETRY_SECONDS`` (``JOBPLANE_FINAL_RETRY_SECONDS``), longer than
a plane restart takes, so a trainer that ends while its plane restarts still reports how.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from jobplane import events
from jobplane.conventions import PHASE_ERROR, TOKEN_EXTENSION, TRACE_EXTENSION
from jobplane.errors import TransientError

from .stages import Progress

log = logging.getLogger("jobplane_trainer")
MIN_INTERVAL = 1.0
FINAL_RETRY_SECONDS = 180.0
"""How long the final event is retried: longer than a plane restart takes."""
FINAL_FIRST_DELAY = 0.5
FINAL_MAX_DELAY = 10.0
"""The pause between tries doubles from the first delay up to this."""


def epoch_ms() -> int:
    return time.time_ns() // 1_000_000


class Throttle:
    """Lets an update through at most once per ``interval`` seconds (``force`` always passes)."""

    def __init__(self, interval: float = MIN_INTERVAL, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.last: float | None = None

    def allow(self, *, force: bool = False) -> bool:
        now = self.clock()
        if force or self.last is None or now - self.last >= self.interval:
            self.last = now
            return True
        return False


class Reporter:
    """Sends the run's CloudEvents through ``send`` (``events.http_sender(K_SINK)`` in a Job).

    Progress ``seq`` is ``max(last seq + 1, milliseconds since the epoch)``: increasing within an
    attempt, and a retried attempt (a new pod, a new process, nothing carried over) starts past
    the earlier attempts' seqs without asking anyone, since it starts later. The status function
    merges only seq above the record's, so a counter from 1 would have its progress ignored until
    it caught up. Clock skew between nodes larger than the pause between attempts (10 s or more
    in Kubernetes) could still hide a retry's first events; the checkpoint is no better a
    carrier, as an attempt that crashes before its first checkpoint leaves none.
    """

    def __init__(self, send: Callable[[events.Event], None], *, run_id: str, token: str,
                 throttle: Throttle | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock_ms: Callable[[], int] = epoch_ms, final_retry_s: float = FINAL_RETRY_SECONDS,
                 clock: Callable[[], float] = time.monotonic, traceparent: str = "") -> None:
        """``final_retry_s``: how long a final event is retried; ``clock``: what measures it;
        ``traceparent``: the run's trace context, carried on every event (CloudEvents'
        distributed-tracing extension) so the status function logs it."""
        self.send = send
        self.final_retry_s = final_retry_s
        self.clock = clock
        self.clock_ms = clock_ms
        self.run_id = run_id
        self.token = token
        self.extensions = {TOKEN_EXTENSION: token, **({TRACE_EXTENSION: traceparent} if traceparent else {})}
        self.throttle = throttle or Throttle()
        self.sleep = sleep
        self.seq = 0
        self.last_percent = 0.0
        self.last_phase = ""

    def _event(self, type_: str, data: dict[str, Any]) -> events.Event:
        return events.new_event(type_, source=f"/jobplane/trainer/{self.run_id}", subject=self.run_id,
                                data=data, extensions=dict(self.extensions))

    def progress(self, p: Progress, *, force: bool = False) -> None:
        """A ``run.progress`` event unless one went out less than a second ago (a new phase
        always goes out: a handful per run)."""
        percent = max(self.last_percent, p.percent)  # never backwards
        if not self.throttle.allow(force=force or p.phase != self.last_phase):
            return
        self.last_phase = p.phase
        self.last_percent = percent
        data: dict[str, Any] = {"seq": self._next_seq(), "progress": percent, "phase": p.phase, "message": p.message}
        if p.eta is not None:
            data["eta"] = round(p.eta, 1)
        if p.metrics:
            data["metrics"] = p.metrics
        try:
            self.send(self._event(events.RUN_PROGRESS, data))
        except Exception as e:  # progress is best effort; the final event is not
            log.warning("progress event not delivered: %s", e)

    def _next_seq(self) -> int:
        self.seq = max(self.seq + 1, self.clock_ms())
        return self.seq

    def crashed(self, message: str) -> None:
        """Report a crash a retry may cure: progress in phase ``error`` with the error, sent with
        the final event's retries (it is the run's only account of the crash), never raising."""
        data = {"seq": self._next_seq(), "progress": self.last_percent, "phase": PHASE_ERROR,
                "message": message[:2000]}
        try:
            self._final(self._event(events.RUN_PROGRESS, data))
        except Exception as e:  # the exit code still tells the Job; the reconciler ends the run
            log.warning("error report not delivered: %s", e)

    def succeeded(self, data: dict[str, Any]) -> None:
        self._final(self._event(events.RUN_SUCCEEDED, data))

    def failed(self, reason: str, message: str, *, results: dict[str, Any] | None = None) -> None:
        """The run failed for good: only for what no retry can help (bad data, a failed bot
        test). ``results``: figures and artifacts that the failed run keeps (a bot test's)."""
        extra = {k: v for k, v in (results or {}).items() if k in ("metrics", "artifacts")}
        self._final(self._event(events.RUN_FAILED, {"reason": reason, "message": message[:2000], **extra}))

    def _final(self, event: events.Event) -> None:
        send_final(self.send, event, retry_s=self.final_retry_s, sleep=self.sleep, clock=self.clock)


def send_final(send: Callable[[events.Event], None], event: events.Event, *, retry_s: float = FINAL_RETRY_SECONDS,
               sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
    """Send an event that must arrive: what a retry can cure is retried (the same event: the
    plane absorbs a duplicate), pausing 0.5 s doubling to 10 s, until ``retry_s`` has passed;
    a refusal for good (4xx) raises at once."""
    give_up = clock() + retry_s
    delay = FINAL_FIRST_DELAY
    for attempt in itertools.count(1):
        try:
            send(event)
            return
        except TransientError as e:
            if clock() + delay > give_up:
                raise
            log.warning("%s not delivered (try %d, again in %.1f s): %s", event.type, attempt, delay, e)
            sleep(delay)
            delay = min(FINAL_MAX_DELAY, delay * 2)
