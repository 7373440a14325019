"""What one simulated week measured (``World.run``'s answer)."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Report:
    scenario: str
    bots: int
    days: float
    gpus: int
    events: int = 0
    jobs_created: int = 0
    training_jobs: int = 0
    test_jobs: int = 0
    gpu_hours: float = 0.0
    wait_p50_s: float = 0.0
    wait_p99_s: float = 0.0
    wait_interactive_p50_s: float = 0.0
    wait_interactive_p99_s: float = 0.0
    wait_batch_p50_s: float = 0.0
    wait_batch_p99_s: float = 0.0
    change_to_model_p50_s: float = 0.0
    change_to_model_p99_s: float = 0.0
    changes: int = 0
    runs_by_outcome: dict[str, int] = field(default_factory=dict)
    stale_models: int = 0
    """Bots whose promoted model is not trained on their newest data at the end."""
    unresolved_changes: int = 0
    crowded_moments: int = 0
    """Moments (between events) when some bot held two training Jobs at once."""
    lost_runs: int = 0
    open_runs: int = 0
    dead_letters: int = 0
    peak_job_objects: int = 0
    store_reads: int = 0
    store_writes: int = 0
    store_lists: int = 0
    store_listed_keys: int = 0
    hottest_writes_per_s: int = 0
    hottest_key: str = ""
    objects: int = 0
    objects_per_run: float = 0.0
    reconcile_passes: int = 0
    reconcile_reads_max: int = 0
    reconcile_reads_total: int = 0
    reconcile_active_max: int = 0
    """Active runs at the pass with the most: what a pass reading every active run's record reads."""
    reconcile_active_total: int = 0
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, max(0, round(q * 100) - 1))]
