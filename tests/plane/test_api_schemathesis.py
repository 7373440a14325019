"""schemathesis against the live embedded plane (``schemathesis_contract.py``), run in a fresh
interpreter: hypothesis cannot draw floats in a process where a library built with fast-math
has flushed subnormals, as the search tests' libraries do when the whole suite runs in one.

``CONTRACT_EXAMPLES`` (default 8 per operation; ``make contract``: 200) passes through.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is not installed (the dev extra has it)")

CONTRACT = Path(__file__).with_name("schemathesis_contract.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_live_plane_keeps_its_openapi_contract_under_schemathesis() -> None:
    examples = int(os.environ.get("CONTRACT_EXAMPLES", "8"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CONTRACT)],
        cwd=ROOT, env={**os.environ, "CONTRACT_EXAMPLES": str(examples)},
        capture_output=True, text=True, timeout=60 + 30 * examples,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1], done.stdout[-2000:]
