"""Waiting on the embedded plane over its HTTP API, for the plane tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import requests

from jobplane import promotion

if TYPE_CHECKING:
    from jobplane.local.plane import Plane


def api(plane: Plane) -> requests.Session:
    """A session for the plane's HTTP API, carrying ``Authorization: Bearer`` with the token the
    plane keeps in ``{data-dir}/api.token`` when there is one (what the CLI and demo use too)."""
    session = requests.Session()
    token_file = plane.data_dir / "api.token"
    if token_file.exists():
        session.headers["Authorization"] = "Bearer " + token_file.read_text(encoding="utf-8").strip()
    return session


def wait_for(check: Callable[[], Any], *, timeout: float, what: str = "condition") -> Any:
    """``check()``'s first truthy answer, polled every 0.1 s; ``AssertionError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def final_run(plane: Plane, run_id: str, *, timeout: float) -> dict[str, Any]:
    """The run record from ``GET /v1/runs/{run_id}`` once its state is terminal and, for a
    bot's succeeded training or kb-index, its promotion decided (``promotion.settled``: the
    record reads ``succeeded`` a moment before the pointer moves)."""

    session = api(plane)

    def done() -> dict[str, Any] | None:
        response = session.get(f"{plane.url}/v1/runs/{run_id}", timeout=10)
        body = response.json() if response.status_code == 200 else None
        return body if body and promotion.settled(body) else None

    return wait_for(done, timeout=timeout, what=f"run {run_id} to end")  # type: ignore[no-any-return]
