"""The options every API command takes, declared once (``client.Target`` resolves them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

import typer

CONNECTION: Final = "Connection"

Url = Annotated[str | None, typer.Option(
    "--url", show_default=False, rich_help_panel=CONNECTION,
    help="The plane's URL: `jobplane up`'s, or the api Service's on a cluster. "
         "(env JOBPLANE_URL; default http://127.0.0.1:8080)")]
Token = Annotated[str | None, typer.Option(
    "--token", show_default=False, rich_help_panel=CONNECTION,
    help="The API's bearer token. (env JOBPLANE_TOKEN; default the token in {data-dir}/api.token)")]
DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", show_default=False, rich_help_panel=CONNECTION,
    help="The local plane's data dir, where it keeps api.token. (default ./.jobplane)")]
AsJson = Annotated[bool, typer.Option(
    "--json", rich_help_panel=CONNECTION, help="Print the API's JSON and nothing else on stdout.")]
Interval = Annotated[float, typer.Option("--interval", min=0.05, help="Seconds between polls while following.")]
