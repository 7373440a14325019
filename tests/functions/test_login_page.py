"""The login page's script, run by Node against a minimal DOM and a canned API (skipped without
Node). The dashboard's pages are tested rendered (test_pages.py) and in a browser (tests/plane)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jobplane.handlers import api  # noqa: F401 - the page ships beside the handler that serves it

LOGIN_PAGE = Path(api.__file__).resolve().parents[1] / "static" / "login.html"
LOGIN_HARNESS = Path(__file__).with_name("login_harness.js")


NEEDS_NODE = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the page's script")


def run_page(page: Path, harness: Path, tmp_path: Path, *args: str) -> dict[str, Any]:
    [script] = re.findall(r"<script>(.*?)</script>", page.read_text(), flags=re.S)
    (tmp_path / "page.js").write_text(script)
    done = subprocess.run(["node", str(harness), str(tmp_path / "page.js"), *args], capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@NEEDS_NODE
def test_the_login_page_posts_the_fragments_token_clears_it_and_opens_the_dashboard(tmp_path: Path) -> None:
    seen = run_page(LOGIN_PAGE, LOGIN_HARNESS, tmp_path)
    assert seen["replaced"] == "/prefix/login", "the token leaves the address bar (and history) first"
    assert seen["calls"] == [{"method": "POST", "url": "login", "contentType": "application/json",
                              "body": {"token": "abc123"}}]
    assert seen["opened"] == "./"
