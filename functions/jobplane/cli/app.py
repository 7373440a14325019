"""The ``jobplane`` command's root: its commands assembled, the local ones (``up``, ``demo``,
``render-pingsource``), and ``main``, which turns every outcome into an exit code."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from typer.core import TyperGroup

from ..settings import API_TOKEN_FILE
from . import admin, bots, runs, specs
from .client import DEFAULT_DATA_DIR, DEFAULT_PORT
from .exits import EPILOG, CliError, Exit
from .options import AsJson, DataDir, Token, Url


class Group(TyperGroup):
    """Prints a failed command's ``CliError`` on stderr and exits with its code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as e:
            for line in e.lines():
                typer.echo(line, err=True)
            raise typer.Exit(int(e.code)) from None


app = typer.Typer(
    name="jobplane", cls=Group, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Event-driven jobs plane for per-bot NLP models: run it here (up, demo), or drive a local plane or a "
         "cluster over its HTTP API (specs, run, runs, status, cancel, emit, predict, search).",
    epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]},
)
LOCAL: Final = "The plane on this machine"
RUNS: Final = "Specs and runs (over the API)"
BOTS: Final = "Bots (over the API)"
OPERATIONS: Final = "Operations (over the API)"
app.add_typer(specs.specs, rich_help_panel=RUNS)
app.command("run", rich_help_panel=RUNS)(runs.run)
app.command("runs", rich_help_panel=RUNS)(runs.list_runs)
app.command("status", rich_help_panel=RUNS)(runs.status)
app.command("cancel", rich_help_panel=RUNS)(runs.cancel)
app.add_typer(bots.emit, rich_help_panel=BOTS)
app.command("predict", rich_help_panel=BOTS)(bots.predict)
app.command("search", rich_help_panel=BOTS)(bots.search)
app.add_typer(admin.deadletter, rich_help_panel=OPERATIONS)
app.command("audit", rich_help_panel=OPERATIONS)(admin.audit)

PlaneDir = Annotated[Path, typer.Option("--data-dir", help="Where the store, the Job logs and api.token live.")]
EventingDir = Annotated[Path | None, typer.Option(
    "--eventing-dir", help="Knative eventing manifests (default: the repository's eventing/).", show_default=False)]


@app.callback()
def root(ctx: typer.Context, verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Log at INFO, one line per HTTP request.")] = False,
         url: Url = None, token: Token = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    level = logging.INFO if verbose else logging.WARNING
    from .. import logs

    # `up` logs the plane's lines as JSON (JOBPLANE_LOG_FORMAT=text: plain), as on a cluster; the
    # other commands (the demo's plane too) write plain warnings for people. Configured here
    # first, so the functions the plane loads keep it (logs.configure(keep=True)).
    fmt = logs.format_from(os.environ) if ctx.invoked_subcommand == "up" else "text"
    logs.configure(fmt, level=level)
    logging.getLogger("werkzeug").setLevel(level)  # one line per request only with -v


@app.command("up", rich_help_panel=LOCAL)
def up(port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = DEFAULT_PORT,
       data_dir: PlaneDir = DEFAULT_DATA_DIR, eventing_dir: EventingDir = None) -> None:
    """Serve the embedded plane on 127.0.0.1 in the foreground (Ctrl-C stops it)."""
    from ..local.plane import Plane

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with Plane(data_dir, port=port, eventing_dir=eventing_dir) as plane:
        print(f"jobplane up on {plane.url}")
        print(f"  broker ingress  {plane.url}/default/default   (POST CloudEvents here)")
        print(f"  HTTP API        {plane.url}/v1/               {_auth_line(plane)}")
        print(f"  dashboard       {_login_url(plane)}")
        print(f"  data            {plane.data_dir}")
        if plane.settings.auth == "none":
            print(NO_AUTH_BANNER, file=sys.stderr, flush=True)
        for name, when in sorted((plane.cron.next_fires() if plane.cron else {}).items()):
            print(f"  schedule        {name:<40} next {when:%Y-%m-%d %H:%M %Z}")
        print("Ctrl-C stops.", flush=True)
        while not stop.wait(timeout=0.5):  # a bare wait() may never see a signal another thread took
            pass
        print("stopping…", flush=True)


NO_AUTH_BANNER: Final = """
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!! WARNING: JOBPLANE_AUTH=none: the API takes requests WITHOUT ANY AUTHENTICATION.       !!
!! Every local process and user can create specs, launch Jobs and read every bot's data.  !!
!! Unset JOBPLANE_AUTH to use the token in the data dir.                                  !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"""


def _auth_line(plane: Any) -> str:
    mode = plane.settings.auth
    if mode == "token":
        return f"Authorization: Bearer $(cat {plane.data_dir / API_TOKEN_FILE})"
    if mode == "kubernetes":
        return "Authorization: Bearer <a Kubernetes token> (RBAC decides)"
    return "NO AUTHENTICATION (JOBPLANE_AUTH=none)"


def _login_url(plane: Any) -> str:
    """The token rides in the fragment: never sent to the server, so never in a log."""
    if plane.settings.auth == "token":
        return f"{plane.url}/login#token={plane.settings.api_token}   (open to log this browser in)"
    return f"{plane.url}/"


@app.command("demo", rich_help_panel=LOCAL)
def demo(port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one.")] = 0,
         bot: Annotated[Path | None, typer.Option(help="A bot JSON (default: the bundled sample bot).",
                                                  show_default=False)] = None,
         timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 300.0,
         data_dir: PlaneDir = DEFAULT_DATA_DIR, eventing_dir: EventingDir = None) -> None:
    """Train the sample bot from a bot.changed CloudEvent end to end, then exit."""
    from ..demo import run_demo

    code = run_demo(data_dir=data_dir, port=port, bot_path=bot, timeout=timeout, eventing_dir=eventing_dir)
    if code:
        raise typer.Exit(code)


@app.command("render-pingsource", rich_help_panel=LOCAL)
def render_pingsource(
        spec: Annotated[Path, typer.Argument(help="A job spec JSON file with a schedule.", show_default=False)],
        namespace: Annotated[str | None, typer.Option(help="metadata.namespace (default: none, kustomize sets it).",
                                                      show_default=False)] = None) -> None:
    """Print the PingSource YAML that runs a spec on its schedule (for the cluster)."""
    from .. import schedules
    from ..errors import JobplaneError

    try:
        body = json.loads(spec.read_text())
    except (OSError, ValueError) as e:
        raise CliError(f"{spec}: cannot read a JSON job spec: {e}", code=Exit.USAGE) from e
    try:
        sys.stdout.write(schedules.render_pingsource(body, namespace=namespace))
    except JobplaneError as e:
        raise CliError(e.message, code=Exit.USAGE) from e


@app.command("retention", rich_help_panel=LOCAL)
def retention_sweep(ctx: typer.Context,
                    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what it would delete; delete nothing.")] = False,
                    data_dir: PlaneDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """Sweep a page of what the retention policy no longer keeps from the plane's store
    ($JOBPLANE_STORE wins; ages from JOBPLANE_RETENTION_*), and say what it deleted and kept."""
    import dataclasses
    import os
    from datetime import UTC, datetime

    from .. import retention
    from ..errors import JobplaneError
    from ..settings import retention_from_env
    from ..store import open_store
    from .client import wants_json
    from .render import print_json

    store_url = os.environ.get("JOBPLANE_STORE") or (data_dir.resolve() / "store").as_uri()
    try:
        report = retention.sweep(open_store(store_url), retention_from_env(os.environ), now=datetime.now(UTC),
                                 dry_run=dry_run)
    except JobplaneError as e:
        raise CliError(e.message, code=Exit.UNAVAILABLE if e.retryable else Exit.USAGE) from e
    if wants_json(ctx):
        print_json(dataclasses.asdict(report))
    else:
        typer.echo("\n".join(retention.describe(report)))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; its exit code (what ``jobplane --help`` lists)."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="jobplane")
    except SystemExit as e:  # typer's standalone mode always exits, with the code
        return e.code if isinstance(e.code, int) else int(e.code is not None)
    return 0
