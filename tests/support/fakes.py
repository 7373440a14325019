"""Fakes of the ports, written as small classes (no mock.patch)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from jobplane.errors import JobplaneError
from jobplane.launcher.base import JobStatus


class FakeLauncher:
    """Implements the Launcher protocol in memory; records every call.

    ``fail_with`` (an exception) makes the next ``launch`` calls raise it until cleared.
    """

    def __init__(self, *, namespace: str = "default") -> None:
        self.namespace = namespace
        self.jobs: dict[str, dict[str, Any]] = {}
        self.states: dict[str, str] = {}
        self.launch_calls: list[str] = []
        self.cancelled: list[str] = []
        self.fail_with: JobplaneError | None = None
        self._lock = threading.Lock()

    def launch(self, job: Mapping[str, Any]) -> JobStatus:
        name = str(job["metadata"]["name"])
        with self._lock:
            self.launch_calls.append(name)
            if self.fail_with is not None:
                raise self.fail_with
            created = name not in self.jobs
            self.jobs.setdefault(name, dict(job))
            self.states.setdefault(name, "running")
        return self._status(name, created=created)

    def describe(self, name: str) -> JobStatus:
        return self._status(name)

    def cancel(self, name: str) -> None:
        with self._lock:
            self.cancelled.append(name)
            self.jobs.pop(name, None)
            self.states.pop(name, None)

    def list(self, labels: Mapping[str, str]) -> list[JobStatus]:
        with self._lock:
            names = [
                n for n, job in self.jobs.items()
                if all(job["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())
            ]
        return [self._status(n) for n in names]

    def _status(self, name: str, *, created: bool = False) -> JobStatus:
        job = self.jobs.get(name)
        if job is None:
            return JobStatus(name=name, namespace=self.namespace, state="missing")
        return JobStatus(
            name=name,
            namespace=self.namespace,
            state=self.states[name],  # type: ignore[arg-type]
            labels=dict(job["metadata"].get("labels", {})),
            created=created,
        )
