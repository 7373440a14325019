"""The dashboard's pure shapes: the heatmap's colours, the sparkline's coordinates, next fire
times and a run's timings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobplane import conventions as c
from jobplane import dashboard
from jobplane.store.files import FileStore


def test_heatmap_normalises_each_row_and_marks_the_diagonal() -> None:
    found = dashboard.heatmap(["a", "b"], [[3, 1], [0, 0]])
    first, empty = found["rows"]
    assert found["labels"] == ["a", "b"] and first["total"] == 4
    assert [c["share"] for c in first["cells"]] == [0.75, 0.25]
    assert [c["diag"] for c in first["cells"]] == [True, False]
    assert [c["colour"] for c in empty["cells"]] == ["rgb(255,255,255)"] * 2, "a row with no cases stays white"
    assert first["cells"][0]["dark"] and not first["cells"][1]["dark"], "light text on the dark cells only"


def test_heatmap_colour_runs_from_white_to_dark_blue() -> None:
    cells = dashboard.heatmap(["a", "b"], [[0, 5], [5, 0]])["rows"][0]["cells"]
    assert [c["colour"] for c in cells] == ["rgb(255,255,255)", "rgb(8,48,107)"]


def test_sparkline_draws_higher_values_higher_and_keeps_the_last_point() -> None:
    line = dashboard.sparkline([0.0, 0.5, 1.0], width=100, height=20, pad=0)
    assert line is not None
    assert line["points"] == "0.0,20.0 50.0,10.0 100.0,0.0"
    assert line["last"] == {"x": 100.0, "y": 0.0, "value": 1.0} and (line["low"], line["high"]) == (0.0, 1.0)
    assert dashboard.sparkline([]) is None


@pytest.mark.parametrize(("spec", "expected"), [
    ({"schedule": "0 2 * * 0", "timezone": "UTC"},
     ["2026-12-06T02:00+00:00", "2026-12-13T02:00+00:00", "2026-12-20T02:00+00:00"]),
    ({"schedule": "30 3 * * *", "timezone": "America/New_York"},
     ["2026-12-05T03:30-05:00", "2026-12-06T03:30-05:00", "2026-12-07T03:30-05:00"]),
    ({}, []),
])
def test_next_fires_are_the_schedules_next_three_times_in_its_zone(spec: dict[str, str], expected: list[str]) -> None:
    found = dashboard.next_fires(spec, now=datetime(2026, 12, 5, 6, 0, tzinfo=UTC))
    assert [t["iso"] for t in found] == expected


def test_next_fires_read_as_weekday_day_month_and_local_time() -> None:
    found = dashboard.next_fires({"schedule": "0 2 * * 0", "timezone": "Europe/Berlin"},
                                 now=datetime(2026, 12, 5, 6, 0, tzinfo=UTC), count=1)
    assert found == [{"iso": "2026-12-06T02:00+01:00", "text": "Sun 06 Dec 02:00"}]


def test_stamps_read_as_utc_seconds() -> None:
    assert dashboard.stamp("2026-12-06T05:17:02.433Z") == "2026-12-06 05:17:02 UTC"
    assert dashboard.stamp(None) == "" and dashboard.stamp("soon") == "soon"


def test_timings_say_how_long_a_run_waited_and_ran() -> None:
    run = {"createdAt": "2026-12-01T09:00:00.000Z", "startedAt": "2026-12-01T09:00:02.500Z",
           "finishedAt": "2026-12-01T09:01:02.500Z"}
    assert dashboard.timings(run) == {"waited": 2.5, "ran": 60.0, "total": 62.5}
    assert dashboard.timings({"createdAt": run["createdAt"]}) == {"waited": None, "ran": None, "total": None}


def test_a_runs_events_read_many_at_a_time_stay_oldest_first(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store", fsync=False)
    for i in range(40):
        body = {"type": "dev.jobplane.run.progress", "time": f"t{i}", "data": {"progress": i, "phase": "intent"}}
        store.write(f"{c.run_events_prefix('r-1')}{i:016d}", json.dumps(body).encode())

    found = dashboard.events(store, "r-1", readers=8)

    assert [e["progress"] for e in found] == list(range(40))
    assert dashboard.events(store, "r-1", readers=1) == found
