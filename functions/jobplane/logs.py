"""Log lines as JSON objects, one a line, with the run and the event they are about.

Log collectors (Cloud Logging, Loki, …) index a JSON line's fields; a run's story across the
launch, status and api pods is then one query on ``runId`` or on the trace id in
``traceparent``. The fields come from a context (``bound``) set where an event or a run is
known (``handlers.common.event_endpoint`` binds the event's source, id and traceparent), so no
call site has to repeat them, plus any ``extra={...}`` a call passes. ``configure`` is called
at the edges only (``functions/main.py``, ``jobplane up``); ``JOBPLANE_LOG_FORMAT=text``
keeps plain lines for people at a terminal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final

FIELDS: Final = ("runId", "specId", "botId", "eventType", "eventSource", "eventId", "traceparent")
"""Context fields a line carries when they are known."""
FORMATS: Final = ("json", "text")
ENV_FORMAT: Final = "JOBPLANE_LOG_FORMAT"
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_context: ContextVar[dict[str, str]] = ContextVar("jobplane_log_context", default={})  # noqa: B039 - never mutated
_inside: ContextVar[bool] = ContextVar("jobplane_log_bound", default=False)


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Within the block, every line this thread (or task) logs carries ``fields`` (None: left out)."""
    token = _context.set({**_context.get(), **{k: str(v) for k, v in fields.items() if v is not None}})
    inside = _inside.set(True)
    try:
        yield
    finally:
        _inside.reset(inside)
        _context.reset(token)


def bind(**fields: object) -> None:
    """Add ``fields`` to the current context until the enclosing ``bound`` block ends; outside
    one (a handler called directly), nothing: a field must never outlive what it describes."""
    if _inside.get():
        _context.set({**_context.get(), **{k: str(v) for k, v in fields.items() if v is not None}})


def context() -> dict[str, str]:
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", <context fields>, "exception"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_context.get())
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def format_from(env: Mapping[str, str]) -> str:
    """``JOBPLANE_LOG_FORMAT`` (``json`` unless it says ``text``)."""
    fmt = env.get(ENV_FORMAT, "json").strip().lower() or "json"
    return fmt if fmt in FORMATS else "json"


def formatter(fmt: str) -> logging.Formatter:
    """The formatter ``JOBPLANE_LOG_FORMAT`` names (``json``, or ``text`` for people)."""
    return logging.Formatter(TEXT_FORMAT) if fmt == "text" else JsonFormatter()


def configure(fmt: str = "json", *, level: int = logging.INFO, stream: Any = None, keep: bool = False) -> logging.Handler:
    """One handler on the root logger writing ``fmt`` lines to ``stream`` (stderr); an earlier
    handler this function installed is replaced, or with ``keep`` left as it is (the edge that
    configured first wins: ``jobplane up`` before the functions it loads)."""
    root = logging.getLogger()
    mine = [h for h in root.handlers if getattr(h, "_jobplane", False)]
    if keep and mine:
        return mine[0]
    for old in mine:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler._jobplane = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler
