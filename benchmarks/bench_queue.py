"""What the embedded plane's queue costs: one admission pass (``quota.Quota.schedule``, run on
every local launch and every Job's end) and the positions of every waiting Job (one ``list``
by the reconciler), under the shipped Kueue policy with N waiting Jobs (a third each high,
normal, low; half asking for a GPU). Printed beside a baseline measured in the same run: a
bare sort of the same N Jobs by (priority, arrival), the least any FIFO-by-priority queue does.

    .venv/bin/python benchmarks/bench_queue.py [--jobs 100 1000 5000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from jobplane.launcher.quota import Demand, Quota, load_policy

ROOT = Path(__file__).resolve().parent.parent
GPU_TOLERATION = ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},)
PRIORITIES = ("high", "normal", "low")
ROUNDS = 5


def filled(n: int) -> Quota:
    quota = Quota(load_policy(ROOT / "knative" / "components" / "kueue"))
    for i in range(n):
        priority, gpu = PRIORITIES[i % 3], i % 2
        queue = "training-batch" if priority == "low" else "training"
        requests = {"cpu": Decimal(2), "memory": Decimal(4 * 2**30), "nvidia.com/gpu": Decimal(gpu)}
        quota.submit(f"job-{i}", Demand(queue, priority, requests, GPU_TOLERATION if gpu else ()))
    quota.schedule()  # the first pass admits what fits; the ones measured find the rest waiting
    return quota


def best_ms(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[100, 1000, 5000])
    args = parser.parse_args()
    print(f"{'waiting':>8} {'schedule ms':>12} {'positions ms':>13} {'bare sort ms':>13}  (median of {ROUNDS})")
    for n in args.jobs:
        quota = filled(n)
        keys = [(-(i % 3), i) for i in range(n)]
        names = [f"job-{i}" for i in range(n)]

        def positions(q: Quota = quota) -> None:
            q.schedule()
            for name in names:
                q.waiting(name)

        sched, pos, base = best_ms(quota.schedule), best_ms(positions), best_ms(lambda: sorted(keys))
        print(f"{n:>8} {sched:>12.2f} {pos - sched:>13.2f} {base:>13.3f}")


if __name__ == "__main__":
    main()
