"""``jobplane specs create|list|show|delete``: the job specs, through ``/v1/specs``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .client import Api, Target, read_json_file, wants_json
from .exits import CliError, Exit
from .options import AsJson, DataDir, Token, Url
from .render import console, print_json, specs_table

specs = typer.Typer(name="specs", help="Job specs: create, list, show, delete. Alone: list them.",
                    invoke_without_command=True, no_args_is_help=False)

SpecId = Annotated[str, typer.Argument(metavar="ID", help="The spec's id.", show_default=False)]


@specs.callback()
def specs_group(ctx: typer.Context, url: Url = None, token: Token = None, data_dir: DataDir = None,
                as_json: AsJson = False) -> None:
    """Job specs: create, list, show, delete. Alone (`jobplane specs`), list them."""
    if ctx.invoked_subcommand is None:
        list_specs(ctx)


@specs.command("list")
def list_specs(ctx: typer.Context, url: Url = None, token: Token = None, data_dir: DataDir = None,
               as_json: AsJson = False) -> None:
    """List the job specs (every page)."""
    body = Api(Target.from_context(ctx)).listing("/v1/specs", "specs")
    if wants_json(ctx):
        print_json(body)
    elif body["specs"]:
        console().print(specs_table(body["specs"]))
    else:
        console().print("no specs")


@specs.command("show")
def show(ctx: typer.Context, spec_id: SpecId, url: Url = None, token: Token = None, data_dir: DataDir = None,
         as_json: AsJson = False) -> None:
    """Show one spec as the API stores it."""
    spec = Api(Target.from_context(ctx)).get(f"/v1/specs/{spec_id}")
    if wants_json(ctx):
        print_json(spec)
    else:
        console().print_json(data=spec)


@specs.command("create")
def create(ctx: typer.Context,
           file: Annotated[Path, typer.Argument(help="A spec in JSON or YAML; - reads stdin.", show_default=False)],
           url: Url = None, token: Token = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Create a spec from a file. Inline training data (params.trainingData.examples) is stored
    under the bot and the spec keeps its URI."""
    spec = read_json_file(file)
    if not isinstance(spec, dict):
        raise CliError(f"{file}: a job spec is a JSON object, got {type(spec).__name__}", code=Exit.USAGE)
    created = Api(Target.from_context(ctx)).post("/v1/specs", spec)
    if wants_json(ctx):
        print_json(created)
    else:
        console().print(f"created spec {created['id']} ({created.get('type')})")


@specs.command("delete")
def delete(ctx: typer.Context, spec_id: SpecId, url: Url = None, token: Token = None, data_dir: DataDir = None,
           as_json: AsJson = False) -> None:
    """Delete a spec (its runs stay). With --json, prints nothing (the API answers 204)."""
    Api(Target.from_context(ctx)).delete(f"/v1/specs/{spec_id}")
    if not wants_json(ctx):  # the API answers 204: no JSON to print
        console().print(f"deleted spec {spec_id}")
