"""``jobplane demo``: the main job end to end, as a user would drive it, then exit.

Starts the embedded plane, posts a ``dev.jobplane.bot.changed`` CloudEvent for the bundled
sample bot to the broker ingress (binary mode, real HTTP), follows the run through the HTTP API
with a progress bar, prints the model's figures and confusion matrix, classifies a few new
utterances through the API, and says where everything landed. Exit 0 only when the run
succeeded and the model answered.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final, TextIO

import requests

from . import events as ev
from . import runs
from .errors import JobplaneError
from .store import resolve_uri

DEMO_SOURCE: Final = "/jobplane/demo"
POLL_SECONDS: Final = 0.2
BAR_WIDTH: Final = 30
TARGET_SECONDS: Final = 15.0


class DemoFailed(Exception):
    """The demo cannot go on; the message says why."""


def sample_bot() -> dict[str, Any]:
    return json.loads(resources.files("jobplane").joinpath("data/sample_bot.json").read_text())  # type: ignore[no-any-return]


def run_demo(
    *, data_dir: Path, port: int = 0, bot_path: Path | None = None, timeout: float = 300.0,
    eventing_dir: Path | None = None, out: TextIO = sys.stdout,
) -> int:
    from .local.plane import Plane

    bot = json.loads(bot_path.read_text()) if bot_path else sample_bot()
    try:
        with Plane(data_dir, port=port, eventing_dir=eventing_dir) as plane:
            say(out, f"jobplane embedded plane up on {plane.url} (data in {plane.data_dir})")
            return _drive(plane, bot, timeout=timeout, out=out)
    except (DemoFailed, JobplaneError, requests.RequestException) as e:
        say(out, f"\ndemo failed: {getattr(e, 'message', None) or e}")
        return 1


def _drive(plane: Any, bot: Mapping[str, Any], *, timeout: float, out: TextIO) -> int:
    event = bot_changed_event(bot)
    spec_id = f"train-{bot['botId']}"
    run_id = runs.run_id_for(spec_id, source=event.source, event_id=event.id)
    say(out, f"bot '{bot['botId']}': {len(bot['examples'])} utterances, "
             f"{len({e['intent'] for e in bot['examples']})} intents")
    started = time.monotonic()
    post_event(f"{plane.url}/default/default", event)
    say(out, f"posted {ev.BOT_CHANGED} (id {event.id}) to the broker → run {run_id}")
    session = api_session(plane.settings.api_token)
    run = follow(plane.url, run_id, timeout=timeout, out=out, rejected=lambda: rejection(plane.store, event),
                 session=session)
    wall = time.monotonic() - started
    if run["state"] != "succeeded":
        raise DemoFailed(f"run {run_id} ended {run['state']}: {run.get('reason')} {run.get('message') or ''}".strip())
    report(plane, run, event=event, wall=wall, out=out)
    classify(plane.url, str(bot["botId"]), bot.get("newUtterances") or [], out=out, session=session)
    where(plane, run, out=out)
    return 0


def bot_changed_event(bot: Mapping[str, Any]) -> ev.Event:
    examples = [{k: e[k] for k in ("text", "intent", "entities") if k in e} for e in bot["examples"]]
    digest = hashlib.sha256(json.dumps(examples, sort_keys=True).encode()).hexdigest()[:8]
    revision = f"{bot.get('revision', 'r1')}-{digest}"  # an edited bot file is a new revision
    data = {"botId": bot["botId"], "revision": revision, "trainingData": {"examples": examples}}
    return ev.new_event(ev.BOT_CHANGED, source=DEMO_SOURCE, subject=str(bot["botId"]), data=data,
                        id=str(uuid.uuid4()), extensions={"requestedby": "jobplane-demo"})


def api_session(token: str) -> requests.Session:
    """A session for the plane's HTTP API: ``Authorization: Bearer`` with the plane's token
    (``{data-dir}/api.token``); the broker ingress needs none."""
    session = requests.Session()
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    return session


def post_event(url: str, event: ev.Event) -> None:
    headers, body = ev.to_http(event)
    response = requests.post(url, data=body, headers=headers, timeout=30)
    if response.status_code >= 300:
        raise DemoFailed(f"the broker refused the event: HTTP {response.status_code}: {response.text[:300]}")


# --- following the run ----------------------------------------------------------------------


def rejection(store: Any, event: ev.Event) -> str | None:
    """Why the plane dead-lettered ``event`` (launch refused it), or None."""
    from .handlers.deadletter import dead_letter_key

    try:
        record = json.loads(store.read(dead_letter_key(event, now=datetime.now(UTC))).data)
    except (JobplaneError, ValueError):
        return None
    error = record.get("error") or {}
    return f"HTTP {error.get('code')} from {error.get('destination')}: {error.get('response')}"


def follow(
    url: str, run_id: str, *, timeout: float, out: TextIO, rejected: Callable[[], str | None] = lambda: None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Poll ``GET /v1/runs/{id}`` until the run is terminal, drawing a progress bar; fail
    early when the event was dead-lettered instead of starting a run."""
    http = session or requests.Session()
    bar = ProgressBar(out)
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = http.get(f"{url}/v1/runs/{run_id}", timeout=10)
        if response.status_code == 200:
            run = response.json()
            bar.update(int(run.get("progress") or 0), str(run.get("phase") or run.get("state")), run.get("message"))
            if run.get("state") in runs.TERMINAL:
                bar.done()
                return run
        elif response.status_code != 404:
            raise DemoFailed(f"GET /v1/runs/{run_id}: HTTP {response.status_code}: {response.text[:300]}")
        elif (why := rejected()) is not None:
            raise DemoFailed(f"the plane rejected the event (dead-lettered): {why}")
        time.sleep(POLL_SECONDS)
    bar.done()
    raise DemoFailed(f"run {run_id} did not finish within {timeout:.0f} s (last state {run.get('state', 'unknown')})")


class ProgressBar:
    """``[#####.....]  45% phase: message`` redrawn in place on a terminal; elsewhere a line
    per phase or per 10 %, so logs stay short."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.last: tuple[int, str] = (-1, "")

    def update(self, percent: int, phase: str, message: object = None) -> None:
        percent = max(0, min(100, percent))
        if not self.tty and phase == self.last[1] and percent // 10 == self.last[0] // 10:
            return
        if self.tty and (percent, phase) == self.last:
            return
        self.last = (percent, phase)
        filled = BAR_WIDTH * percent // 100
        line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:3d}% {phase}"
        line += f": {message}" if message else ""
        if self.tty:
            self.out.write("\r\x1b[K" + line[:110])
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


# --- results ----------------------------------------------------------------------------------


def report(plane: Any, run: Mapping[str, Any], *, event: ev.Event, wall: float, out: TextIO) -> None:
    metrics = run.get("metrics") or {}
    say(out, "\nrun succeeded")
    for key in ("accuracy", "macro_f1", "entity_f1"):
        if isinstance(metrics.get(key), int | float):
            say(out, f"  {key:<10} {metrics[key]:.3f}")
    matrix = confusion_matrix(plane.store, run)
    if matrix:
        say(out, "\nconfusion matrix (rows: true intent, columns: predicted)")
        say(out, format_matrix(matrix["labels"], matrix["matrix"]))
    stamps = timeline(event, run)
    elapsed = stamps["finished"] if "finished" in stamps else wall
    verdict = "within" if elapsed < TARGET_SECONDS else "over"
    say(out, f"\nbot.changed → trained model: {elapsed:.1f} s ({verdict} the {TARGET_SECONDS:.0f} s target)")
    if {"created", "started", "finished"} <= stamps.keys():
        say(out, f"  run recorded and Job launched after {stamps['created']:.1f} s, trainer's first report "
                 f"at {stamps['started']:.1f} s, training and evaluation {stamps['finished'] - stamps['started']:.1f} s")


def timeline(event: ev.Event, run: Mapping[str, Any]) -> dict[str, float]:
    """Seconds from the event's ``time`` to the run's ``createdAt``/``startedAt``/``finishedAt``."""
    try:
        start = runs.parse_rfc3339(str(event.time))
    except ValueError:
        return {}
    out: dict[str, float] = {}
    for name, key in (("created", "createdAt"), ("started", "startedAt"), ("finished", "finishedAt")):
        try:
            out[name] = (runs.parse_rfc3339(str(run[key])) - start).total_seconds()
        except (KeyError, ValueError):
            continue
    return out



def confusion_matrix(store: Any, run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The run's confusion matrix artifact (``{"labels", "matrix"}``), if it has one."""
    uri = (run.get("artifacts") or {}).get("confusionMatrix")
    if not uri:
        return None
    try:
        where, key = resolve_uri(str(uri), store=store)
        found = json.loads(where.read(key).data)
    except (JobplaneError, ValueError):
        return None
    return found if isinstance(found, dict) and "matrix" in found else None


def format_matrix(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """A plain-text table; columns are numbered to keep it narrow, with a legend."""
    width = max(len(label) for label in labels)
    cell = max(3, len(str(max((max(row) for row in matrix), default=0))) + 1)
    head = " " * (width + 2) + "".join(f"{i + 1:>{cell}}" for i in range(len(labels)))
    rows = [f"{i + 1:>2} {label:<{width}}" + "".join(f"{v if v else '.':>{cell}}" for v in row)
            for i, (label, row) in enumerate(zip(labels, matrix))]
    return "\n".join([head, *rows])


def classify(
    url: str, bot_id: str, texts: Sequence[str], *, out: TextIO, wait: float = 10.0,
    session: requests.Session | None = None,
) -> None:
    """``POST /v1/bots/{botId}:predict`` for each text (waits briefly for the promoted model)."""
    if not texts:
        return
    say(out, "\nnew utterances, classified by the trained model:")
    http = session or requests.Session()
    deadline = time.monotonic() + wait
    for text in texts:
        while True:
            response = http.post(f"{url}/v1/bots/{bot_id}:predict", json={"text": text}, timeout=10)
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
        if response.status_code != 200:
            raise DemoFailed(f"predict: HTTP {response.status_code}: {response.text[:300]}")
        say(out, "  " + describe_prediction(text, response.json()))


def describe_prediction(text: str, answer: Mapping[str, Any]) -> str:
    entities = ", ".join(f"{e.get('entity')}={e.get('value')!r}" for e in answer.get("entities") or [])
    confidence = answer.get("confidence")
    shown = f"{confidence:.2f}" if isinstance(confidence, int | float) else "?"
    return f"{text!r:<55} → {answer.get('intent')} ({shown}){'  [' + entities + ']' if entities else ''}"


def where(plane: Any, run: Mapping[str, Any], *, out: TextIO) -> None:
    store_url = plane.settings.store_url
    say(out, f"\nwhere the data landed (store {store_url}):")
    say(out, f"  run record         runs/{run['id']}/run.json")
    for name, uri in sorted((run.get("artifacts") or {}).items()):
        say(out, f"  {name:<18} {uri}")
    say(out, f"  training data      bots/{run.get('botId')}/data/")
    say(out, f"  model pointer      bots/{run.get('botId')}/model.json")
    say(out, f"  Job logs           {plane.data_dir / 'jobs' / str(run['id'])}/")


def say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()
