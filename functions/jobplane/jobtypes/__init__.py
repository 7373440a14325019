"""The job types the plane runs, registered in this one place.

Each type is one module (``training``, ``kb_index``, ``bot_test``) whose ``JOB_TYPE`` says how
its params are checked and its defaults (Kueue queue, resources, timeout, fan-out, a bot's own
spec id). Spec validation, the Job builder and the launch function read them from here; the
trainer image has the matching table of entry points (``jobplane_trainer.jobtypes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from . import bot_test, kb_index, training
from .base import JobType

REGISTRY: Final[Mapping[str, JobType]] = {t.name: t for t in (training.JOB_TYPE, kb_index.JOB_TYPE, bot_test.JOB_TYPE)}
NAMES: Final = tuple(REGISTRY)


def get(name: object) -> JobType | None:
    """The registered type called ``name``, else None."""
    return REGISTRY.get(name) if isinstance(name, str) else None
