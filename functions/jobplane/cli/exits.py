"""What ``jobplane`` exits with, so a script can tell what happened without reading the output.

One code per kind of outcome, each the same whatever the command: the API's HTTP status picks
it for a failed call, the run's final state for a followed run. ``CliError`` carries the code
and the message (with the API's field paths) that the command line prints on stderr.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Final

from ..cache import REASON as CACHE_HIT


class Exit(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    AUTH = 4
    UNAVAILABLE = 5
    RUN_FAILED = 6
    RUN_STOPPED = 7
    INTERRUPTED = 130


EPILOG: Final = (
    "Exit codes: 0 ok (a followed run succeeded, or was skipped as a cache hit); 2 usage or validation error (the API answered 4xx: the field paths are on "
    "stderr); 3 not found (404); 4 not authenticated or not allowed (401/403); 5 the plane is "
    "unreachable or failed (5xx, 429; a retry may help); 6 a followed run ended failed; 7 a followed "
    "run ended cancelled, superseded or skipped; 130 interrupted; 1 anything else (a bug)."
)
"""The table above in one paragraph, for ``jobplane --help`` (README.md repeats it)."""

STOPPED_STATES: Final = frozenset({"cancelled", "superseded", "skipped"})


def for_status(status: int) -> Exit:
    """The code for an HTTP error status."""
    if status in (401, 403):
        return Exit.AUTH
    if status == 404:
        return Exit.NOT_FOUND
    if status == 429 or status >= 500:
        return Exit.UNAVAILABLE
    return Exit.USAGE


def for_state(state: str, reason: str | None = None) -> Exit:
    """The code for a run's final state: OK for ``succeeded``, and for ``skipped`` as a cache hit
    (a succeeded run with the same inputs made the model it reuses)."""
    if state == "failed":
        return Exit.RUN_FAILED
    if state in STOPPED_STATES and not (state == "skipped" and reason == CACHE_HIT):
        return Exit.RUN_STOPPED
    return Exit.OK


class CliError(Exception):
    """A command failed: ``message`` (and each ``field: problem``) goes to stderr, ``code`` is
    the exit status."""

    def __init__(self, message: str, *, code: Exit, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = list(details)

    def lines(self) -> list[str]:
        return [f"jobplane: {self.message}", *(f"  {d}" for d in self.details)]
