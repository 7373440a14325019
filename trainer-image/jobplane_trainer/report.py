"""CloudEvents from the trainer to ``$K_SINK``: progress (at most about once a second), and the
run's end (succeeded with results, or failed with a reason).

Every event carries the run's callback token in the ``jobplanetoken`` extension, ``subject`` =
run id and ``source`` = ``/jobplane/trainer/{runId}``. Progress that cannot be delivered is
logged and dropped (training goes on); the final event is retried a few times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from jobplane import events
from jobplane.conventions import TOKEN_EXTENSION
from jobplane.errors import TransientError

from .train import Progress

log = logging.getLogger("jobplane_trainer")
MIN_INTERVAL = 1.0
FINAL_ATTEMPTS = 5


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
    """Sends the run's CloudEvents through ``send`` (``events.http_sender(K_SINK)`` in a Job)."""

    def __init__(self, send: Callable[[events.Event], None], *, run_id: str, token: str,
                 throttle: Throttle | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.send = send
        self.run_id = run_id
        self.token = token
        self.throttle = throttle or Throttle()
        self.sleep = sleep
        self.seq = 0
        self.last_percent = 0.0
        self.last_phase = ""

    def _event(self, type_: str, data: dict[str, Any]) -> events.Event:
        return events.new_event(type_, source=f"/jobplane/trainer/{self.run_id}", subject=self.run_id,
                                data=data, extensions={TOKEN_EXTENSION: self.token})

    def progress(self, p: Progress, *, force: bool = False) -> None:
        """A ``run.progress`` event unless one went out less than a second ago (a new phase
        always goes out: a handful per run)."""
        percent = max(self.last_percent, p.percent)  # never backwards
        if not self.throttle.allow(force=force or p.phase != self.last_phase):
            return
        self.last_phase = p.phase
        self.seq += 1
        self.last_percent = percent
        data: dict[str, Any] = {"seq": self.seq, "progress": percent, "phase": p.phase, "message": p.message}
        if p.eta is not None:
            data["eta"] = round(p.eta, 1)
        if p.metrics:
            data["metrics"] = p.metrics
        try:
            self.send(self._event(events.RUN_PROGRESS, data))
        except Exception as e:  # progress is best effort; the final event is not
            log.warning("progress event not delivered: %s", e)

    def succeeded(self, data: dict[str, Any]) -> None:
        self._final(self._event(events.RUN_SUCCEEDED, data))

    def failed(self, reason: str, message: str) -> None:
        self._final(self._event(events.RUN_FAILED, {"reason": reason, "message": message[:2000]}))

    def _final(self, event: events.Event) -> None:
        for attempt in range(FINAL_ATTEMPTS):
            try:
                self.send(event)
                return
            except TransientError as e:
                if attempt == FINAL_ATTEMPTS - 1:
                    raise
                log.warning("%s not delivered (attempt %d): %s", event.type, attempt + 1, e)
                self.sleep(min(8.0, 0.5 * 2**attempt))
