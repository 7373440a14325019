"""The plane at scale, side by side, from one simulated week (``benchmarks/sim``): the real
launch, status and reconcile code with an in-memory store, a GPU pool and a simulated clock.

Three ways to run the same week of events (the same seed, so the same changes at the same
times): (a) one Job per event, as Knative's JobSink or a plain Trigger → Job would (``Allow``,
no cache: every request says ``force: true``), (b) jobplane: ``Replace`` coalescing and the
result cache, (c) (b) with Kueue-style admission: interactive retrains ahead of the batch
sweeps, the batch queue capped at three quarters of the pool. The week: about 100 changes a
day per 500 bots (three in ten leave the training data as it was, one in ten restores the
previous data), a bulk edit of 1,000 bots at once (Tuesday 10:00), one editor per 500 bots a
day saving a bot 20 times in a minute, nightly bot tests (03:30), a trainer release at 09:00 on
Thursday (``retrain-all`` with ``force``) and the weekly ``retrain-all`` on Sunday; training
times drawn from the trainer's measured times (``trainer_results*.json``) plus a 45 s pod
start; every bot trained once before the week.

    .venv/bin/python benchmarks/bench_scale.py [--bots 2000] [--days 7] [--gpus 16] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sim.report import Report  # noqa: E402
from sim.world import Scenario, run  # noqa: E402

ROWS = [
    ("events delivered", "events"), ("Jobs created", "jobs_created"), ("  training Jobs", "training_jobs"),
    ("  bot-test Jobs", "test_jobs"), ("GPU-hours", "gpu_hours"),
    ("queue wait p50 (s)", "wait_p50_s"), ("queue wait p99 (s)", "wait_p99_s"),
    ("  interactive p50 (s)", "wait_interactive_p50_s"), ("  interactive p99 (s)", "wait_interactive_p99_s"),
    ("  batch p50 (s)", "wait_batch_p50_s"), ("  batch p99 (s)", "wait_batch_p99_s"),
    ("change → promoted p50 (s)", "change_to_model_p50_s"), ("change → promoted p99 (s)", "change_to_model_p99_s"),
    ("changes", "changes"), ("stale models at the end", "stale_models"), ("changes never served", "unresolved_changes"),
    ("moments a bot held 2 Jobs", "crowded_moments"), ("runs lost", "lost_runs"), ("runs left open", "open_runs"),
    ("dead letters", "dead_letters"), ("peak Job objects (TTL 1 h)", "peak_job_objects"),
    ("store reads", "store_reads"), ("store writes", "store_writes"), ("store list calls", "store_lists"),
    ("keys returned by lists", "store_listed_keys"), ("hottest object writes/s", "hottest_writes_per_s"),
    ("objects at the end", "objects"), ("objects per run", "objects_per_run"),
    ("reconcile passes", "reconcile_passes"),
    ("reconcile, largest pass: active runs", "reconcile_active_max"),
    ("  reads (before: one per active run)", "reconcile_active_max"),
    ("  reads (now: ended/missing/moved)", "reconcile_reads_max"),
    ("reconcile, all passes: active runs", "reconcile_active_total"),
    ("  reads (now)", "reconcile_reads_total"),
    ("wall seconds", "wall_s"),
]


def scenarios(bots: int, days: float, gpus: int, seed: int) -> list[Scenario]:
    common = {"bots": bots, "days": days, "gpus": gpus, "seed": seed}
    return [
        Scenario("(a) Job per event", replace=False, cache=False, **common),  # type: ignore[arg-type]
        Scenario("(b) jobplane", **common),  # type: ignore[arg-type]
        Scenario("(c) + Kueue", kueue=True, **common),  # type: ignore[arg-type]
    ]


def table(reports: list[Report]) -> str:
    width = max(len(label) for label, _ in ROWS) + 2
    lines = [" " * width + "".join(f"{r.scenario:>20}" for r in reports)]
    for label, name in ROWS:
        lines.append(f"{label:<{width}}" + "".join(f"{getattr(r, name)!s:>20}" for r in reports))
    lines.append("")
    lines.append(f"hottest object: " + "; ".join(f"{r.scenario}: {r.hottest_key}" for r in reports))
    for r in reports:
        lines.append(f"{r.scenario} runs: " + ", ".join(f"{k} {v}" for k, v in r.runs_by_outcome.items()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=2000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--gpus", type=int, default=0, help="GPU pool (default: one per 125 bots)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--json", type=Path, default=None, help="also write the reports here")
    args = parser.parse_args()
    gpus = args.gpus or max(2, args.bots // 125)
    print(f"simulating {args.bots} bots, {args.days:g} days, {gpus} GPUs (seed {args.seed})", flush=True)
    reports = []
    for scenario in scenarios(args.bots, args.days, gpus, args.seed):
        reports.append(run(scenario))
        print(f"  {scenario.name}: {reports[-1].wall_s} s", flush=True)
    print(table(reports))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in reports], indent=1) + "\n")


if __name__ == "__main__":
    main()
