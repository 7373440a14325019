"""The simulated world: a clock, a broker, a change stream with bursts, and the plane's real
code. Every event goes through ``jobplane.handlers.launch.on_event``; every Job's end goes
through ``jobplane.handlers.status.on_event`` with the run's callback token; the reconciler
(``jobplane.reconcile.reconcile``) runs on its schedule. Only the adapters are simulated: the
store (in memory), the launcher (a GPU pool), the broker (a time-ordered queue with retries)
and the trainer (it sleeps for a duration drawn from the trainer's measured times, then
reports success, promoting its model as the trainer image does).
"""

from __future__ import annotations

import heapq
import importlib.util
import itertools
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jobplane import cache, reconcile, runs
from jobplane import conventions as c
from jobplane import events as ev
from jobplane import spec as specs
from jobplane.errors import JobplaneError
from jobplane.handlers import launch, status
from jobplane.runtime import Runtime
from jobplane.settings import Settings

from .launcher import BATCH, INTERACTIVE, Pool, SimJob, SimLauncher
from .report import Report, percentile
from .store import MemoryStore

KEY = b"s" * 32
START = datetime(2027, 1, 4, tzinfo=UTC)  # a Monday
DAY = 86_400.0
BOTS_SOURCE = "/platform/bots"
PINGS = "/apis/v1/namespaces/default/pingsources/"
SPECS_DIR = Path(__file__).resolve().parents[2] / "functions" / "jobplane" / "data" / "specs"
RESULTS = Path(__file__).resolve().parents[1]
STATUS_PROMOTES = importlib.util.find_spec("jobplane.promotion") is not None
"""Where the status function promotes models (``jobplane.promotion``) the fake trainer does not."""


def trainer_times() -> list[float]:
    """Measured training wall seconds of the trainer (``benchmarks/trainer_results*.json``,
    the jobplane rows: five data sets, three configurations)."""
    found: list[float] = []
    for path in sorted(RESULTS.glob("trainer_results*.json")):
        for rows in json.loads(path.read_text()).values():
            for row in rows if isinstance(rows, list) else []:
                if isinstance(row, dict) and str(row.get("system", "")).startswith("jobplane") and row.get("train_s"):
                    found.append(float(row["train_s"]))
    return found or [60.0]


@dataclass
class Scenario:
    name: str
    bots: int = 10_000
    days: float = 7.0
    gpus: int = 16
    replace: bool = True
    """Bots' training specs say ``concurrency: Replace`` (else ``Allow``: one Job per event)."""
    cache: bool = True
    """The result cache is asked (else every request says ``force: true``)."""
    kueue: bool = False
    batch_quota: int = 0
    """Kueue: GPUs the batch queue may hold (0: three quarters of the pool)."""
    changes_per_bot_day: float = 100 / 500
    same_data: float = 0.3
    """Share of changes that leave the training data as it was (a response text edited)."""
    revert: float = 0.1
    """Share of changes that restore the bot's previous training data (an undo, a rollback)."""
    bulk_edit: int = 1000
    saving_editors: int = 0
    """Bots whose editor saves 20 times in a minute, per day (0: one per 500 bots)."""
    saves: int = 20
    weekly: bool = True
    release_sweep: bool = True
    """A trainer release on the fourth day: ``retrain-all`` with ``force: true`` at 09:00
    (every bot's inputs changed: nothing is cached); the weekly sweep on Sunday is the plain one."""
    nightly: bool = True
    startup_s: float = 45.0
    """A Job's pod start (scheduling, image, data download) before training proper."""
    test_s: float = 20.0
    reconcile_every: float = 300.0
    seed: int = 17


@dataclass
class Bot:
    id: str
    contents: list[int]
    """Content ids of its training data, one per change (index 0: the data before the week)."""
    times: list[float]
    pending: list[int] = field(default_factory=list)
    model_content: int = 0
    revisions: int = 0


class World:
    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self.rand = random.Random(scenario.seed)
        self.now_s = 0.0
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.store = MemoryStore(second=lambda: int(self.now_s))
        self.store.on_write = self._on_write
        quota = scenario.batch_quota or max(1, scenario.gpus * 3 // 4)
        self.launcher = SimLauncher(pool=Pool(gpus=scenario.gpus, kueue=scenario.kueue, batch_quota=quota),
                                    now=lambda: self.now_s, duration=self._job_created, classify=self._classify,
                                    at=self.at, finish=self._trainer_done)
        defaults = {"concurrency": "Replace" if scenario.replace else "Allow",
                    "resources": {"gpus": 1, "cpu": "4", "memory": "16Gi"}, "timeoutSeconds": 7200}
        settings = Settings(store_url=self.store.url, sink="http://sim/default/default", callback_key=KEY,
                            default_training=defaults, command=("true",))
        self.rt = Runtime(settings=settings, store=self.store, launcher_factory=lambda: self.launcher,
                          send=self._send, clock=self.clock)
        self.seen = reconcile.Seen()
        self.times = trainer_times()
        self.bots: dict[str, Bot] = {}
        self.size: dict[str, float] = {}
        self.data_content: dict[str, int] = {}
        self.run_content: dict[str, int] = {}
        self.expected_runs: set[str] = set()
        self.report = Report(scenario=scenario.name, bots=scenario.bots, days=scenario.days, gpus=scenario.gpus)
        self.latencies: list[float] = []
        self._next_content = itertools.count(1)

    # --- time ---

    def clock(self) -> datetime:
        return START + timedelta(seconds=self.now_s)

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), action))

    def run(self) -> Report:
        """The week, with the plane's INFO lines silenced while it runs (and only then: a test
        run in the same process logs as before)."""
        logger = logging.getLogger("jobplane")
        saved = logger.level
        logger.setLevel(logging.WARNING)
        try:
            return self._run()
        finally:
            logger.setLevel(saved)

    def _run(self) -> Report:
        started = time.perf_counter()
        self._seed()
        self._plan_week()
        while self._heap:
            when, _, action = heapq.heappop(self._heap)
            self.now_s = max(self.now_s, when)
            action()
            if self.launcher.crowded:
                self.report.crowded_moments += 1
        self._pass()
        self._finish_report()
        self.report.wall_s = round(time.perf_counter() - started, 1)
        return self.report

    # --- the world before the week: every bot trained once ---

    def _seed(self) -> None:
        for spec_file in ("retrain-all.json", "nightly-bot-tests.json"):
            spec = json.loads((SPECS_DIR / spec_file).read_text())
            self.store.write(c.spec_key(spec["id"]), json.dumps(spec).encode())
        for n in range(self.s.bots):
            bot = f"bot-{n:05d}"
            self.bots[bot] = Bot(id=bot, contents=[0], times=[-DAY])
            self.size[bot] = self.rand.choice(self.times)
            data_key = self._write_data(bot, "r0", 0)
            spec = specs.training_spec_for_bot(bot, defaults=self.rt.settings.default_training)
            spec = dict(spec, params={**spec["params"], "trainingData": {"uri": self.store.uri(data_key)}})
            self.store.write(c.spec_key(spec["id"]), json.dumps(spec).encode())
            run = runs.new_run(spec=spec, trigger={"type": "seed", "source": "/sim/seed", "id": bot},
                               requested_by="sim", now=START - timedelta(days=1))
            run = runs.transition(run, "succeeded", now=START - timedelta(days=1))
            model = self.store.uri(f"runs/{run['id']}/artifacts/model.npz")
            run.update(artifacts={"model": model}, metrics={"macro_f1": 0.9}, cacheKey=cache.key_for(spec, self.store, self.rt.settings),
                       modelUri=model, promoted=True, gate={"decision": "promoted"})  # the seed points the bot at it
            runs.create_record(self.store, run)
            cache.remember(self.store, run)
            self.run_content[run["id"]] = 0
            self._point(bot, run["id"], spec["id"], model)

    def _write_data(self, bot: str, revision: str, content: int) -> str:
        key = f"{c.bot_data_prefix(bot)}{revision}.json"
        self.store.write(key, _dump(examples(content)))
        self.data_content[key] = content
        return key

    # --- the week's events ---

    def _plan_week(self) -> None:
        s, days = self.s, self.s.days
        names = list(self.bots)
        weights = [1.0 / (1 + i) ** 0.8 for i in range(len(names))]  # some bots are edited far more than others
        count = round(s.changes_per_bot_day * s.bots * days)
        for bot in self.rand.choices(names, weights=weights, k=count):
            day = self.rand.randrange(max(1, int(days)))
            hour = self.rand.uniform(8, 18) if self.rand.random() < 0.75 else self.rand.uniform(0, 24)
            self.at(day * DAY + hour * 3600, lambda b=bot: self._change(b))
        if s.bulk_edit and days >= 1:
            for i, bot in enumerate(self.rand.sample(names, min(s.bulk_edit, len(names)))):
                self.at(1 * DAY + 10 * 3600 + i * 0.001, lambda b=bot: self._change(b, new=True))
        editors = s.saving_editors or max(1, s.bots // 500)
        for day in range(int(days)):
            for bot in self.rand.sample(names, min(editors, len(names))):
                begin = day * DAY + self.rand.uniform(9, 17) * 3600
                for k in range(s.saves):
                    self.at(begin + k * 60.0 / s.saves, lambda b=bot: self._change(b, new=True))
        for day in range(int(days)):
            if s.nightly:
                self.at(day * DAY + 3.5 * 3600, lambda d=day: self._ping("nightly-bot-tests", d))
            if s.weekly and (START + timedelta(days=day)).weekday() == 6:
                self.at(day * DAY + 2 * 3600, lambda d=day: self._ping("retrain-all", d))
            if s.release_sweep and day == 3:
                self.at(day * DAY + 9 * 3600, lambda d=day: self._ping("retrain-all", d, force=True))
        t = s.reconcile_every
        while t < days * DAY:
            self.at(t, self._pass)
            t += s.reconcile_every

    def _change(self, bot_id: str, *, new: bool = False) -> None:
        bot = self.bots[bot_id]
        roll = self.rand.random()
        distinct = list(dict.fromkeys(reversed(bot.contents)))
        if not new and roll < self.s.same_data:
            content = bot.contents[-1]
        elif not new and roll < self.s.same_data + self.s.revert and len(distinct) > 1:
            content = distinct[1]
        else:
            content = next(self._next_content)
        bot.revisions += 1
        revision = f"r{bot.revisions}"
        self.data_content[f"{c.bot_data_prefix(bot_id)}{revision}.json"] = content
        bot.contents.append(content)
        bot.times.append(self.now_s)
        bot.pending.append(len(bot.contents) - 1)
        self.report.changes += 1
        data: dict[str, Any] = {"botId": bot_id, "revision": revision, "trainingData": examples(content)}
        if not self.s.cache:
            data["force"] = True
        event = ev.new_event(ev.BOT_CHANGED, source=BOTS_SOURCE, id=f"{bot_id}-{revision}", subject=bot_id, data=data)
        self.expected_runs.add(runs.run_id_for(f"train-{bot_id}", source=BOTS_SOURCE, event_id=event.id))
        self._deliver(event)
        if bot.model_content == content:
            self._resolve(bot, content)  # its model already is of this data (a cache hit, no new training)

    def _ping(self, spec_id: str, day: int, *, force: bool = False) -> None:
        data: dict[str, Any] = {"specId": spec_id}
        if force or not self.s.cache:
            data["force"] = True
        event = ev.new_event(ev.PING, source=PINGS + spec_id, id=f"{spec_id}-day{day}", data=data)
        self.expected_runs.add(runs.run_id_for(spec_id, source=event.source, event_id=event.id))
        self._deliver(event)

    # --- the broker ---

    def _send(self, event: ev.Event) -> None:
        """Events the plane sends (fan-out's run.requested) reach launch a moment later."""
        data = event.data if isinstance(event.data, dict) else {}
        run_id = runs.run_id_for(str(data.get("specId")), source=event.source, event_id=event.id)
        self.expected_runs.add(run_id)
        self.at(self.now_s + 0.01, lambda: self._deliver(event))

    def _deliver(self, event: ev.Event, attempt: int = 0) -> None:
        self.report.events += 1
        try:
            launch.on_event(event, rt=self.rt)
        except JobplaneError as e:
            if e.retryable and attempt < 5:
                self.at(self.now_s + 2.0 ** attempt, lambda: self._deliver(event, attempt + 1))
            else:
                self.report.dead_letters += 1

    # --- the cluster's side ---

    def _classify(self, job_type: str, priority_class: str) -> int:
        """Kueue's view: a Job's priority class (the fan-out's runs are ``low``, ``queueing``)."""
        return BATCH if job_type != "training" or priority_class.endswith("-low") else INTERACTIVE

    def _job_created(self, job: SimJob) -> float:
        if job.type != "training":
            return self.s.test_s + self.rand.uniform(0, 10)
        key = (job.data_uri or "").removeprefix(self.store.url + "/")
        self.run_content[job.run_id] = self.data_content.get(key, -1)
        return self.s.startup_s + self.size.get(job.bot, 60.0) * self.rand.uniform(0.8, 1.2)

    def _trainer_done(self, job: SimJob) -> None:
        """The trainer's end: its artifacts, its promotion (where the trainer promotes), its
        final callback through the status function."""
        model = self.store.uri(f"runs/{job.run_id}/artifacts/model.npz")
        data: dict[str, Any] = {"metrics": {"accuracy": 0.9, "macro_f1": 0.9}, "artifacts": {"model": model}}
        if job.type == "training":
            self.store.write(f"runs/{job.run_id}/artifacts/metrics.json", b"{}")
            if not STATUS_PROMOTES:
                data["promoted"] = self._point(job.bot, job.run_id, job.labels.get(c.LABEL_SPEC_ID, ""), model)
        event = ev.new_event(ev.RUN_SUCCEEDED, source=f"/jobplane/trainer/{job.run_id}", subject=job.run_id, data=data,
                             id=f"{job.run_id}-final", extensions={c.TOKEN_EXTENSION: job.token})
        try:
            status.on_event(event, rt=self.rt)
        except JobplaneError:
            self.report.dead_letters += 1

    def _point(self, bot: str, run_id: str, spec_id: str, model: str) -> bool:
        pointer = {"botId": bot, "runId": run_id, "specId": spec_id, "modelUri": model, "metrics": {"macro_f1": 0.9}}
        self.store.write(c.bot_model_key(bot), json.dumps(pointer).encode())
        return True

    def _pass(self) -> None:
        """One reconciler pass, with this world's memory of the Jobs it saw (as the reconcile
        function keeps one per process). Beside its reads, the active runs it looked at: what a
        pass that reads every active run's record (the reconciler before ``Seen``) would read."""
        counted = self.store.lists, self.store.list_keys
        active = sum(1 for _ in self.store.list("index/active/"))
        self.store.lists, self.store.list_keys = counted  # the simulator's look, not the plane's
        before = self.store.reads
        try:
            reconcile.reconcile(self.store, self.launcher, now=self.clock(), seen=self.seen)
        except JobplaneError:
            pass
        reads = self.store.reads - before
        r = self.report
        r.reconcile_passes += 1
        r.reconcile_reads_max, r.reconcile_reads_total = max(r.reconcile_reads_max, reads), r.reconcile_reads_total + reads
        r.reconcile_active_max, r.reconcile_active_total = max(r.reconcile_active_max, active), r.reconcile_active_total + active

    # --- what the world watches ---

    def _on_write(self, key: str, data: bytes) -> None:
        if not (key.startswith("bots/") and key.endswith("/model.json")):
            return
        bot = self.bots.get(key.split("/")[1])
        if bot is None:
            return
        content = self.run_content.get(str(json.loads(data).get("runId")), -1)
        bot.model_content = content
        self._resolve(bot, content)

    def _resolve(self, bot: Bot, content: int) -> None:
        """Changes up to the newest one with this data are served by this model."""
        newest = max((i for i in bot.pending if bot.contents[i] == content), default=-1)
        if newest < 0:
            return
        for i in [i for i in bot.pending if i <= newest]:
            self.latencies.append(self.now_s - bot.times[i])
            bot.pending.remove(i)

    def _finish_report(self) -> None:
        r, launcher = self.report, self.launcher
        r.jobs_created = launcher.created
        r.gpu_hours = round(launcher.gpu_seconds / 3600, 1)
        waits = launcher.waits[INTERACTIVE] + launcher.waits[BATCH]
        r.wait_p50_s, r.wait_p99_s = round(percentile(waits, 0.5), 1), round(percentile(waits, 0.99), 1)
        r.wait_interactive_p50_s = round(percentile(launcher.waits[INTERACTIVE], 0.5), 1)
        r.wait_interactive_p99_s = round(percentile(launcher.waits[INTERACTIVE], 0.99), 1)
        r.wait_batch_p50_s = round(percentile(launcher.waits[BATCH], 0.5), 1)
        r.wait_batch_p99_s = round(percentile(launcher.waits[BATCH], 0.99), 1)
        r.change_to_model_p50_s = round(percentile(self.latencies, 0.5), 1)
        r.change_to_model_p99_s = round(percentile(self.latencies, 0.99), 1)
        r.peak_job_objects = launcher.peak_jobs
        r.store_reads, r.store_writes, r.store_lists = self.store.reads, self.store.writes, self.store.lists
        r.store_listed_keys = self.store.list_keys
        r.hottest_writes_per_s, r.hottest_key = self.store.hottest
        outcomes: Counter[str] = Counter()
        run_count = 0
        for run in self.all_runs():
            run_count += 1
            if run["trigger"]["source"] == "/sim/seed":
                continue
            reason = str(run.get("reason") or "").split(":")[0]
            outcomes[f"{run['type']} {run['state']}" + (f" {reason}" if reason else "")] += 1
            if not runs.is_terminal(run):
                r.open_runs += 1
            if run["type"] == "training" and run.get("job"):
                r.training_jobs += 1
            elif run.get("job"):
                r.test_jobs += 1
        stored = {run_id for run_id in self._run_ids()}
        r.lost_runs = len(self.expected_runs - stored)
        r.runs_by_outcome = dict(sorted(outcomes.items()))
        r.unresolved_changes = sum(len(b.pending) for b in self.bots.values())
        r.stale_models = sum(1 for b in self.bots.values() if b.model_content != b.contents[-1])
        r.objects = self.store.count()
        r.objects_per_run = round(r.objects / max(1, run_count), 1)

    def _run_ids(self) -> Iterator[str]:
        for key in self.store._keys.irange("runs/", "runs/\uffff"):
            if key.endswith("/run.json"):
                yield key.split("/")[1]

    def all_runs(self) -> Iterator[runs.Run]:
        for run_id in self._run_ids():
            yield json.loads(self.store._data[c.run_key(run_id)][0])


def examples(content: int) -> dict[str, Any]:
    """A bot's training data; ``content`` tells versions apart (equal content, equal bytes)."""
    return {"examples": [
        {"text": f"book a table for {content}", "intent": "book_table"},
        {"text": f"reserve {content} seats tonight", "intent": "book_table"},
        {"text": f"cancel booking {content}", "intent": "cancel"},
        {"text": f"please cancel reservation {content}", "intent": "cancel"},
    ]}


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def run(scenario: Scenario) -> Report:
    return World(scenario).run()
