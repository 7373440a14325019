"""Entry points: ``python -m jobplane_trainer run`` (inside a Job: env per ``jobplane.conventions``)
and ``python -m jobplane_trainer train --data FILE --out DIR [--test FILE]`` (standalone).

Exit codes: 0 done; ``EXIT_BAD_DATA`` the data can never train (``run.failed``, no retries);
``EXIT_INTERRUPTED`` SIGTERM, checkpoint written (a retry resumes); ``EXIT_FAILED`` anything else
(reported as progress in phase ``error``: the Job retries, and fails the run once out of retries).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from jobplane import conventions as c
from jobplane import events, inference

from . import jobtypes, metrics
from .data import BadDataError, parse, validate
from .job import JobEnv
from .report import Reporter
from .train import Hooks, Interrupted, Progress, TrainConfig, train

log = logging.getLogger("jobplane_trainer")


def _stop_on_sigterm() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


def _log_sender(event: events.Event) -> None:
    log.info("no K_SINK: %s %s", event.type, json.dumps(event.data)[:300])


def cmd_run() -> int:
    """Train the bot the Job's env names; report to the plane; exit with the conventions' code."""
    stop = _stop_on_sigterm()
    try:
        env = JobEnv.from_env(os.environ)
    except BadDataError as e:
        log.error("%s", e)
        return c.EXIT_BAD_DATA
    reporter = Reporter(events.http_sender(env.sink) if env.sink else _log_sender, run_id=env.run_id, token=env.token,
                        final_retry_s=env.final_retry_s, traceparent=env.traceparent)
    try:
        data = _dispatch(env, reporter, stop=stop)
    except Interrupted as e:
        log.warning("interrupted, checkpoint written: %s", e)
        return c.EXIT_INTERRUPTED
    except BadDataError as e:
        log.error("%s", e)
        reporter.failed(type(e).__name__ if type(e) is not BadDataError else "BadData", e.message,
                        results=getattr(e, "results", None))
        return c.EXIT_BAD_DATA
    except Exception as e:
        log.exception("training failed")
        reporter.crashed(f"{type(e).__name__}: {e}")  # not run.failed: a retry may still succeed
        return c.EXIT_FAILED
    reporter.progress(Progress("done", 100.0, f"{env.job_type} done"), force=True)
    reporter.succeeded(data)
    log.info("succeeded: %s promotion requested=%s", {k: v for k, v in (data.get("metrics") or {}).items() if not isinstance(v, dict)},
             data.get("promote"))
    return c.EXIT_OK


def _dispatch(env: JobEnv, reporter: Reporter, *, stop: threading.Event) -> dict[str, Any]:
    return jobtypes.entrypoint(env.job_type)(env, reporter, stop=stop)


def cmd_train(args: argparse.Namespace) -> int:
    """Train from a local file in any supported format; write the model and metrics to ``--out``."""
    stop = _stop_on_sigterm()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        examples = _load(Path(args.data), errors=args.encoding_errors)
        validate(examples)
        test = _load(Path(args.test), errors=args.encoding_errors) if args.test else None
    except BadDataError as e:
        print(f"bad data: {e}", file=sys.stderr)
        return c.EXIT_BAD_DATA
    ckpt = out / "checkpoint.ckpt"
    hooks = Hooks(progress=_print_progress(), should_stop=stop.is_set, save_checkpoint=ckpt.write_bytes,
                  load_checkpoint=lambda: ckpt.read_bytes() if ckpt.exists() else None)
    try:
        result = train(examples, cfg=TrainConfig.from_params(_params(args.param)), hooks=hooks, test=test)
    except Interrupted as e:
        print(f"interrupted: {e}; run again to resume from {ckpt}", file=sys.stderr)
        return c.EXIT_INTERRUPTED
    (out / inference.MODEL_FILE).write_bytes(result.model)
    (out / "metrics.json").write_text(json.dumps(result.metrics | {"confusion_matrix": result.confusion}, indent=1))
    (out / "confusion_matrix.json").write_text(json.dumps(result.confusion))
    (out / "confusion_matrix.png").write_bytes(metrics.heatmap_png(result.confusion["matrix"]))
    ckpt.unlink(missing_ok=True)
    print(json.dumps(result.summary | {"threshold": result.meta["threshold"]} | result.timings))
    return c.EXIT_OK


def _load(path: Path, *, errors: str) -> list[Any]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BadDataError([], what=f"data file {path}: {e.strerror}") from e
    return parse(raw, name=str(path), errors=errors)


def _params(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = value
    return out


def _print_progress() -> Any:
    from .report import Throttle

    throttle = Throttle()

    def show(p: Progress) -> None:
        if throttle.allow():
            eta = f" eta {p.eta:.0f}s" if p.eta is not None else ""
            print(f"[{p.percent:5.1f}%] {p.phase}: {p.message}{eta}", file=sys.stderr, flush=True)

    return show


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m jobplane_trainer")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="train inside a Job of the plane (env per jobplane.conventions)")
    t = sub.add_parser("train", help="train from a local file (project JSON, Rasa YAML, Snips JSON, CSV)")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--test")
    t.add_argument("--encoding-errors", default="strict", choices=("strict", "replace"))
    t.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="hyper-parameter, e.g. seed=7")
    args = parser.parse_args(argv)
    return cmd_run() if args.command == "run" else cmd_train(args)


if __name__ == "__main__":
    sys.exit(main())
