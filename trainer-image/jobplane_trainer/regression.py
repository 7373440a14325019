"""A bot test's figures against the previous succeeded test of the same spec and bot (pure).

Compared: accuracy, macro-F1 and entity F1 overall, and F1 per intent (intents with test
cases in both runs). A figure got worse when it dropped by more than ``maxDrop`` (absolute);
any such drop makes the run fail with reason ``Regression``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

DEFAULT_MAX_DROP: Final = 0.05
OVERALL: Final = ("accuracy", "macro_f1", "entity_f1")
FIRST_RUN_NOTE: Final = "first bot test of this spec and bot: nothing to compare with"


def compare(current: Mapping[str, Any], previous: Mapping[str, Any] | None, *, max_drop: float,
            baseline_run: str | None = None) -> dict[str, Any]:
    """``{"baselineRunId", "maxDrop", "overall": {name: {"previous", "current", "change"}},
    "intents": {...}, "worse": {"overall": {name: drop}, "intents": {intent: drop}}}``, or a
    note when there is nothing to compare with."""
    if previous is None:
        return {"baselineRunId": None, "maxDrop": max_drop, "note": FIRST_RUN_NOTE, "regressed": False,
                "worse": {"overall": {}, "intents": {}}}
    overall = {name: _change(previous.get(name), current.get(name)) for name in OVERALL
               if _number(previous.get(name)) and _number(current.get(name))}
    before, now = _per_intent_f1(previous), _per_intent_f1(current)
    intents = {name: _change(before[name], now[name]) for name in sorted(before.keys() & now.keys())}
    worse = {"overall": _drops(overall, max_drop), "intents": _drops(intents, max_drop)}
    out: dict[str, Any] = {"baselineRunId": baseline_run, "maxDrop": max_drop, "overall": overall, "intents": intents,
                           "worse": worse, "regressed": bool(worse["overall"] or worse["intents"])}
    if previous.get("casesHash") and previous.get("casesHash") != current.get("casesHash"):
        out["note"] = "the test cases differ from the baseline's (a new model's held-out split, or new tests)"
    return out


def message(comparison: Mapping[str, Any]) -> str:
    """One line naming what got worse, by how much, against which run."""
    worse = comparison["worse"]
    parts = [f"{name} {_pts(drop)}" for name, drop in worse["overall"].items()]
    if worse["intents"]:
        listed = ", ".join(f"{name} {_pts(drop)}" for name, drop in sorted(worse["intents"].items(), key=lambda kv: kv[1]))
        parts.append(f"intents got worse (F1): {listed}")
    return (f"dropped more than maxDrop {comparison['maxDrop']} since run {comparison['baselineRunId']}: "
            + "; ".join(parts))


def _per_intent_f1(figures: Mapping[str, Any]) -> dict[str, float]:
    per = figures.get("per_intent") if isinstance(figures.get("per_intent"), Mapping) else {}
    return {name: float(v["f1"]) for name, v in (per or {}).items()
            if isinstance(v, Mapping) and _number(v.get("f1")) and v.get("support")}


def _change(before: Any, now: Any) -> dict[str, float]:
    return {"previous": round(float(before), 6), "current": round(float(now), 6), "change": round(float(now) - float(before), 6)}


def _drops(changes: Mapping[str, Mapping[str, float]], max_drop: float) -> dict[str, float]:
    return {name: c["change"] for name, c in changes.items() if -c["change"] > max_drop + 1e-9}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _pts(drop: float) -> str:
    return f"{drop:+.3f}"
