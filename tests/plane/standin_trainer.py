"""A tiny stand-in for the trainer, run by the plane's tests as the Job's command.

It speaks the trainer's contract (env per conventions, CloudEvents with the callback token to
K_SINK, artifacts under runs/{runId}/artifacts/) without training anything, so the plane's
tests are fast and independent of the real trainer. The first argument picks the behaviour:
``succeed``, ``crash`` (progress, then an ``error`` progress and exit 1, as the trainer reports a
crash a retry may cure), ``silent`` (exit 1, no events) or ``flaky`` (crash on the first attempt,
succeed on the next: a marker in the Job's scratch dir, which the local launcher keeps across
attempts). Progress seq is milliseconds since the epoch, as the trainer's.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from jobplane import conventions as c
from jobplane import events as ev
from jobplane.store import open_store


def main(mode: str) -> int:
    run_id = os.environ[c.ENV_RUN_ID]
    send = ev.http_sender(os.environ[c.ENV_SINK])
    ext = {c.TOKEN_EXTENSION: os.environ[c.ENV_TOKEN]}

    seq = [0]

    def emit(type_: str, data: dict[str, object]) -> None:
        if type_ == ev.RUN_PROGRESS:
            seq[0] = data["seq"] = max(seq[0] + 1, time.time_ns() // 1_000_000)
        send(ev.new_event(type_, source=f"/jobplane/trainer/{run_id}", subject=run_id, data=data, extensions=ext))

    if mode == "silent":
        return 1
    marker = Path(os.environ[c.ENV_SCRATCH]) / "crashed-once"
    retried = mode == "flaky" and marker.exists()
    emit(ev.RUN_PROGRESS, {"progress": 40, "phase": "training", "message": "epoch 1/2" + (" (retry)" if retried else "")})
    if mode == "crash" or (mode == "flaky" and not retried):
        marker.touch()
        emit(ev.RUN_PROGRESS, {"progress": 40, "phase": c.PHASE_ERROR, "message": "RuntimeError: simulated crash"})
        print("stand-in trainer: simulated crash", file=sys.stderr)
        return 1
    store = open_store(os.environ[c.ENV_STORE])
    key = f"{c.run_artifacts_prefix(run_id)}metrics.json"
    metrics = {"accuracy": 0.9, "macro_f1": 0.88}
    store.write(key, json.dumps(metrics).encode())
    emit(ev.RUN_SUCCEEDED, {"metrics": metrics, "artifacts": {"metrics": store.uri(key)}, "promoted": False})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "succeed"))
