"""``jobplane deadletter list|replay`` and ``jobplane audit``: the events the broker gave up on,
and who created, changed, triggered or cancelled what."""

from __future__ import annotations

from typing import Annotated

import typer

from .client import Api, Target, wants_json
from .options import AsJson, DataDir, Token, Url
from .render import audit_table, console, dead_letters_table, print_json

deadletter = typer.Typer(name="deadletter", no_args_is_help=True,
                         help="Events the broker gave up on: list them, or replay them through the broker.")


@deadletter.command("list")
def list_dead_letters(ctx: typer.Context, url: Url = None, token: Token = None, data_dir: DataDir = None,
                      as_json: AsJson = False) -> None:
    """List the dead letters (every page)."""
    body = Api(Target.from_context(ctx)).listing("/v1/deadletters", "deadLetters")
    if wants_json(ctx):
        print_json(body)
    elif body["deadLetters"]:
        console().print(dead_letters_table(body["deadLetters"]))
    else:
        console().print("no dead letters")


@deadletter.command("replay")
def replay(ctx: typer.Context,
           ids: Annotated[list[str] | None, typer.Argument(help="These dead letters (default: every one not replayed yet).",
                                                           show_default=False)] = None,
           url: Url = None, token: Token = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Send dead letters to the broker again."""
    api = Api(Target.from_context(ctx))
    replayed: list[str] = []
    for dead_id in ids or []:
        replayed += api.post(f"/v1/deadletters/{dead_id}:replay")["replayed"]
    more = not ids
    while more:
        body = api.post("/v1/deadletters:replay")
        replayed += body["replayed"]
        more = bool(body.get("more")) and bool(body["replayed"])
    if wants_json(ctx):
        print_json({"replayed": replayed})
    else:
        console().print(f"replayed {len(replayed)} dead letter(s)")


def audit(ctx: typer.Context,
          spec: Annotated[str | None, typer.Option("--spec", help="Only this spec's entries.", show_default=False)] = None,
          bot: Annotated[str | None, typer.Option("--bot", help="Only this bot's entries.", show_default=False)] = None,
          run: Annotated[str | None, typer.Option("--run", help="Only this run's entries.", show_default=False)] = None,
          last: Annotated[int, typer.Option("--last", min=1, help="How many entries, newest first.")] = 20,
          url: Url = None, token: Token = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """The audit trail: who created, changed, deleted, triggered or cancelled what, newest first."""
    body = Api(Target.from_context(ctx)).listing("/v1/audit", "entries", want=last, specId=spec, botId=bot, runId=run)
    if wants_json(ctx):
        print_json(body)
    elif body["entries"]:
        console().print(audit_table(body["entries"]))
    else:
        console().print("no entries")
