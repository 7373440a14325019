"""The launcher port: run a batch/v1 Job manifest somewhere and ask how it went.

The same manifest (built by ``jobplane.manifests.build_job``, pure) goes to Kubernetes in the
cloud adapter and to local processes in the embedded one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from ..queueing import QueueInfo

JobState = Literal["queued", "running", "succeeded", "failed", "missing"]


@dataclass(frozen=True)
class JobStatus:
    """What a launcher knows of one Job."""

    name: str
    namespace: str
    state: JobState
    reason: str | None = None
    """Kubernetes' reason when failed: BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy, …"""
    message: str | None = None
    failed_pods: int = 0
    """Attempts (pods) of the Job that failed so far (Kubernetes' ``status.failed``)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    created: bool = False
    """True when ``launch`` created it now; False when it already existed (a redelivery)."""
    queue: QueueInfo | None = None
    """Where a ``queued`` Job waits (its Kueue Workload, or the embedded plane's quota)."""


@runtime_checkable
class Launcher(Protocol):
    """Implemented by ``local.LocalLauncher`` and ``kubernetes.KubernetesLauncher``."""

    def launch(self, job: Mapping[str, Any]) -> JobStatus:
        """Create the Job. A Job of the same name that exists already is success
        (``created=False``), so a redelivered event never makes a second Job."""
        ...

    def describe(self, name: str) -> JobStatus:
        """The Job's state (``missing`` when there is no such Job)."""
        ...

    def cancel(self, name: str) -> None:
        """Delete the Job and its pods; a missing Job is not an error."""
        ...

    def list(self, labels: Mapping[str, str]) -> list[JobStatus]:
        """Jobs whose labels include all of ``labels``."""
        ...
