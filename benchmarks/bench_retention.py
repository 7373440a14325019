"""The retention sweep on a year and more of history: what one sweep costs in store operations,
and what a run costs, beside the objects it deletes (``jobplane.retention``, the simulator's
in-memory store with GCS's semantics that counts reads, writes, list calls and deletes).

The history, per bot, for ``--days`` days before now: a nightly bot test each day, a training
on new data every ``--change-every`` days (its revision under ``bots/{id}/data/``, a cache
entry), the weekly retrain (no data params), the bot's model pointer on its newest training.
Sweeps run back to back (as the five-minute PingSource would, with no time passing) until
neither stage moves; the store is then counted again.

    .venv/bin/python benchmarks/bench_retention.py [--bots 100] [--days 500] [--page 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sim.store import MemoryStore  # noqa: E402

from jobplane import cache, runs  # noqa: E402
from jobplane import conventions as c  # noqa: E402
from jobplane.retention import CURSOR_KEY, sweep  # noqa: E402
from jobplane.settings import RetentionPolicy  # noqa: E402

NOW = datetime(2027, 6, 1, tzinfo=UTC)


def put(store: MemoryStore, *, spec_id: str, bot: str, job_type: str, at: datetime, n: int,
        data: str | None = None) -> str:
    spec = {"id": spec_id, "type": job_type, "params": {"botId": bot}}
    run = runs.new_run(spec=spec, trigger={"type": "t", "source": "/bench", "id": f"{spec_id}-{n}"},
                       requested_by="bench", now=at)
    run["state"] = "succeeded"
    if data:
        run["params"] = {"trainingData": {"uri": store.uri(data)}}
        run["cacheKey"] = f"{bot}-{n}"
        store.write(cache.entry_key(job_type, run["cacheKey"]), json.dumps({"runId": run["id"]}).encode())
    store.write(c.run_key(run["id"]), json.dumps(run).encode())
    for key in runs.listing_keys(run):
        store.write(key, b"")
    store.write(f"runs/{run['id']}/artifacts/model.npz", b"m")
    store.write(f"runs/{run['id']}/events/00000001", b"{}")
    return str(run["id"])


def history(store: MemoryStore, *, bots: int, days: int, change_every: int) -> int:
    count = 0
    for b in range(bots):
        bot = f"bot-{b:05d}"
        newest = ""
        for d in range(days, 0, -1):
            at = NOW - timedelta(days=d, hours=b % 24)
            put(store, spec_id="nightly-bot-tests", bot=bot, job_type="bot-test", at=at, n=count)
            count += 1
            if d % change_every == 0:
                data = f"{c.bot_data_prefix(bot)}r{d}.json"
                store.write(data, b"{}")
                newest = put(store, spec_id=f"train-{bot}", bot=bot, job_type="training", at=at, n=count, data=data)
                store.write(c.spec_key(f"train-{bot}"), json.dumps(
                    {"id": f"train-{bot}", "params": {"botId": bot, "trainingData": {"uri": store.uri(data)}}}).encode())
                count += 1
            if d % 7 == 0:
                newest = put(store, spec_id=f"train-{bot}", bot=bot, job_type="training", at=at, n=count)
                count += 1
        store.write(c.bot_model_key(bot), json.dumps({"botId": bot, "runId": newest}).encode())
    return count


def counters(store: MemoryStore) -> dict[str, int]:
    return {"reads": store.reads, "writes": store.writes, "lists": store.lists, "deletes": store.deletes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=100)
    parser.add_argument("--days", type=int, default=500)
    parser.add_argument("--change-every", type=int, default=5)
    parser.add_argument("--page", type=int, default=100)
    args = parser.parse_args()
    store = MemoryStore(second=lambda: 0)
    made = history(store, bots=args.bots, days=args.days, change_every=args.change_every)
    store.write(CURSOR_KEY, b'{"backfill": "done"}')  # every run was made with its index/created/ entry
    objects_before, data_before = store.count(), store.count("bots/")
    policy = RetentionPolicy(page=args.page)
    start, base = time.perf_counter(), counters(store)
    sweeps, largest, judged = 0, 0, 0
    while True:
        before = counters(store)
        report = sweep(store, policy, now=NOW)
        ops = sum(counters(store).values()) - sum(before.values())
        sweeps, largest = sweeps + 1, max(largest, ops)
        judged += len(report.runs_deleted) + len(report.artifacts_retired) + len(report.kept)
        if not report.deleted and not report.kept:
            break
    spent = {k: v - base[k] for k, v in counters(store).items()}
    total = sum(spent.values())
    print(f"history: {args.bots} bots, {args.days} days, {made} runs, {objects_before} objects "
          f"({data_before} under bots/)")
    print(f"sweeps until caught up: {sweeps} (page {args.page}), {time.perf_counter() - start:.1f} s of wall time")
    print(f"store operations: {spent} = {total}; largest sweep {largest}")
    print(f"runs judged: {judged}; operations per run judged: {total / max(1, judged):.1f}")
    print(f"objects after: {store.count()} ({store.count('bots/')} under bots/), runs left: "
          f"{store.count(runs.CREATED_PREFIX)}")


if __name__ == "__main__":
    main()
