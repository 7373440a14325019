"""``jobplane run|runs|status|cancel``: trigger a spec's run, list runs, follow one, stop one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from .client import Api, Target, wants_json
from .exits import CliError, Exit, for_state
from .follow import APPEAR_SECONDS, POLL_SECONDS, follow
from .options import AsJson, DataDir, Interval, Token, Url
from .render import console, print_json, run_summary, runs_table

RunId = Annotated[str, typer.Argument(metavar="RUN", help="The run's id.", show_default=False)]
Follow = Annotated[bool, typer.Option("--follow", "-f", help="Follow the run to its end with a live progress bar; "
                                      "the exit code then says how it ended.")]


def run(ctx: typer.Context,
        spec_id: Annotated[str, typer.Argument(metavar="SPEC", help="The spec to run.", show_default=False)],
        param: Annotated[list[str] | None, typer.Option(
            "--param", "-p", metavar="KEY=VALUE",
            help="Override a param for this run (VALUE is JSON, else a string; a.b=… sets a nested key). Repeatable.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Run even when a succeeded run had the same inputs.")] = False,
        follow_: Follow = False, interval: Interval = POLL_SECONDS,
        url: Url = None, token: Token = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Trigger a run of a spec (202: the plane launches it); print its run id."""
    body: dict[str, Any] = {}
    if param:
        body["params"] = parse_params(param)
    if force:
        body["force"] = True
    api = Api(Target.from_context(ctx))
    answer = api.post(f"/v1/specs/{spec_id}/runs", body)
    if not wants_json(ctx):
        console().print(f"requested run {answer['runId']} of spec {spec_id}")
    elif not follow_:  # following, stdout gets the final record alone
        print_json(answer)
    if follow_:
        finish(ctx, api, str(answer["runId"]), interval=interval, appear_within=APPEAR_SECONDS)


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["epochs=5", "trainingData.uri=gs://b/x.json"]`` → ``{"epochs": 5, "trainingData": {"uri": …}}``."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--param {pair!r}: expected KEY=VALUE", code=Exit.USAGE)
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        *parents, leaf = key.split(".")
        where = params
        for name in parents:
            where = where.setdefault(name, {})
            if not isinstance(where, dict):
                raise CliError(f"--param {pair!r}: {name} is already set to a value", code=Exit.USAGE)
        where[leaf] = value
    return params


def list_runs(ctx: typer.Context,
              spec_id: Annotated[str | None, typer.Argument(metavar="SPEC", help="A spec's runs.", show_default=False)] = None,
              spec: Annotated[str | None, typer.Option("--spec", hidden=True)] = None,
              bot: Annotated[str | None, typer.Option("--bot", help="A bot's runs, every spec's.", show_default=False)] = None,
              job_type: Annotated[str | None, typer.Option("--type", help="With --bot: only runs of this job type.",
                                                           show_default=False)] = None,
              last: Annotated[int, typer.Option("--last", "--limit", min=1, help="How many runs, newest first "
                                                "(pages are followed past 100).")] = 10,
              url: Url = None, token: Token = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List a spec's (or a bot's) runs, newest first."""
    spec_id = spec_id or spec
    if bool(spec_id) == bool(bot):
        raise CliError("give a SPEC or --bot BOT (one of them)", code=Exit.USAGE)
    api = Api(Target.from_context(ctx))
    if spec_id:
        body = api.listing(f"/v1/specs/{spec_id}/runs", "runs", want=last)
    else:
        body = api.listing(f"/v1/bots/{bot}/runs", "runs", want=last, type=job_type)
    if wants_json(ctx):
        print_json(body)
    elif body["runs"]:
        console().print(runs_table(body["runs"], now=datetime.now(UTC)))
    else:
        console().print("no runs")


def status(ctx: typer.Context, run_id: RunId, follow_: Follow = False, interval: Interval = POLL_SECONDS,
           url: Url = None, token: Token = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Show a run: state, progress, ETA, why, timings, metrics, artifacts.

    With --follow, a run not recorded yet is waited for (up to 30 s): a trigger or an event
    answers with the run id a moment before the launch function records the run."""
    api = Api(Target.from_context(ctx))
    if follow_:
        finish(ctx, api, run_id, interval=interval, appear_within=APPEAR_SECONDS)
        return
    record = api.get(f"/v1/runs/{run_id}")
    print_json(record) if wants_json(ctx) else console().print(run_summary(record))


def finish(ctx: typer.Context, api: Api, run_id: str, *, interval: float, appear_within: float = 0.0) -> None:
    """Follow the run to its end (the bar on stderr when stdout is JSON), show it, and exit
    with the code its final state deserves."""
    as_json = wants_json(ctx)
    record = follow(api, run_id, out=console(stderr=as_json), interval=interval, appear_within=appear_within)
    print_json(record) if as_json else console().print(run_summary(record))
    code = for_state(str(record.get("state")), record.get("reason"))
    if code != Exit.OK:
        raise typer.Exit(int(code))


def cancel(ctx: typer.Context, run_id: RunId,
           url: Url = None, token: Token = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Cancel a run that has not ended (its Job is deleted)."""
    record = Api(Target.from_context(ctx)).post(f"/v1/runs/{run_id}:cancel")
    if wants_json(ctx):
        print_json(record)
    else:
        console().print(f"run {run_id} {record.get('state')}: {record.get('reason') or ''}".rstrip(": "))
