"""The dashboard's and the login page's scripts, run by Node against a minimal DOM and a canned API
(skipped without Node)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jobplane.handlers import api  # noqa: F401 - the page ships beside the handler that serves it

PAGE = Path(api.__file__).resolve().parents[1] / "static" / "dashboard.html"
HARNESS = Path(__file__).with_name("dashboard_harness.js")
LOGIN_PAGE = PAGE.with_name("login.html")
LOGIN_HARNESS = Path(__file__).with_name("login_harness.js")


NEEDS_NODE = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the page's script")


def run_page(page: Path, harness: Path, tmp_path: Path, *args: str) -> dict[str, Any]:
    [script] = re.findall(r"<script>(.*?)</script>", page.read_text(), flags=re.S)
    (tmp_path / "page.js").write_text(script)
    done = subprocess.run(["node", str(harness), str(tmp_path / "page.js"), *args], capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@NEEDS_NODE
def test_a_logged_out_dashboard_goes_to_the_login_page(tmp_path: Path) -> None:
    seen = run_page(PAGE, HARNESS, tmp_path, "logged-out")
    assert seen["calls"] == ["GET /prefix/v1/specs"]
    assert seen["href"] == "/prefix/login"


@NEEDS_NODE
def test_the_login_page_posts_the_fragments_token_clears_it_and_opens_the_dashboard(tmp_path: Path) -> None:
    seen = run_page(LOGIN_PAGE, LOGIN_HARNESS, tmp_path)
    assert seen["replaced"] == "/prefix/login", "the token leaves the address bar (and history) first"
    assert seen["calls"] == [{"method": "POST", "url": "login", "contentType": "application/json",
                              "body": {"token": "abc123"}}]
    assert seen["opened"] == "./"


@NEEDS_NODE
def test_dashboard_renders_specs_and_runs_with_progress_and_cancels(tmp_path: Path) -> None:
    seen = run_page(PAGE, HARNESS, tmp_path)
    assert seen["specs"] == ["train-a|training|a|@daily (UTC)|Run"]
    assert seen["runs"] == ["train-a-1|train-a|running||train||2026-01-02|Cancel",
                            "train-a-0|train-a|succeeded||done|90.0%|2026-01-01|"]
    assert seen["bar"] == "42%"
    assert seen["nextPoll"] == 1500, "polls fast while a run is active"
    assert seen["openapi"] == "/prefix/openapi.json", "URLs are relative to the page, so a path prefix works"
    assert "POST /prefix/v1/runs/train-a-1:cancel {}" in seen["calls"], "changes send a JSON body"
    assert seen["error"] == seen["errorAfterCancel"] == ""


@NEEDS_NODE
def test_the_dashboards_search_form_posts_the_query_and_lists_the_hits_as_text(tmp_path: Path) -> None:
    seen = run_page(PAGE, HARNESS, tmp_path)
    assert 'POST /prefix/v1/bots/a%20b:search {"query":"lost card","k":5}' in seen["calls"]
    assert seen["search"] == {"prevented": True,
                              "results": ["lost-card (0.812, semantic+lexical): <b>Freeze</b> your card."]}

