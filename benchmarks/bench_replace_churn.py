"""The embedded plane under ``Replace`` churn: events per second from the first POST until every
event's run is recorded (launched, or superseded), through the broker ingress beside direct
delivery to the launch function, in the same run on the same plane.

Each event is a ``bot.changed`` for one of a few bots, whose training spec is ``Replace``: each
launch supersedes the bot's run before it and deletes (cancels) its Job. The Jobs end at once
without reporting, so the Job a launch cancels has just ended and its supervisor is busy with
its after-exit work (the plane's flush of the broker, then a reconcile pass). A cancel that
waited on that work held a broker worker (and the launch) for the flush's 5 s: 60 events for
6 bots took 25 s instead of under 1 s. Target: through the broker within 0.5x of direct.

    .venv/bin/python benchmarks/bench_replace_churn.py [--events 60] [--bots 6] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import requests  # noqa: E402
from support.specs import TRAINING_EXAMPLES  # noqa: E402

from jobplane import events as ev  # noqa: E402
from jobplane import runs  # noqa: E402
from jobplane.local.plane import Plane  # noqa: E402

LAUNCH_PATH = "/_functions/jobplane-launch"
INGRESS_PATH = "/default/default"


def storm(n: int, bots: int, *, prefix: str) -> list[ev.Event]:
    """``n`` bot.changed events, round-robin over ``bots`` bots."""
    out = []
    for i in range(n):
        bot = f"churn-{i % bots}"
        data = {"botId": bot, "revision": f"{prefix}{i}", "trainingData": {"examples": TRAINING_EXAMPLES}}
        out.append(ev.new_event(ev.BOT_CHANGED, source="/bench", id=f"{prefix}{i}", subject=bot, data=data))
    return out


def session_for(plane: Plane) -> requests.Session:
    session = requests.Session()
    token = plane.data_dir / "api.token"  # the plane's functions need it once auth is on
    if token.exists():
        session.headers["Authorization"] = "Bearer " + token.read_text(encoding="utf-8").strip()
    return session


def drive(plane: Plane, path: str, events: list[ev.Event], clients: int) -> float:
    """POST every event from ``clients`` clients; seconds until each event's run is recorded."""
    local = threading.local()

    def post(event: ev.Event) -> None:
        session = getattr(local, "s", None) or session_for(plane)
        local.s = session
        headers, body = ev.to_http(event)
        session.post(plane.url + path, data=body, headers=headers, timeout=120).raise_for_status()

    ids = [runs.run_id_for(f"train-{e.subject}", source=e.source, event_id=e.id) for e in events]
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, events))
    waiting = set(ids)
    deadline = time.monotonic() + 600
    while waiting and time.monotonic() < deadline:
        waiting = {i for i in waiting if _state(plane, i) in ("", "requested")}
        if waiting:
            time.sleep(0.02)
    if waiting:
        raise SystemExit(f"{len(waiting)} runs never recorded within 600 s")
    return time.perf_counter() - start


def _state(plane: Plane, run_id: str) -> str:
    try:
        return str(runs.get_run(plane.store, run_id)["state"])
    except Exception:  # noqa: BLE001 - not written yet
        return ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=60)
    ap.add_argument("--bots", type=int, default=6)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="jobplane-churn-") as tmp:
        env = {"JOBPLANE_COMMAND": json.dumps([sys.executable, "-c", "pass"])}
        plane = Plane(Path(tmp) / "data", port=0, env=env, launcher_env={"OMP_NUM_THREADS": "1"}).start()
        try:
            print(f"{args.events} bot.changed events for {args.bots} bots (Replace), {args.clients} clients")
            drive(plane, LAUNCH_PATH, storm(args.bots, args.bots, prefix="warm-"), args.clients)  # each bot's spec
            direct = drive(plane, LAUNCH_PATH, storm(args.events, args.bots, prefix="direct-"), args.clients)
            brokered = drive(plane, INGRESS_PATH, storm(args.events, args.bots, prefix="brokered-"), args.clients)
        finally:
            plane.stop()
    base, rate = args.events / direct, args.events / brokered
    print(f"{'direct to launch':<28} {base:8.1f} events/s   drained in {direct:6.2f} s")
    print(f"{'through the broker':<28} {rate:8.1f} events/s   drained in {brokered:6.2f} s")
    print(f"broker/direct throughput under Replace churn: {rate / base:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()
