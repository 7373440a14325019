"""The CLI's exit codes: one per kind of outcome, from the API's status or a run's end (pure)."""

from __future__ import annotations

import pytest

from jobplane.cli.exits import EPILOG, Exit, for_state, for_status


@pytest.mark.parametrize(("status", "code"), [
    (400, Exit.USAGE), (409, Exit.USAGE), (412, Exit.USAGE), (413, Exit.USAGE), (415, Exit.USAGE),
    (401, Exit.AUTH), (403, Exit.AUTH), (404, Exit.NOT_FOUND),
    (429, Exit.UNAVAILABLE), (500, Exit.UNAVAILABLE), (501, Exit.UNAVAILABLE), (503, Exit.UNAVAILABLE),
])
def test_an_http_error_maps_to_the_code_of_its_kind(status: int, code: Exit) -> None:
    assert for_status(status) == code


@pytest.mark.parametrize(("state", "reason", "code"), [
    ("succeeded", None, Exit.OK), ("skipped", "CacheHit", Exit.OK),
    ("failed", "BackoffLimitExceeded", Exit.RUN_FAILED),
    ("cancelled", None, Exit.RUN_STOPPED), ("superseded", None, Exit.RUN_STOPPED),
    ("skipped", "ConcurrencyForbid: run x is still active", Exit.RUN_STOPPED),
])
def test_a_followed_run_exits_by_how_it_ended(state: str, reason: str | None, code: Exit) -> None:
    assert for_state(state, reason) == code


def test_every_code_is_distinct_and_listed_in_the_help() -> None:
    assert len({int(c) for c in Exit}) == len(Exit)
    for code in Exit:
        assert f"{int(code)} " in EPILOG
