"""What holding a test split out of training costs, and how honest the reported figure is.

For each data set, the served model is trained twice on the same draw: on every example (the
trainer before the held-out split: the refit saw the validation examples too) and on the
examples less the held-out split (``holdout``, 10 % per intent, as a training Job does). Both
are scored on the data set's official test set (the truth), beside the figure each run reports
(before: the split model on the validation examples; after: the served model on the held-out
split). Needs ../shared/data.

    nice .venv/bin/python benchmarks/bench_holdout.py [--draws 2] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_trainer  # noqa: E402
from bench_trainer import banking, few_shot, snips  # noqa: E402

from jobplane import inference  # noqa: E402
from jobplane_trainer.data import Example  # noqa: E402
from jobplane_trainer.holdout import DEFAULT_FRACTION, hold_out  # noqa: E402
from jobplane_trainer.metrics import evaluate  # noqa: E402
from jobplane_trainer.train import TrainConfig, train  # noqa: E402


def truth(model_bytes: bytes, test: Sequence[Example]) -> tuple[float, float | None]:
    model = inference.Model.from_bytes(model_bytes)
    report, ents, _ = evaluate(model, test, labels=model.labels)
    return report["accuracy"], (ents["f1"] if ents and ents.get("support") else None)


def row(name: str, examples: list[Example], test: list[Example], *, seed: int) -> dict[str, float | str | None]:
    cfg = TrainConfig(seed=13)
    t0 = time.perf_counter()
    before = train(examples, cfg=cfg)
    t1 = time.perf_counter()
    training, held = hold_out(examples, fraction=DEFAULT_FRACTION, seed=cfg.seed)
    after = train(training, cfg=cfg, test=held)
    t2 = time.perf_counter()
    (acc_b, ent_b), (acc_a, ent_a) = truth(before.model, test), truth(after.model, test)
    return {"set": name, "draw": seed, "examples": len(examples), "heldOut": len(held),
            "testAccBefore": acc_b, "testAccAfter": acc_a, "testEntF1Before": ent_b, "testEntF1After": ent_a,
            "reportedBefore": before.summary["accuracy"], "reportedAfter": after.summary["accuracy"],
            "secondsBefore": t1 - t0, "secondsAfter": t2 - t1}


def show(r: dict[str, float | str | None]) -> None:
    ent = (f"{r['testEntF1Before']:13.4f} {r['testEntF1After']:7.4f}" if r["testEntF1Before"] is not None
           else f"{'-':>13} {'-':>7}")
    print(f"{r['set']:22} {r['draw']:>4} {r['examples']:>5} {r['heldOut']:>5} | {r['testAccBefore']:15.4f} {r['testAccAfter']:7.4f} "
          f"| {ent} | {r['reportedBefore']:15.4f} {r['reportedAfter']:7.4f} | {r['secondsBefore']:8.1f} {r['secondsAfter']:6.1f}",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--sets", default="snips,banking77", help="which data sets (comma-separated)")
    parser.add_argument("--data", type=Path, default=bench_trainer.DATA, help="the shared data sets (default ../shared/data)")
    args = parser.parse_args(argv)
    bench_trainer.DATA = args.data
    if not args.data.is_dir():
        print(f"{args.data} is absent: nothing to measure")
        return 0
    train_by, test_by = snips()
    snips_test = [e for intent in sorted(test_by) for e in test_by[intent]]
    bank_train, bank_test = banking()
    print(f"{'set':22} {'draw':>4} {'n':>5} {'held':>5} | {'test acc before':>15} {'after':>7} | {'ent F1 before':>13} {'after':>7} "
          f"| {'reported before':>15} {'after':>7} | {'s before':>8} {'after':>6}", flush=True)
    for draw in range(args.draws):
        if "snips" in args.sets:
            show(row("snips 30/intent", few_shot([e for v in train_by.values() for e in v], k=30, seed=draw), snips_test, seed=draw))
        if "banking77" in args.sets:
            show(row("banking77 10/intent", few_shot(bank_train, k=10, seed=draw), bank_test, seed=draw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
