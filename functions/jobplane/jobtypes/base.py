"""What a job type is, for the plane: one module per type (``training``, ``kb_index``,
``bot_test``) gives a ``JobType`` with its params check and its defaults; ``jobtypes``
registers them. Pure: no I/O. Also the params rules more than one type shares (a run for
one bot, or ``bots: "all"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .. import checks as ck
from ..errors import Problem

Problems = ck.Problems
ParamsCheck = Callable[..., None]
"""``check(params, path, problems, *, require_data)``: append every problem with its path."""

MAX_ID: Final = ck.MAX_LABEL
TRAINING_PREFIX: Final = "train-"
MAX_BOT_ID: Final = MAX_ID - len(TRAINING_PREFIX)
"""So that ``train-{botId}`` is itself a DNS-1123 label."""
MAX_REPORTED: Final = 100
"""Problems reported per list; a broken 10,000-line file needs no 10,000 lines back."""
FAN_OUT_FIELD: Final = "bots"
ALL_BOTS: Final = "all"
PER_BOT_DATA: Final = ("trainingData", "testData", "tests")
"""Params naming one bot's data, which a fan-out spec cannot carry."""
DEFAULT_RESOURCES: Final[Mapping[str, Any]] = {"gpus": 0, "cpu": "2", "memory": "4Gi"}


@dataclass(frozen=True)
class JobType:
    """One job type: how its params are checked, where its Jobs queue, what they get by default."""

    name: str
    check_params: ParamsCheck
    entrypoint: str
    """What the trainer image runs (``module:function``; the image's ``jobtypes`` maps the type to it)."""
    queue: str
    """Its Kueue LocalQueue (``knative/components/kueue/local_queue_*.yaml``)."""
    resources: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    timeout_seconds: int = 3600
    fan_out: bool = False
    """Whether a spec may name ``bots: "all"`` (one run per bot)."""
    bot_spec_prefix: str | None = None
    """A bot's own spec of this type is ``{prefix}{botId}`` (made from defaults when first needed)."""


def target(params: Mapping[str, Any], path: str, problems: Problems) -> bool:
    """Check ``botId``, or ``bots: "all"`` and no per-bot data; whether the params fan out."""
    if FAN_OUT_FIELD not in params:
        if ck.required(params, "botId", path, problems):
            ck.label(params["botId"], f"{path}.botId", problems, max_len=MAX_BOT_ID)
        return False
    if "botId" in params:
        problems.append(Problem(path, f"must have exactly one of botId or {FAN_OUT_FIELD}"))
    if params[FAN_OUT_FIELD] != ALL_BOTS:
        problems.append(Problem(f"{path}.{FAN_OUT_FIELD}", f"must be {ALL_BOTS!r} (one run per bot), got {params[FAN_OUT_FIELD]!r}"))
    for name in PER_BOT_DATA:
        if name in params:
            problems.append(Problem(f"{path}.{name}", f"not allowed with {FAN_OUT_FIELD}: every bot has its own data"))
    return True



