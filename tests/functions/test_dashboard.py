"""The dashboard's script, run by Node against a minimal DOM and a canned API (skipped without Node)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from jobplane.handlers import api  # noqa: F401 - the page ships beside the handler that serves it

PAGE = Path(api.__file__).resolve().parents[1] / "static" / "dashboard.html"
HARNESS = Path(__file__).with_name("dashboard_harness.js")


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the page's script")
def test_dashboard_renders_specs_and_runs_with_progress_and_cancels(tmp_path: Path) -> None:
    [script] = re.findall(r"<script>(.*?)</script>", PAGE.read_text(), flags=re.S)
    (tmp_path / "page.js").write_text(script)
    done = subprocess.run(["node", str(HARNESS), str(tmp_path / "page.js")], capture_output=True, text=True,
                          timeout=60, check=True)
    seen = json.loads(done.stdout)
    assert seen["specs"] == ["train-a|training|a|@daily (UTC)|Run"]
    assert seen["runs"] == ["train-a-1|train-a|running||train||2026-01-02|Cancel",
                            "train-a-0|train-a|succeeded||done|90.0%|2026-01-01|"]
    assert seen["bar"] == "42%"
    assert seen["nextPoll"] == 1500, "polls fast while a run is active"
    assert seen["openapi"] == "/prefix/openapi.json", "URLs are relative to the page, so a path prefix works"
    assert "POST /prefix/v1/runs/train-a-1:cancel" in seen["calls"]
    assert seen["error"] == seen["errorAfterCancel"] == ""
