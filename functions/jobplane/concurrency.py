"""Concurrency policies of a job spec, with CronJob's meaning, as a pure decision.

Keyed by spec and bot: a new run of spec S for bot B looks only at the other active runs of S
for B. ``Allow`` runs beside them; ``Forbid`` skips the new run while one is active;
``Replace`` supersedes the active ones (their Jobs are deleted) and runs the new one. The launch
handler does the I/O: it reads the run that holds the (spec, bot) slot (``jobplane.slots``),
calls ``decide``, and acts on the decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

POLICIES: Final = ("Allow", "Forbid", "Replace")
ACTIVE_STATES: Final = frozenset({"requested", "launched", "queued", "running"})

Action = Literal["run", "skip", "replace"]


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str | None = None
    """Why the new run is skipped or others are superseded (for the run records)."""
    supersede: list[str] = field(default_factory=list)
    """Ids of the runs to mark ``superseded`` (and whose Jobs to delete) before launching."""


def decide(policy: str, *, active: Iterable[Mapping[str, Any]], exclude: str | None = None) -> Decision:
    """What to do with a new run given the other active runs of its spec and bot.

    ``exclude`` is the new run's own id: a redelivered trigger finds its own run active and
    must not skip or supersede itself.
    """
    others = sorted(
        str(r["id"]) for r in active if r.get("id") != exclude and r.get("state", "running") in ACTIVE_STATES
    )
    if policy not in POLICIES:
        raise ValueError(f"concurrency must be one of {', '.join(POLICIES)}, got {policy!r}")
    if policy == "Allow" or not others:
        return Decision("run")
    if policy == "Forbid":
        return Decision("skip", reason=f"ConcurrencyForbid: run {', '.join(others)} is still active")
    return Decision("replace", reason=f"ConcurrencyReplace: superseded by {exclude or 'a newer run'}", supersede=others)


def same_key(run: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether two runs share the concurrency key (spec id, bot id)."""
    return run.get("specId") == other.get("specId") and run.get("botId") == other.get("botId")
