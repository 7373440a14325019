"""What a job type is, for the plane: one module per type (``training``, ``kb_index``,
``bot_test``) gives a ``JobType`` with its params schema (``schemas/jobplane.json``), its
semantic params checks and its defaults; ``jobtypes`` registers them. Pure: no I/O. Also the
params names more than one type shares (a run for one bot, or ``bots: "all"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .. import checks as ck

Problems = ck.Problems
ParamsCheck = Callable[[Mapping[str, Any], str, ck.Problems], None]
"""``check(params, path, problems)``: append every problem the params schema cannot say
(the type's semantic rules), with its path. Called on params of any shape."""

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
    params_schema: str
    """Its params' definition in ``schemas/jobplane.json`` (the structural rules)."""
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
