"""The job types this image runs, in one place: type → the function that runs it.

Each entry point takes ``(env, reporter, *, stop)`` and returns the ``run.succeeded`` event's
data (``metrics``, ``artifacts``, ``promoted``, ``botId``, …); it raises ``BadDataError`` for
input that can never work (the run fails, no retries). Modules load on first use, so a
training Job never imports the kb-index stack and the other way round.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any, Final

from .data import BadDataError
from .report import Reporter
from .stages import Progress

EntryPoint = Callable[..., dict[str, Any]]


def _bot_test(env: Any, reporter: Reporter, *, stop: threading.Event) -> dict[str, Any]:
    from . import bottest

    reporter.progress(Progress("test", 10.0, "scoring the promoted model"), force=True)
    return bottest.execute(env)


ENTRYPOINTS: Final[dict[str, str | EntryPoint]] = {
    "training": "jobplane_trainer.job:execute",
    "kb-index": "jobplane_trainer.kb_index:execute",
    "bot-test": _bot_test,
}


def entrypoint(job_type: str) -> EntryPoint:
    """The function that runs ``job_type``; ``BadDataError`` for a type this image lacks."""
    target = ENTRYPOINTS.get(job_type)
    if target is None:
        raise BadDataError([], what=f"job: this image runs {', '.join(sorted(ENTRYPOINTS))} jobs, not {job_type!r}")
    if callable(target):
        return target
    module, _, name = target.partition(":")
    fn: EntryPoint = getattr(importlib.import_module(module), name)
    return fn
