"""The embedded plane with auth on, over real HTTP: its token file, the functions behind it,
the local cron's direct pings, the login URL ``jobplane up`` prints, ``none`` said loudly,
and the CLI finding the token."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from support.plane import api
from support.servers import free_port

from jobplane.cli import Exit, main
from jobplane.local.plane import Plane


def test_the_plane_makes_its_api_token_once_readable_only_by_its_user(tmp_path: Path) -> None:
    with Plane(tmp_path / "data", env={}).start() as plane:
        path = plane.data_dir / "api.token"
        token = path.read_text().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(token) == 64 and int(token, 16) >= 0
        assert requests.get(f"{plane.url}/v1/specs", timeout=10).status_code == 401
        assert api(plane).get(f"{plane.url}/v1/specs", timeout=10).status_code == 200
    with Plane(tmp_path / "data", env={}) as again:
        assert again.settings.api_token == token, "a restart keeps the token (and logged-in browsers)"


def test_the_functions_behind_the_front_door_take_only_the_planes_token(tmp_path: Path) -> None:
    with Plane(tmp_path / "data", env={}).start() as plane:
        url = f"{plane.url}/_functions/jobplane-launch"
        headers = {"Content-Type": "application/json"}
        assert requests.post(url, data=b"{}", headers=headers, timeout=10).status_code == 401
        assert api(plane).post(url, data=b"{}", headers=headers, timeout=10).status_code == 415, "in: not a CloudEvent"


def test_the_local_crons_direct_ping_reaches_the_reconciler_with_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Plane(tmp_path / "data", env={}).start() as plane, caplog.at_level(logging.WARNING):
        assert plane.cron is not None
        plane.cron.run_pending(datetime(2026, 3, 1, 2, 29, 30, tzinfo=UTC))
        fired = plane.cron.run_pending(datetime(2026, 3, 1, 2, 30, 5, tzinfo=UTC))
    assert any(e.source.endswith("/pingsources/jobplane-reconcile") for e in fired), [e.source for e in fired]
    refused = [r.getMessage() for r in caplog.records if "local cron: sending" in r.getMessage()]
    assert not refused


def test_allowed_hosts_add_to_the_planes_loopback_names_its_jobs_call_back_on(tmp_path: Path) -> None:
    with Plane(tmp_path / "data", env={"JOBPLANE_ALLOWED_HOSTS": "jobplane.lan"}).start() as plane:
        http = api(plane)
        assert http.get(f"{plane.url}/v1/specs", headers={"Host": "jobplane.lan"}, timeout=10).status_code == 200
        assert http.get(f"{plane.url}/v1/specs", timeout=10).status_code == 200
        assert http.get(f"{plane.url}/v1/specs", headers={"Host": "evil.example"}, timeout=10).status_code == 403


def test_none_mode_serves_the_api_without_a_token(tmp_path: Path) -> None:
    with Plane(tmp_path / "data", env={"JOBPLANE_AUTH": "none"}).start() as plane:
        assert requests.get(f"{plane.url}/v1/specs", timeout=10).status_code == 200
        assert requests.get(f"{plane.url}/v1/specs", headers={"Host": "evil.example"}, timeout=10).status_code == 403


def test_the_cli_finds_the_token_in_the_data_dir_or_jobplane_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBPLANE_TOKEN", raising=False)
    with Plane(tmp_path / "data", env={}).start() as plane:
        assert main(["specs", "--url", plane.url, "--data-dir", str(plane.data_dir)]) == 0
        assert main(["specs", "--url", plane.url, "--data-dir", str(tmp_path / "elsewhere")]) == Exit.AUTH
        assert "HTTP 401" in capsys.readouterr().err
        monkeypatch.setenv("JOBPLANE_TOKEN", plane.settings.api_token)
        assert main(["specs", "--url", plane.url, "--data-dir", str(tmp_path / "elsewhere")]) == 0
    assert "retrain-all" in capsys.readouterr().out


def _serve(args: list[str], env: dict[str, str]) -> tuple[str, str]:
    """Run ``jobplane up`` until it answers, then stop it; (stdout, stderr)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "jobplane.cli", "up", "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except requests.RequestException:  # refused, or too slow under load: not up yet
                time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None


@pytest.mark.slow
def test_up_prints_a_login_url_carrying_the_token_in_its_fragment(tmp_path: Path) -> None:
    out, _ = _serve(["--data-dir", str(tmp_path / "data")], {})
    token = (tmp_path / "data" / "api.token").read_text().strip()
    assert f"/login#token={token}" in out and "?token=" not in out


@pytest.mark.slow
def test_up_without_authentication_says_so_loudly(tmp_path: Path) -> None:
    _, err = _serve(["--data-dir", str(tmp_path / "data")], {"JOBPLANE_AUTH": "none"})
    assert "WARNING: JOBPLANE_AUTH=none" in err and "WITHOUT ANY AUTHENTICATION" in err
