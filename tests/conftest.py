"""Fixtures shared by every test directory (append yours below; keep each one small)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def restore_environ() -> Iterator[None]:
    """functions-framework's ``create_app`` writes FUNCTION_TARGET/FUNCTION_SIGNATURE_TYPE into
    ``os.environ``; put the environment back after every test so nothing leaks between them."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI (run in-process by typer's CliRunner) and functions/main.py set up the root
    logger; undo it after every test, so neither a handler left writing to a CliRunner's closed
    stream nor a changed level leaks into the next test (pytest's own handlers are left alone)."""
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in before
                    and (getattr(h, "_jobplane", False) or type(h) is logging.StreamHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    from support.servers import free_port as _free_port

    return _free_port()


# A real local GCS server (fake-gcs-server), started on first use: ``gcs_server``, ``gcs_store_url``.
from support.gcs import gcs_server, gcs_store_url  # noqa: E402,F401
