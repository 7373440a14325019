"""A tiny stand-in for the trainer, run by the plane's tests as the Job's command.

It speaks the trainer's contract (env per conventions, CloudEvents with the callback token to
K_SINK, artifacts under runs/{runId}/artifacts/) without training anything, so the plane's
tests are fast and independent of the real trainer. The first argument picks the behaviour:
``succeed``, ``crash`` (progress, then an ``error`` progress and exit 1, as the trainer reports a
crash a retry may cure), ``silent`` (exit 1, no events) or ``flaky`` (crash on the first attempt,
succeed on the next: a marker in the Job's scratch dir, which the local launcher keeps across
attempts) or ``wait GATE`` (progress, then wait for the file GATE to say what to do:
``succeed``, ``crash``, or ``die-once``: the first attempt exits 1 without a word, as a killed
process would, and a retry succeeds). Progress seq is milliseconds since the epoch, as the
trainer's; the final event (and a crash's report) is retried as the trainer's is.
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
from jobplane_trainer.report import send_final


def wait_for_gate(gate: Path) -> str:
    while not (gate.exists() and gate.read_text().strip()):
        time.sleep(0.05)
    return gate.read_text().strip()


def main(mode: str = "succeed", gate: str = "") -> int:
    run_id = os.environ[c.ENV_RUN_ID]
    send = ev.http_sender(os.environ[c.ENV_SINK])
    ext = {c.TOKEN_EXTENSION: os.environ[c.ENV_TOKEN]}
    if os.environ.get(c.ENV_TRACEPARENT):  # carried back as the real trainer's Reporter does
        ext[c.TRACE_EXTENSION] = os.environ[c.ENV_TRACEPARENT]

    seq = [0]

    def emit(type_: str, data: dict[str, object], *, final: bool = False) -> None:
        if type_ == ev.RUN_PROGRESS:
            seq[0] = data["seq"] = max(seq[0] + 1, time.time_ns() // 1_000_000)
        event = ev.new_event(type_, source=f"/jobplane/trainer/{run_id}", subject=run_id, data=data, extensions=ext)
        send_final(send, event) if final else send(event)

    if mode == "silent":
        return 1
    marker = Path(os.environ[c.ENV_SCRATCH]) / "crashed-once"
    retried = mode in ("flaky", "wait") and marker.exists()
    emit(ev.RUN_PROGRESS, {"progress": 40, "phase": "training", "message": "epoch 1/2" + (" (retry)" if retried else "")})
    if mode == "wait":
        mode = wait_for_gate(Path(gate))
        if mode == "die-once":
            if not retried:
                marker.touch()
                return 1
            mode = "succeed"
    if mode == "crash" or (mode == "flaky" and not retried):
        marker.touch()
        emit(ev.RUN_PROGRESS, {"progress": 40, "phase": c.PHASE_ERROR, "message": "RuntimeError: simulated crash"}, final=True)
        print("stand-in trainer: simulated crash", file=sys.stderr)
        return 1
    store = open_store(os.environ[c.ENV_STORE])
    key = f"{c.run_artifacts_prefix(run_id)}metrics.json"
    metrics = {"accuracy": 0.9, "macro_f1": 0.88}
    store.write(key, json.dumps(metrics).encode())
    emit(ev.RUN_SUCCEEDED, {"metrics": metrics, "artifacts": {"metrics": store.uri(key)}, "promote": False}, final=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
