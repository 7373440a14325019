"""``jobplane emit bot-changed|predict|search``: tell the plane a bot changed (a CloudEvent to the
broker), and use a bot's promoted model and knowledge base through the API."""

from __future__ import annotations

import getpass
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from .. import events as ev
from .. import runs as run_rules
from .client import Api, Target, read_json_file, wants_json
from .exits import CliError, Exit
from .follow import APPEAR_SECONDS, POLL_SECONDS
from .options import AsJson, DataDir, Interval, Token, Url
from .render import console, prediction, print_json, search_results
from .runs import Follow, finish

CLI_SOURCE: Final = "/jobplane/cli"

emit = typer.Typer(name="emit", help="Send CloudEvents to the plane's broker.", no_args_is_help=True)

BotId = Annotated[str, typer.Argument(metavar="BOT", help="The bot's id.", show_default=False)]
Broker = Annotated[str | None, typer.Option(
    "--broker", show_default=False, rich_help_panel="Connection",
    help="The broker's URL. (env JOBPLANE_BROKER_URL; default {url}/default/default, the embedded ingress)")]


@emit.command("bot-changed")
def bot_changed(ctx: typer.Context, bot: BotId,
                data: Annotated[Path, typer.Option(
                    "--data", "-d", show_default=False,
                    help='Training data: {"examples": [...]} inline, {"uri": ...}, or the whole event data '
                         '{"revision", "trainingData"}; JSON or YAML; - reads stdin.')],
                revision: Annotated[str | None, typer.Option(help="The bot's revision. (default: from the data's hash)",
                                                             show_default=False)] = None,
                follow_: Follow = False, interval: Interval = POLL_SECONDS, broker: Broker = None,
                url: Url = None, token: Token = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Post a dev.jobplane.bot.changed CloudEvent: the plane trains the bot (spec train-BOT)."""
    event = ev.new_event(ev.BOT_CHANGED, source=CLI_SOURCE, subject=bot, id=str(uuid.uuid4()),
                         data=event_data(bot, read_json_file(data), revision=revision),
                         extensions={"requestedby": _user()})
    api = Api(Target.from_context(ctx))
    answer, _ = api.send_event(event)
    started = started_runs(answer, event=event, bot=bot)
    if wants_json(ctx) and not follow_:
        print_json(answer if answer is not None else {"id": event.id, "runs": started})
    elif not wants_json(ctx):
        out = console()
        out.print(f"sent {ev.BOT_CHANGED} {event.id} for bot {bot}")
        for r in started:
            out.print(f"run {r['runId']} ({r.get('type') or 'training'}, spec {r.get('specId')})")
        if not started:
            out.print("no run started")
    if follow_ and started:
        finish(ctx, api, str(started[0]["runId"]), interval=interval, appear_within=APPEAR_SECONDS)


def event_data(bot: str, given: Any, *, revision: str | None) -> dict[str, Any]:
    """``bot.changed``'s data from a file holding training data or the whole event data."""
    if isinstance(given, list):
        given = {"examples": given}
    if not isinstance(given, Mapping):
        raise CliError(f"--data: expected a JSON object, got {type(given).__name__}", code=Exit.USAGE)
    data = dict(given) if "trainingData" in given else {"trainingData": dict(given)}
    if data.setdefault("botId", bot) != bot:
        raise CliError(f"--data: botId {data['botId']!r} is not BOT {bot!r}", code=Exit.USAGE)
    digest = hashlib.sha256(json.dumps(data["trainingData"], sort_keys=True).encode()).hexdigest()[:12]
    data["revision"] = revision or data.get("revision") or f"r-{digest}"
    return data


def started_runs(answer: Any, *, event: ev.Event, bot: str) -> list[dict[str, Any]]:
    """The runs the ingress says the event starts; from a plane whose ingress does not say,
    the run the launch function derives from the event (spec ``train-BOT``)."""
    if isinstance(answer, Mapping) and isinstance(answer.get("runs"), list):
        return [dict(r) for r in answer["runs"] if isinstance(r, Mapping) and r.get("runId")]
    spec_id = f"train-{bot}"
    return [{"runId": run_rules.run_id_for(spec_id, source=event.source, event_id=event.id), "specId": spec_id,
             "type": "training"}]


def _user() -> str:
    """Who asks (the run's ``requestedBy``): the local user's name, in the characters a name may have."""
    try:
        name = re.sub(r"[^A-Za-z0-9._-]", "-", getpass.getuser()).strip("-._")
    except (KeyError, OSError):  # no name for this uid (a bare container)
        name = ""
    return name[:100] or "jobplane-cli"


def predict(ctx: typer.Context, bot: BotId,
            text: Annotated[str, typer.Argument(help="An utterance to classify.", show_default=False)],
            url: Url = None, token: Token = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Classify an utterance with the bot's promoted model: intent, confidence, entities."""
    answer = Api(Target.from_context(ctx)).post(f"/v1/bots/{bot}:predict", {"text": text})
    print_json(answer) if wants_json(ctx) else console().print(prediction(text, answer))


def search(ctx: typer.Context, bot: BotId,
           query: Annotated[str, typer.Argument(help="What to look for.", show_default=False)],
           k: Annotated[int, typer.Option("-k", "--top", min=1, help="Passages to show.")] = 5,
           url: Url = None, token: Token = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Search the bot's knowledge base (its promoted kb-index): best passages first."""
    answer = Api(Target.from_context(ctx)).post(f"/v1/bots/{bot}:search", {"query": query, "k": k})
    print_json(answer) if wants_json(ctx) else search_results(answer, console())
