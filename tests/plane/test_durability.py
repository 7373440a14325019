"""Accepted means kept: events the ingress answered 202 survive a killed or stopped plane, and
outages longer than the broker's retry budget end in dead letters that a replay turns into
runs, each made once. The whole embedded plane over real HTTP, the stand-in trainer as Jobs."""

from __future__ import annotations

import json
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from support.plane import wait_for
from support.servers import free_port
from support.specs import TRAINING_EXAMPLES
from support.stores import CountingStore

from jobplane import events as ev
from jobplane import runs
from jobplane.cli import main
from jobplane.errors import UnavailableError
from jobplane.local.plane import BROKER_DB, Plane, default_eventing_dir

STANDIN = Path(__file__).with_name("standin_trainer.py")
REPO = Path(__file__).resolve().parents[2]
WAIT = 90.0
FAST_BROKER = """apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
spec:
  delivery:
    retry: 2
    backoffPolicy: linear
    backoffDelay: PT0.05S
    deadLetterSink:
      ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: jobplane-deadletter}
"""


def standin_env(mode: str = "succeed") -> dict[str, str]:
    return {"JOBPLANE_COMMAND": json.dumps([sys.executable, str(STANDIN), mode])}


def bot_changed(bot: str, *, id: str | None = None) -> ev.Event:
    data = {"botId": bot, "revision": "r1", "trainingData": {"examples": TRAINING_EXAMPLES}}
    return ev.new_event(ev.BOT_CHANGED, source="/platform/bots", id=id or f"chg-{bot}", subject=bot, data=data)


def post(url: str, event: ev.Event) -> int:
    headers, body = ev.to_http(event)
    return requests.post(url + "/default/default", data=body, headers=headers, timeout=10).status_code


def session(data_dir: Path) -> requests.Session:
    """The plane's API with its token, when it keeps one (as ``support.plane.api``)."""
    s = requests.Session()
    token = data_dir / "api.token"
    if token.exists():
        s.headers["Authorization"] = "Bearer " + token.read_text(encoding="utf-8").strip()
    return s


def runs_of(url: str, data_dir: Path, bot: str) -> list[dict[str, Any]]:
    r = session(data_dir).get(f"{url}/v1/specs/train-{bot}/runs?limit=10", timeout=10)
    return list(r.json()["runs"]) if r.status_code == 200 else []


def journal_rows(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / BROKER_DB) as db:
        return int(db.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'").fetchone()[0])


def fast_eventing(tmp_path: Path) -> Path:
    """The repo's eventing/ with a Broker that retries twice, 50 ms apart (the suite stays fast)."""
    target = tmp_path / "eventing"
    shutil.copytree(default_eventing_dir(), target)
    (target / "broker.yaml").write_text(FAST_BROKER)
    return target


# --- the plane as `jobplane up` in a subprocess -----------------------------------------------


class Up:
    """``jobplane up`` on a fixed port and data dir; ``start`` again after a kill."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None
        self.log = data_dir.parent / "up.log"

    def start(self) -> Up:
        import os

        env = {**os.environ, **standin_env(), "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
        out = open(self.log, "a")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobplane.cli", "up", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=env,
        )
        wait_for(self._healthy, timeout=60, what="jobplane up to answer /healthz")
        return self

    def _healthy(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def signal(self, signum: int) -> int:
        """Send ``signum``; the exit status (on a hang, every thread's stack goes to the log)."""
        assert self.proc is not None
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: the stacks, into the log
            self.proc.wait(timeout=30)
            raise AssertionError(f"jobplane up did not stop within 60 s:\n{self.log.read_text()[-8000:]}") from None

    def broker_idle(self) -> bool:
        try:
            stats = requests.get(self.url + "/healthz", timeout=10).json()["broker"]
        except requests.RequestException:
            return False
        return stats["pending"] == 0 and stats["deadLettering"] == 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    plane = Up(tmp_path / "data", free_port())
    try:
        yield plane
    finally:
        plane.stop()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["SIGKILL", "SIGTERM", "Ctrl-C"])
def test_every_event_accepted_before_the_plane_stops_has_exactly_one_run_after_a_restart(up: Up, signum: int) -> None:
    bots = [f"durable-{i}" for i in range(24)]
    up.start()
    with ThreadPoolExecutor(8) as senders:  # at once, so deliveries are still due when the signal comes
        assert list(senders.map(lambda bot: post(up.url, bot_changed(bot)), bots)) == [202] * len(bots)
    code = up.signal(signum)

    assert code == (-signal.SIGKILL if signum == signal.SIGKILL else 0), up.log.read_text()[-3000:]
    assert journal_rows(up.data_dir) > 0, "every event was delivered before the stop: the test proved nothing"
    up.start()
    wait_for(up.broker_idle, timeout=WAIT, what="the restarted plane to deliver what the last one kept")
    made = {bot: len(runs_of(up.url, up.data_dir, bot)) for bot in bots}
    assert made == {bot: 1 for bot in bots}
    assert "LocalLauncher is closed" not in up.log.read_text()


@pytest.mark.slow
def test_sigterm_stops_taking_events_with_503_and_retry_after(up: Up) -> None:
    up.start()
    assert up.proc is not None
    answers: list[requests.Response] = []
    stop = threading.Event()

    def keep_posting() -> None:
        while not stop.is_set():
            headers, body = ev.to_http(bot_changed("late", id=f"late-{len(answers)}"))
            try:
                answers.append(requests.post(up.url + "/default/default", data=body, headers=headers, timeout=5))
            except requests.ConnectionError:
                return

    for bot in ("slow-a", "slow-b", "slow-c", "slow-d"):
        post(up.url, bot_changed(bot))
    poster = threading.Thread(target=keep_posting)
    poster.start()
    up.proc.send_signal(signal.SIGTERM)
    up.proc.wait(timeout=60)
    stop.set()
    poster.join(timeout=10)
    statuses = [r.status_code for r in answers]
    refused = [r for r in answers if r.status_code == 503]
    assert set(statuses) <= {202, 503} and refused, statuses
    assert statuses == sorted(statuses), "a 202 after a 503: events were taken after the stop began"
    assert int(refused[0].headers["Retry-After"]) > 0 and refused[0].json()["error"]["code"] == "unavailable"


# --- a store that refuses writes for longer than the retry budget -----------------------------


class RefusingStore(CountingStore):
    """The plane's store, refusing every write while ``down`` (but those under ``spare``)."""

    def __init__(self, inner: Any, *, spare: str | None = None) -> None:
        super().__init__(inner)
        self.down = False
        self.spare = spare
        self.refused = 0

    def write(self, key: str, data: bytes, **kw: Any) -> int:
        if self.down and not (self.spare and key.startswith(self.spare)):
            self.refused += 1
            raise UnavailableError(f"store refuses writes (test outage): {key}")
        return super().write(key, data, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("spare", [None, "deadletter/"], ids=["dead-rows-in-the-journal", "dead-letters-in-the-store"])
def test_an_outage_longer_than_the_retry_budget_is_replayed_into_one_run_per_event(
    tmp_path: Path, spare: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    plane = Plane(data_dir, port=0, env=standin_env(), eventing_dir=fast_eventing(tmp_path),
                  launcher_env={"OMP_NUM_THREADS": "1"})
    store = RefusingStore(plane.store, spare=spare)
    plane.store = plane.runtime.store = store
    bots = ["outage-a", "outage-b", "outage-c"]
    with plane.start():
        store.down = True
        assert [post(plane.url, bot_changed(bot)) for bot in bots] == [202] * 3
        assert plane.broker is not None and plane.broker.flush(timeout=WAIT)
        assert store.refused > 0 and all(runs_of(plane.url, data_dir, bot) == [] for bot in bots)
        where = "broker" if spare is None else "store"
        listed = session(data_dir).get(plane.url + "/v1/deadletters", timeout=10).json()["deadLetters"]
        assert sorted(d["eventId"] for d in listed if d["where"] == where) == [f"chg-{b}" for b in bots]

        store.down = False
        assert main(["deadletter", "replay", "--url", plane.url, "--data-dir", str(data_dir)]) == 0
        assert "replayed 3 dead letter(s)" in capsys.readouterr().out
        wait_for(lambda: all(runs_of(plane.url, data_dir, b) for b in bots), timeout=WAIT, what="the replayed runs")
        assert plane.broker.flush(timeout=WAIT)
        assert main(["deadletter", "replay", "--url", plane.url, "--data-dir", str(data_dir)]) == 0
        assert "replayed 0 dead letter(s)" in capsys.readouterr().out  # not twice
        assert main(["deadletter", "list", "--url", plane.url, "--data-dir", str(data_dir)]) == 0
        listing = capsys.readouterr().out
        for bot in bots:
            (run,) = runs_of(plane.url, data_dir, bot)
            assert run["trigger"]["id"] == f"chg-{bot}"
    assert ("replayed 20" in listing) == (spare is not None)  # stored ones stay listed, marked replayed
    assert not [row for row in listing.splitlines()[2:] if re.search(r"\bdead\b", row)]  # under the table's header
