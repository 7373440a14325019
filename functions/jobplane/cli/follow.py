"""Following a run to its end: ``GET /v1/runs/{id}`` polled, drawn as a live progress bar with
the run's phase, message and ETA.

The ETA is the trainer's own (``eta`` in the run record, seconds) when it sent one, else rich's
estimate from the progress so far (shown with a ``~``). On a terminal the bar redraws in place;
in a log (no terminal) a line is written per state or phase and per 10 %, and the bar once at the
end. A run that does not exist yet is waited for a while: a trigger answers before the launch
function has recorded the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskProgressColumn, TextColumn
from rich.text import Text

from .. import promotion, runs
from .client import Api
from .exits import CliError, Exit
from .render import clip, duration

POLL_SECONDS: Final = 0.5
BAR_WIDTH: Final = 80
"""What the state, bar, percentage and ETA take of a line: the message gets the rest."""
SETTLE_SECONDS: Final = 30.0
"""How long a succeeded run is waited on for its promotion decision (``promotion.settled``), so
that a ``predict`` right after ``run --follow`` meets the new model."""
APPEAR_SECONDS: Final = 30.0
"""How long a run that was just requested may take to be recorded before it counts as missing."""


class EtaColumn(ProgressColumn):
    """``eta 1m05s`` from the run, ``eta ~1m05s`` from rich's estimate, blank when neither."""

    def render(self, task: Task) -> Text:
        eta = task.fields.get("eta")
        if task.finished:
            return Text("")
        if isinstance(eta, int | float):
            return Text(f"eta {duration(float(eta))}", style="progress.remaining")
        estimate = task.time_remaining
        return Text(f"eta ~{duration(estimate)}" if estimate else "", style="progress.remaining")


def follow(api: Api, run_id: str, *, out: Console, interval: float = POLL_SECONDS,
           appear_within: float = 0.0, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """The run record once its state is terminal (and its promotion decided), drawn on ``out``
    while it goes."""
    columns = (TextColumn("{task.description:<22}"), BarColumn(bar_width=30), TaskProgressColumn(), EtaColumn(),
               TextColumn("{task.fields[message]}"))
    with Progress(*columns, console=out, auto_refresh=out.is_terminal) as bar:
        task = bar.add_task("requested", total=100, eta=None, message="")
        log = _Log(out)
        deadline = time.monotonic() + appear_within
        settle_by = 0.0
        while True:
            run = _fetch(api, run_id, missing_ok=time.monotonic() < deadline)
            if run is not None:
                where = str(run.get("phase") or run.get("state")) if run.get("state") == "running" else str(run.get("state"))
                message = clip(_message(run), max(10, out.width - BAR_WIDTH))
                bar.update(task, completed=int(run.get("progress") or 0), description=where,
                           eta=run.get("eta"), message=message)
                log.line(int(run.get("progress") or 0), where, message)
                if runs.is_terminal(run):
                    settle_by = settle_by or time.monotonic() + SETTLE_SECONDS
                    if promotion.settled(run) or time.monotonic() > settle_by:
                        return run
            sleep(interval)


def _message(run: dict[str, Any]) -> str:
    """The trainer's last message while the run goes; why it ended, unless it succeeded."""
    if run.get("state") == "succeeded":
        return ""
    if runs.is_terminal(run):
        return ": ".join(str(run[k]) for k in ("reason", "message") if run.get(k))
    return str(run.get("message") or "")


def _fetch(api: Api, run_id: str, *, missing_ok: bool) -> dict[str, Any] | None:
    try:
        return api.get(f"/v1/runs/{run_id}")  # type: ignore[no-any-return]
    except CliError as e:
        if e.code == Exit.NOT_FOUND and missing_ok:
            return None
        if e.code == Exit.NOT_FOUND:
            e.message += " (if it was just requested, its event may have been refused: `jobplane deadletter list`)"
        raise


class _Log:
    """Lines for a log that cannot redraw a bar: one per state or phase, and per 10 %."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.last: tuple[int, str] = (-1, "")

    def line(self, percent: int, where: str, message: str) -> None:
        if self.out.is_terminal or (percent // 10, where) == (self.last[0] // 10, self.last[1]):
            return
        self.last = (percent, where)
        self.out.print(Text(f"{percent:3d}% {where}" + (f": {message}" if message else "")))
