"""The scale simulator (``benchmarks/sim``) on a small world: 100 bots, two days, a bulk edit
and editors saving a bot 20 times in a minute, through the real launch, status and reconcile
code. Its invariants: every change ends served by a model trained on the bot's newest data, no
bot holds two Jobs at once, no run is lost or left open."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

pytest.importorskip("sortedcontainers", reason="the simulator's store needs sortedcontainers (the dev extra)")

from sim.report import Report  # noqa: E402
from sim.world import Scenario, run  # noqa: E402

SMALL = {"bots": 100, "days": 2.0, "gpus": 2, "bulk_edit": 50, "saving_editors": 2, "seed": 5}


@pytest.fixture(scope="module")
def jobplane() -> Report:
    return run(Scenario("jobplane", **SMALL))  # type: ignore[arg-type]


def test_every_change_ends_with_a_model_trained_on_the_bots_newest_data(jobplane: Report) -> None:
    assert jobplane.changes > 100
    assert jobplane.unresolved_changes == 0 and jobplane.stale_models == 0


def test_no_bot_holds_two_jobs_at_once_and_no_run_is_lost(jobplane: Report) -> None:
    assert jobplane.crowded_moments == 0
    assert jobplane.lost_runs == 0 and jobplane.open_runs == 0 and jobplane.dead_letters == 0


def test_a_burst_of_saves_is_coalesced_and_unchanged_data_reuses_a_model(jobplane: Report) -> None:
    outcomes = jobplane.runs_by_outcome
    assert outcomes.get("training superseded ConcurrencyReplace", 0) >= 19  # 20 saves in a minute, one survives
    assert outcomes.get("training skipped CacheHit", 0) > 0
    assert jobplane.training_jobs < jobplane.changes


def test_one_job_per_event_is_what_the_invariants_catch(jobplane: Report) -> None:
    per_event = run(Scenario("per event", replace=False, cache=False, **SMALL))  # type: ignore[arg-type]

    assert per_event.crowded_moments > 0  # the same bot trains twice at once
    assert per_event.training_jobs > jobplane.training_jobs


def test_the_reconciler_reads_far_fewer_records_than_there_are_active_runs(jobplane: Report) -> None:
    """A pass reads the runs whose Jobs ended, vanished or moved in the queue, not every active one."""
    assert jobplane.reconcile_active_max > 0
    assert jobplane.reconcile_reads_total * 4 < jobplane.reconcile_active_total
