"""What the dashboard's pages show, read from the store and shaped for the templates.

The pages are rendered on the server (``handlers/pages.py``), so their lists work without
JavaScript; the script only keeps progress live and calls predict/search. Everything here is
data for Jinja's autoescaping templates: no HTML is built in Python. The heatmap and the
sparkline are numbers (colours, coordinates) computed here, drawn by the templates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from . import conventions as c
from . import cronexpr, runs
from .errors import NotFoundError
from .store.base import DataTooLargeError, ObjectStore, read_capped

SPECS_PER_PAGE: Final = 20
RUNS_PER_SPEC: Final = 10
NEXT_FIRES: Final = 3
MAX_EVENTS: Final = 300
"""The newest progress events a run page lists (a long run reports a few hundred at most)."""
BOT_HISTORY: Final = 30
MAX_FIGURES_BYTES: Final = 4 * 1024 * 1024
"""metrics.json with a large bot's per-intent figures and matrix stays far below this."""
READERS: Final = 16
"""Store reads in flight for one page: a GCS read takes tens of milliseconds, and a page makes
a few hundred (each spec's runs, each progress event)."""

T = TypeVar("T")
R = TypeVar("R")


def _map(fn: Callable[[T], R], items: Iterable[T], *, readers: int = READERS) -> list[R]:
    """``[fn(item) …]`` in order, ``readers`` at a time (1: one after another)."""
    items = list(items)
    if readers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(readers, len(items)), thread_name_prefix="dashboard") as pool:
        return list(pool.map(fn, items))


# --- the overview --------------------------------------------------------------------------------


def overview(store: ObjectStore, *, now: datetime, page_token: str = "", readers: int = READERS) -> dict[str, Any]:
    """A page of specs (by id), each with its schedule, next fire times, last run and last
    ``RUNS_PER_SPEC`` runs; ``nextPageToken`` when more specs follow."""
    after = c.spec_key(page_token) if page_token else ""
    keys = list(store.list("specs/", start_after=after, limit=SPECS_PER_PAGE + 1))
    found = _map(lambda key: _spec_row(store, key, now=now), keys[:SPECS_PER_PAGE], readers=readers)
    rows = [row for row in found if row]
    more = len(keys) > SPECS_PER_PAGE
    return {"specs": rows, "nextPageToken": _spec_id_of(keys[SPECS_PER_PAGE - 1]) if more else None,
            "active": any(not runs.is_terminal(r) for row in rows for r in row["runs"])}


def _spec_id_of(key: str) -> str:
    return key[len("specs/"):-len(".json")]


def _spec_row(store: ObjectStore, key: str, *, now: datetime) -> dict[str, Any] | None:
    try:
        spec = json.loads(store.read(key).data)
    except NotFoundError:
        return None  # deleted between list and read
    recent = runs.list_runs(store, spec_id=spec["id"], limit=RUNS_PER_SPEC)
    return {"spec": spec, "botId": (spec.get("params") or {}).get("botId"), "nextFires": next_fires(spec, now=now),
            "last": recent[0] if recent else None, "runs": recent}


def next_fires(spec: Mapping[str, Any], *, now: datetime, count: int = NEXT_FIRES) -> list[dict[str, str]]:
    """The spec's next ``count`` fire times, ``{"iso", "text"}`` in the schedule's zone
    (``"Mon 07 Dec 03:30"``); none without a schedule."""
    schedule = spec.get("schedule")
    if not schedule:
        return []
    out: list[dict[str, str]] = []
    moment = now
    try:
        for _ in range(count):
            moment = cronexpr.next_fire(str(schedule), spec.get("timezone"), moment)
            out.append({"iso": moment.isoformat(timespec="minutes"), "text": moment.strftime("%a %d %b %H:%M")})
    except cronexpr.CronError:
        pass  # validated when stored; a schedule that never fires lists no times
    return out


def stamp(value: Any) -> str:
    """A record's RFC 3339 time as ``2026-12-06 05:17:02 UTC`` (anything else as it is)."""
    try:
        return runs.parse_rfc3339(str(value)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return "" if value is None else str(value)


# --- a run -----------------------------------------------------------------------------------------


def run_page(store: ObjectStore, run_id: str, *, readers: int = READERS) -> dict[str, Any]:
    """The run record, its figures (metrics.json), confusion heatmap, event log and artifact
    names; ``NotFoundError`` when there is no such run."""
    run = runs.get_run(store, run_id)
    figures = _figures(store, run_id)
    matrix = _confusion(store, run_id, figures)
    return {
        "run": run,
        "timings": timings(run),
        "intents": _per_intent(figures),
        "entities": _entities(figures),
        "figures": figures,
        "heatmap": heatmap(matrix["labels"], matrix["matrix"]) if matrix else None,
        "events": events(store, run_id, readers=readers),
        "artifacts": artifact_names(store, run_id),
    }


def _read_json(store: ObjectStore, key: str) -> Any:
    try:
        return json.loads(read_capped(store, key, MAX_FIGURES_BYTES).data)
    except (NotFoundError, DataTooLargeError, ValueError):
        return None


def _figures(store: ObjectStore, run_id: str) -> dict[str, Any]:
    found = _read_json(store, c.run_artifacts_prefix(run_id) + "metrics.json")
    return found if isinstance(found, dict) else {}


def _confusion(store: ObjectStore, run_id: str, figures: Mapping[str, Any]) -> dict[str, Any] | None:
    found = figures.get("confusion_matrix") or _read_json(store, c.run_artifacts_prefix(run_id) + "confusion_matrix.json")
    ok = isinstance(found, dict) and isinstance(found.get("labels"), list) and isinstance(found.get("matrix"), list)
    return found if ok else None


def _per_intent(figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{"intent", "precision", "recall", "f1", "support"}]`` by intent name."""
    report = figures.get("intents") if isinstance(figures.get("intents"), dict) else figures
    per = report.get("per_intent") if isinstance(report, dict) else None
    if not isinstance(per, dict):
        return []
    return [{"intent": name, **values} for name, values in sorted(per.items()) if isinstance(values, dict)]


def _entities(figures: Mapping[str, Any]) -> dict[str, Any] | None:
    """Micro precision/recall/F1 over entities and the per-type rows, if the model tags."""
    ents = figures.get("entities")
    if not isinstance(ents, dict) or "f1" not in ents:
        return None
    per = ents.get("per_entity")
    per = per if isinstance(per, dict) else {}
    return {"overall": {k: ents.get(k) for k in ("precision", "recall", "f1", "support")},
            "types": [{"entity": name, **values} for name, values in sorted(per.items()) if isinstance(values, dict)]}


def timings(run: Mapping[str, Any]) -> dict[str, float | None]:
    """Seconds queued (created → started) and running (started → finished, or so far: None)."""
    def between(start: Any, end: Any) -> float | None:
        try:
            return round((runs.parse_rfc3339(str(end)) - runs.parse_rfc3339(str(start))).total_seconds(), 1)
        except ValueError:
            return None

    started, finished = run.get("startedAt"), run.get("finishedAt")
    return {"waited": between(run.get("createdAt"), started) if started else None,
            "ran": between(started, finished) if started and finished else None,
            "total": between(run.get("createdAt"), finished) if finished else None}


def events(store: ObjectStore, run_id: str, *, readers: int = READERS) -> list[dict[str, Any]]:
    """The run's newest ``MAX_EVENTS`` callbacks, oldest first: time, type, progress, phase, message."""
    prefix = c.run_events_prefix(run_id)
    keys = list(store.list(prefix))[-MAX_EVENTS:]
    out = []
    for record in _map(lambda key: _read_json(store, key), keys, readers=readers):
        if not isinstance(record, dict):
            continue
        data = record.get("data")
        data = data if isinstance(data, dict) else {}
        out.append({"time": record.get("time") or record.get("receivedAt"), "type": str(record.get("type") or ""),
                    "progress": data.get("progress"), "phase": data.get("phase"),
                    "message": data.get("message") or data.get("reason")})
    return out


def artifact_names(store: ObjectStore, run_id: str) -> list[str]:
    prefix = c.run_artifacts_prefix(run_id)
    return [key[len(prefix):] for key in store.list(prefix)]


def heatmap(labels: Sequence[Any], matrix: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Rows of cells ``{"count", "share", "colour"}``: each row (a true intent) normalised by its
    total, white (0) to dark blue (1); ``labels`` name rows and columns (predicted)."""
    rows = []
    for i, (label, counts) in enumerate(zip(labels, matrix)):
        total = sum(int(n) for n in counts)
        cells = []
        for j, n in enumerate(counts):
            share = int(n) / total if total else 0.0
            cells.append({"count": int(n), "share": round(share, 3), "colour": _blue(share),
                          "dark": share ** 0.5 > 0.55, "diag": i == j})
        rows.append({"label": str(label), "total": total, "cells": cells})
    return {"labels": [str(label) for label in labels], "rows": rows}


def _blue(share: float) -> str:
    s = max(0.0, min(1.0, share)) ** 0.5  # lift small confusions into view (as the trainer's PNG)
    return f"rgb({int(255 - 247 * s)},{int(255 - 207 * s)},{int(255 - 148 * s)})"


# --- a bot ------------------------------------------------------------------------------------------


def bot_page(store: ObjectStore, bot_id: str) -> dict[str, Any]:
    """The bot's promoted model pointer and its training history (newest first), with the
    accuracy sparkline of its succeeded runs."""
    model = _read_json(store, c.bot_model_key(bot_id))
    history = runs.list_runs(store, bot_id=bot_id, limit=BOT_HISTORY, job_type="training")
    if model is None and not history:
        raise NotFoundError(f"no bot {bot_id!r}: no promoted model and no training runs")
    points = [(r["id"], float(r["metrics"]["accuracy"])) for r in reversed(history)
              if r.get("state") == "succeeded" and isinstance((r.get("metrics") or {}).get("accuracy"), int | float)]
    return {"botId": bot_id, "model": model if isinstance(model, dict) else None, "history": history,
            "sparkline": sparkline([value for _, value in points]), "points": points}


def sparkline(values: Sequence[float], *, width: int = 240, height: int = 48, pad: int = 4) -> dict[str, Any] | None:
    """SVG polyline coordinates for ``values`` in [0, 1] (oldest first), with the last point."""
    if not values:
        return None
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    coords = [(round(pad + i * step, 1), round(height - pad - max(0.0, min(1.0, v)) * (height - 2 * pad), 1))
              for i, v in enumerate(values)]
    return {"width": width, "height": height, "points": " ".join(f"{x},{y}" for x, y in coords),
            "last": {"x": coords[-1][0], "y": coords[-1][1], "value": values[-1]},
            "low": min(values), "high": max(values)}
