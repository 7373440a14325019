"""A launcher that holds Jobs in a simulated cluster: a pool of N GPUs, admission in FIFO order
or Kueue-style (two queues: interactive ahead of batch, batch capped at a quota), each Job
finishing after a duration drawn by the world; finished Jobs are deleted after their TTL.
It implements the launcher port, so the real launch and reconcile code talk to it."""

from __future__ import annotations

import heapq
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobplane import conventions as c
from jobplane.launcher.base import JobState, JobStatus

INTERACTIVE, BATCH = 0, 1


@dataclass
class SimJob:
    name: str
    run_id: str
    bot: str
    type: str
    gpus: int
    labels: dict[str, str]
    data_uri: str | None
    klass: int
    token: str
    """The callback token the Job was given (its env), as the trainer sends it."""
    created: float
    duration: float
    started: float | None = None
    finished: float | None = None
    state: JobState = "queued"
    order: int = 0


@dataclass
class Pool:
    gpus: int
    kueue: bool = False
    batch_quota: int = 0
    """Kueue: GPUs the batch queue may hold at most (the interactive queue may use them all)."""
    busy: int = 0
    busy_batch: int = 0
    queues: tuple[list[tuple[int, str]], list[tuple[int, str]]] = field(default_factory=lambda: ([], []))


class SimLauncher:
    def __init__(self, *, pool: Pool, now: Callable[[], float], duration: Callable[[SimJob], float],
                 classify: Callable[[str, str], int], at: Callable[[float, Callable[[], None]], None],
                 finish: Callable[[SimJob], None], ttl: float = 3600.0) -> None:
        self.pool, self._now, self._duration, self._classify = pool, now, duration, classify
        self._at, self._finish, self.ttl = at, finish, ttl
        self.jobs: dict[str, SimJob] = {}
        self.created = 0
        self.gpu_seconds = 0.0
        self.waits: dict[int, list[float]] = {INTERACTIVE: [], BATCH: []}
        self.bot_jobs: dict[str, int] = {}
        self.crowded: set[str] = set()
        """Bots holding more than one training Job right now (checked between events)."""
        self.peak_jobs = 0
        self._order = 0
        self._lock = threading.RLock()
        """The launch code cancels superseded Jobs from its worker threads."""

    # --- the launcher port ---

    def launch(self, job: Mapping[str, Any]) -> JobStatus:
        with self._lock:
            return self._launch(job)

    def _launch(self, job: Mapping[str, Any]) -> JobStatus:
        name = str(job["metadata"]["name"])
        if name in self.jobs:
            return self._status(self.jobs[name])
        labels = dict(job["metadata"].get("labels") or {})
        pod = job["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        params = json.loads(env.get(c.ENV_PARAMS) or "{}")
        gpus = int((container.get("resources") or {}).get("limits", {}).get("nvidia.com/gpu", "0"))
        run_id = labels.get(c.LABEL_RUN_ID, name)
        sim = SimJob(name=name, run_id=run_id, bot=labels.get(c.LABEL_BOT_ID, ""), type=labels.get(c.LABEL_TYPE, ""),
                     gpus=gpus, labels=labels, data_uri=(params.get("trainingData") or {}).get("uri"),
                     klass=self._classify(labels.get(c.LABEL_TYPE, ""), str(pod.get("priorityClassName") or "")), token=str(env.get(c.ENV_TOKEN) or ""),
                     created=self._now(), duration=0.0)
        sim.duration = self._duration(sim)
        self._order += 1
        sim.order = self._order
        self.jobs[name] = sim
        self.created += 1
        self.peak_jobs = max(self.peak_jobs, len(self.jobs))
        if sim.type == "training":
            self._hold(sim.bot, +1)
        if sim.gpus == 0:
            self._start(sim)
        else:
            heapq.heappush(self.pool.queues[sim.klass if self.pool.kueue else INTERACTIVE], (sim.order, name))
            self._admit()
        return JobStatus(name=name, namespace="default", state=sim.state, labels=labels, created=True)

    def describe(self, name: str) -> JobStatus:
        sim = self.jobs.get(name)
        return self._status(sim) if sim else JobStatus(name=name, namespace="default", state="missing")

    def cancel(self, name: str) -> None:
        with self._lock:
            self._cancel(name)

    def _cancel(self, name: str) -> None:
        sim = self.jobs.pop(name, None)
        if sim is None:
            return
        if sim.state == "running":
            self._release(sim)
        if sim.state in ("queued", "running") and sim.type == "training":
            self._hold(sim.bot, -1)
        sim.state = "missing"  # a queued one is skipped when its turn comes
        self._admit()

    def list(self, labels: Mapping[str, str]) -> list[JobStatus]:
        with self._lock:
            return [self._status(j) for j in self.jobs.values() if all(j.labels.get(k) == v for k, v in labels.items())]

    # --- the cluster ---

    def _status(self, sim: SimJob) -> JobStatus:
        return JobStatus(name=sim.name, namespace="default", state=sim.state, labels=sim.labels)

    def _admit(self) -> None:
        pool = self.pool
        while pool.busy < pool.gpus:
            sim = self._next()
            if sim is None:
                return
            self._start(sim)

    def _next(self) -> SimJob | None:
        pool = self.pool
        for klass, queue in enumerate(pool.queues):
            if pool.kueue and klass == BATCH and pool.busy_batch >= pool.batch_quota:
                continue
            while queue:
                _, name = queue[0]
                sim = self.jobs.get(name)
                if sim is None or sim.state != "queued":
                    heapq.heappop(queue)
                    continue
                if pool.busy + sim.gpus > pool.gpus:
                    return None
                heapq.heappop(queue)
                return sim
        return None

    def _start(self, sim: SimJob) -> None:
        now = self._now()
        sim.state, sim.started = "running", now
        if sim.gpus:
            self.pool.busy += sim.gpus
            if sim.klass == BATCH:
                self.pool.busy_batch += sim.gpus
            self.waits[sim.klass].append(now - sim.created)
        self._at(now + sim.duration, lambda: self._done(sim))

    def _release(self, sim: SimJob) -> None:
        if sim.gpus and sim.started is not None:
            self.gpu_seconds += sim.gpus * (self._now() - sim.started)
            self.pool.busy -= sim.gpus
            if sim.klass == BATCH:
                self.pool.busy_batch -= sim.gpus

    def _done(self, sim: SimJob) -> None:
        with self._lock:
            self._end(sim)

    def _end(self, sim: SimJob) -> None:
        if self.jobs.get(sim.name) is not sim or sim.state != "running":
            return  # cancelled meanwhile
        self._finish(sim)  # the trainer's final callback, through status
        self._release(sim)
        sim.state, sim.finished = "succeeded", self._now()
        if sim.type == "training":
            self._hold(sim.bot, -1)
        self._at(self._now() + self.ttl, lambda: self._expire(sim))
        self._admit()

    def _expire(self, sim: SimJob) -> None:
        if self.jobs.get(sim.name) is sim:
            del self.jobs[sim.name]  # ttlSecondsAfterFinished

    def _hold(self, bot: str, delta: int) -> None:
        count = self.bot_jobs.get(bot, 0) + delta
        self.bot_jobs[bot] = count
        if count > 1:
            self.crowded.add(bot)
        else:
            self.crowded.discard(bot)
