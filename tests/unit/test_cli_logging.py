"""The CLI sets up logging first: plain warnings for people, JSON lines only for `up`, and the
functions a command's plane loads (functions/main.py: logs.configure(keep=True)) keep that."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from jobplane import logs
from jobplane.cli import app


@pytest.fixture(autouse=True)
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_jobplane", False)]


def test_a_command_logs_plain_warnings_and_the_functions_it_loads_keep_that() -> None:
    CliRunner().invoke(app, ["--url", "http://127.0.0.1:9", "specs", "list"])
    (handler,) = _ours()
    assert not isinstance(handler.formatter, logs.JsonFormatter)
    assert logging.getLogger().level == logging.WARNING
    assert logs.configure("json", keep=True) is handler  # what functions/main.py does on load
    assert _ours() == [handler] and logging.getLogger().level == logging.WARNING
