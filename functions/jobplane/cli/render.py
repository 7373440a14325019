"""What the command line shows people: rich tables and summaries of the API's answers, and the
API's JSON untouched for ``--json``.

Output to a pipe or a file is wide (no wrapped ids) and colourless; a terminal gets its width
and colour.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import runs

PIPE_WIDTH: Final = 240
STATE_STYLES: Final = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "superseded": "yellow",
                       "skipped": "yellow", "running": "cyan", "queued": "magenta"}


def console(*, stderr: bool = False) -> Console:
    """A console on the current stdout (or stderr): the one a test or a pipe put there."""
    stream = sys.stderr if stderr else sys.stdout
    wide = None if stream.isatty() else PIPE_WIDTH
    return Console(file=stream, width=wide, highlight=False, soft_wrap=False)


def print_json(body: Any) -> None:
    """The API's JSON as it came, one document on stdout."""
    sys.stdout.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _table(*columns: str) -> Table:
    """Columns that never wrap (ids, states, times), and a last free-text column that gives way
    on a narrow terminal; its text is cut to ``FREE_TEXT`` so a row stays one line in a log."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name in columns[:-1]:
        table.add_column(name, no_wrap=True)
    table.add_column(columns[-1], no_wrap=False, overflow="fold")
    return table


def clip(text: object, limit: int = 80) -> str:
    value = " ".join(str(text or "").split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def state(value: Any) -> Text:
    return Text(str(value or "-"), style=STATE_STYLES.get(str(value), ""))


# --- specs -------------------------------------------------------------------------------------


def specs_table(specs: Iterable[Mapping[str, Any]]) -> Table:
    table = _table("SPEC", "TYPE", "BOT", "SCHEDULE", "DESCRIPTION")
    for spec in specs:
        params = spec.get("params") or {}
        bot = params.get("botId") or (f"({params['bots']})" if params.get("bots") else "-")
        schedule = f"{spec['schedule']} {spec.get('timezone') or ''}".strip() if spec.get("schedule") else "-"
        table.add_row(str(spec.get("id")), str(spec.get("type") or "-"), str(bot), schedule,
                      clip(spec.get("description")))
    return table


# --- runs --------------------------------------------------------------------------------------


def runs_table(found: Iterable[Mapping[str, Any]], *, now: datetime) -> Table:
    table = _table("RUN", "TYPE", "STATE", "PROGRESS", "CREATED", "TOOK", "DETAIL")
    for run in found:
        table.add_row(str(run.get("id")), str(run.get("type") or "-"), state(run.get("state")),
                      f"{int(run.get('progress') or 0):>3}%", str(run.get("createdAt") or "-"),
                      took(run, now=now), clip(detail(run, now=now)))
    return table


def detail(run: Mapping[str, Any], *, now: datetime) -> str:
    """Why a run is where it is: where it waits, its reason, or its last message."""
    if run.get("state") == "queued":
        return waiting(run, now=now)
    return str(run.get("reason") or run.get("message") or "")


def waiting(run: Mapping[str, Any], *, now: datetime) -> str:
    """Where a queued run waits: "WaitingForQuota in training, #3, waited 4m10s"."""
    queue = run.get("queue") or {}
    parts = [str(run.get("reason") or "queued") + (f" in {queue['name']}" if queue.get("name") else "")]
    if queue.get("position") is not None:
        parts.append(f"#{int(queue['position']) + 1}")
    if queue.get("since"):
        seconds = max(0, int((now - datetime.fromisoformat(str(queue["since"]).replace("Z", "+00:00"))).total_seconds()))
        parts.append(f"waited {duration(seconds)}")
    return ", ".join(parts)


def took(run: Mapping[str, Any], *, now: datetime) -> str:
    """From the run's start (or creation) to its end, or to now while it goes on."""
    try:
        start = runs.parse_rfc3339(str(run.get("startedAt") or run["createdAt"]))
        end = runs.parse_rfc3339(str(run["finishedAt"])) if run.get("finishedAt") else now
    except (KeyError, ValueError):
        return "-"
    return duration((end - start).total_seconds())


def duration(seconds: float) -> str:
    """``9.9s``, ``4m10s``, ``2h05m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def run_summary(run: Mapping[str, Any], *, now: datetime | None = None) -> Table:
    """A run record as ``field  value`` lines: where it is, why, how it went, what it made."""
    now = now or datetime.now(UTC)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    trigger = run.get("trigger") or {}
    rows: list[tuple[str, Any]] = [
        ("run", run.get("id")), ("state", state(run.get("state"))),
        ("progress", f"{int(run.get('progress') or 0)}%" + (f"  {run['phase']}" if run.get("phase") else "")),
        ("message", run.get("message")), ("eta", duration(float(run["eta"])) if _number(run.get("eta")) and not runs.is_terminal(run) else None),
        ("reason", waiting(run, now=now) if run.get("state") == "queued" else run.get("reason")),
        ("spec", run.get("specId")), ("bot", run.get("botId")), ("type", run.get("type")),
        ("trigger", " ".join(str(trigger[k]) for k in ("type", "source", "id") if trigger.get(k)) or None),
        ("requested by", run.get("requestedBy")),
        ("created", run.get("createdAt")), ("started", run.get("startedAt")), ("finished", run.get("finishedAt")),
        ("took", took(run, now=now) if run.get("createdAt") else None),
        ("job", (run.get("job") or {}).get("name")),
        *metric_rows(run.get("metrics") or {}),
        *((f"artifact {name}", uri) for name, uri in sorted((run.get("artifacts") or {}).items())),
    ]
    for name, value in rows:
        if value not in (None, ""):
            grid.add_row(name, value if isinstance(value, Text) else str(value))
    return grid


def metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The run's headline figures (numbers at the top level of ``metrics``)."""
    return [(key, f"{value:.3f}" if isinstance(value, float) else str(value))
            for key, value in metrics.items() if _number(value)]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- bots --------------------------------------------------------------------------------------


def prediction(text: str, answer: Mapping[str, Any]) -> Table:
    """The intent and confidence, the text with its entities highlighted, and each entity."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    confidence = answer.get("confidence")
    shown = f"{confidence:.2f}" if _number(confidence) else "?"
    fallback = "  (below the threshold: fallback)" if answer.get("fallback") else ""
    grid.add_row("text", highlighted(text, answer.get("entities") or []))
    grid.add_row("intent", f"{answer.get('intent')} ({shown}){fallback}")
    for entity in answer.get("entities") or []:
        where = f"  [{entity['start']}:{entity['end']}]" if "start" in entity and "end" in entity else ""
        grid.add_row("entity", f"{entity.get('entity')} = {entity.get('value')!r}{where}")
    ranking = answer.get("ranking") or []
    if len(ranking) > 1:
        grid.add_row("next", ", ".join(f"{r.get('intent')} ({float(r.get('confidence') or 0):.2f})" for r in ranking[1:4]))
    model = answer.get("model") or {}
    if model.get("runId"):
        grid.add_row("model", f"run {model['runId']}")
    return grid


def highlighted(text: str, entities: Sequence[Mapping[str, Any]]) -> Text:
    out = Text(text)
    for entity in entities:
        start, end = entity.get("start"), entity.get("end")
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
            out.stylize("bold reverse", start, end)
    return out


def search_results(answer: Mapping[str, Any], out: Console) -> None:
    """``1. article  score  [found by]  title / heading`` and the passage under it."""
    for i, hit in enumerate(answer.get("results") or [], 1):
        where = " / ".join(str(p) for p in (hit.get("title"), hit.get("heading")) if p)
        found_by = ", ".join(hit.get("matchedBy") or [])
        out.print(Text(f"{i}. {hit['articleId']}  {float(hit['score']):.3f}  [{found_by}]  {where}"))
        out.print(Text(f"   {str(hit.get('text') or '')[:300]}"))
    if not answer.get("results"):
        out.print("no passages")


# --- dead letters and the audit trail ------------------------------------------------------------


def dead_letters_table(items: Iterable[Mapping[str, Any]]) -> Table:
    table = _table("DEAD LETTER", "TYPE", "CODE", "STATE", "RECEIVED")
    for d in items:
        done = f"replayed {d['replayedAt']}" if d.get("replayedAt") else "dead"
        table.add_row(str(d.get("id")), str(d.get("type") or "-"), str((d.get("error") or {}).get("code") or "-"),
                      done, str(d.get("receivedAt") or "-"))
    return table


def audit_table(entries: Iterable[Mapping[str, Any]]) -> Table:
    table = _table("TIME", "SUBJECT", "ACTION", "TARGET", "OUTCOME", "DETAIL")
    for e in entries:
        table.add_row(str(e.get("time") or "-"), str(e.get("subject") or "-"), str(e.get("action") or "-"),
                      str(e.get("target") or "-"), str(e.get("outcome") or "-"), clip(e.get("detail")))
    return table
