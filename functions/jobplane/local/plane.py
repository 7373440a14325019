"""The embedded plane: the cluster's pieces, wired together on one machine.

One front door on 127.0.0.1:PORT serves what the cluster serves at separate URLs: the broker
ingress at ``/default/default`` (routing by the Triggers in ``eventing/``), each function at
``/_functions/{service}`` (where Triggers' subscribers resolve), and the api everywhere else.
Jobs are the very manifests the Kubernetes launcher would create, run as local processes;
state lives in a filesystem object store under the data dir; a local cron fires the
PingSources and the specs' schedules. Settings from the environment override the embedded
defaults, so ``JOBPLANE_STORE=gs://…`` runs this plane against GCS.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import timedelta
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from werkzeug.serving import BaseWSGIServer, make_server

from .. import conventions as c
from .. import events as ev
from .. import receipts
from ..app import WSGIApp, build_app, json_error
from ..auth.frontdoor import front_door_guard, function_headers
from ..errors import JobplaneError, PermanentError, PreconditionFailedError, UnavailableError
from ..launcher import Launcher, JobStatus, open_launcher
from ..launcher.quota import Policy, load_policy
from ..runtime import Runtime, install
from ..settings import LOOPBACK_HOSTS, Settings, embedded_defaults
from ..store import open_store
from ..store.base import ObjectStore

if TYPE_CHECKING:
    from ..reconcile import Seen
    from .broker import LocalBroker
    from .cron import LocalCron

log = logging.getLogger(__name__)

RECONCILE_EVERY: Final = 10.0
"""Seconds between sweeps for runs whose Job ended without a final callback."""
FINISH_GRACE: Final = 5.0
"""Seconds a finished Job's last callbacks get to reach status before the reconciler judges."""
REPORT_GRACE: Final = timedelta(seconds=60)
"""How long a succeeded Job's final callback may take through the local broker (longer than
the Broker's whole retry schedule, so a callback still being retried is not judged missing)."""
HOST: Final = "127.0.0.1"
BROKER_DB: Final = "broker.db"
RECEIPT_FIELDS: Final = ("runId", "specId", "type")
"""Each run in the ingress's answer to a ``bot.changed`` or ``run.requested``."""
"""The broker's journal in the data dir: accepted events until delivered (see local/journal.py)."""
PASSED_TO_JOBS: Final = ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT")
"""Environment the local Jobs inherit from the plane: what a pod gets from its node and
Workload Identity (GCS access), which a local process can only get from here."""


def default_eventing_dir() -> Path:
    """``<repo root>/eventing``: the package lives at ``<repo root>/functions/jobplane``."""
    return Path(__file__).resolve().parents[3] / "eventing"


def find_eventing_dir(path: Path | None) -> Path:
    found = Path(path) if path is not None else default_eventing_dir()
    if not (found.is_dir() and any(found.glob("trigger*.y*ml"))):
        raise PermanentError(
            f"no Knative eventing manifests (Triggers) in {found}: the embedded plane routes events "
            "by the repo's eventing/ dir; run from a checkout or pass --eventing-dir"
        )
    return found


def default_kueue_dir() -> Path:
    """``<repo root>/knative/components/kueue``: the queueing policy the local launcher applies."""
    return Path(__file__).resolve().parents[3] / "knative" / "components" / "kueue"


def load_queue_policy(directory: Path | None = None) -> Policy | None:
    """The Kueue policy the cluster runs, for the local launcher; None (no queue: Jobs start at
    once) when the checkout has no Kueue component."""
    found = directory or default_kueue_dir()
    if not any(found.glob("*.yaml")):
        log.warning("no Kueue manifests in %s: local Jobs start without waiting for quota", found)
        return None
    return load_policy(found)


def builtin_specs_dir() -> Path:
    """``jobplane/data/specs/``: specs shipped with the package (those the PingSources in
    ``eventing/`` run, such as the weekly retrain)."""
    return Path(__file__).resolve().parents[1] / "data" / "specs"


def seed_specs(store: ObjectStore, directory: Path) -> list[str]:
    """Store each valid ``*.json`` spec in ``directory`` unless one of that id exists (a user's
    edit wins); the ids written. Invalid ones are logged and skipped."""
    from ..spec import validate_spec

    written: list[str] = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            spec = validate_spec(json.loads(path.read_text(encoding="utf-8")))
            store.write(c.spec_key(spec["id"]), json.dumps(spec, sort_keys=True).encode(), if_generation_match=0)
        except PreconditionFailedError:
            continue
        except (JobplaneError, ValueError) as e:
            log.warning("built-in spec %s skipped: %s", path.name, e)
            continue
        written.append(spec["id"])
    return written


def plane_settings(data_dir: Path, *, port: int, env: Mapping[str, str]) -> Settings:
    """The embedded defaults for ``data_dir``, overridden by ``JOBPLANE_*`` in ``env``. The
    plane listens on 127.0.0.1 only and its Jobs call back there, so its loopback names stay
    allowed whatever ``JOBPLANE_ALLOWED_HOSTS`` adds (a name a reverse proxy sends, say)."""
    settings = Settings.from_env(env, defaults=embedded_defaults(data_dir, port=port))
    return settings.with_(allowed_hosts=tuple(dict.fromkeys((*LOOPBACK_HOSTS, *settings.allowed_hosts))))


class Plane:
    """The embedded jobs plane; ``start()``/``stop()`` or a ``with`` block.

    One per process at a time: ``start`` installs the plane's runtime as the process's
    (``runtime.install``), which is what the function targets in ``functions/main.py`` use.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        env: Mapping[str, str] | None = None,
        eventing_dir: Path | None = None,
        reconcile_every: float = RECONCILE_EVERY,
        launcher_env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.eventing_dir = find_eventing_dir(eventing_dir)
        self._app: WSGIApp | None = None
        self._server: BaseWSGIServer = make_server(HOST, port, self._wsgi, threaded=True)
        self.port = int(self._server.server_port)
        self.url = f"http://{HOST}:{self.port}"
        self.reconcile_every = reconcile_every
        self._seen: Seen | None = None
        """The reconciler's memory of the Jobs it saw (``jobplane.reconcile.Seen``)."""
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._follow_up_lock = threading.Lock()
        self._follow_up_pending = False
        self.broker: LocalBroker | None = None
        self.cron: LocalCron | None = None
        try:
            self._configure(os.environ if env is None else env, launcher_env or {})
        except BaseException:
            self._server.server_close()
            raise

    def _configure(self, env: Mapping[str, str], launcher_env: Mapping[str, str]) -> None:
        self.settings = plane_settings(self.data_dir, port=self.port, env=env)
        self.store = open_store(self.settings.store_url)
        inherited = {name: env[name] for name in PASSED_TO_JOBS if name in env}
        self.launcher = self._open_launcher({**inherited, **launcher_env})
        self.runtime = Runtime(
            settings=self.settings, store=self.store, launcher_factory=lambda: self.launcher, send=self._send
        )

    # --- wiring ---

    def _open_launcher(self, launcher_env: Mapping[str, str]) -> Launcher:
        if self.settings.launcher != "local":
            return open_launcher(self.settings)
        return open_launcher(
            self.settings, workdir=self.data_dir / "jobs", on_finished=self._on_finished, extra_env=dict(launcher_env),
            policy=load_queue_policy(),
        )

    def _build(self) -> None:
        from . import broker as local_broker

        install(self.runtime)
        seed_specs(self.store, builtin_specs_dir())
        config = local_broker.load_broker(self.eventing_dir)
        triggers = local_broker.load_triggers(self.eventing_dir, namespace=config.namespace)
        resolve = local_broker.function_resolver(self.url, namespace=config.namespace)
        headers_for = function_headers(self.url, self.settings)
        self.broker = local_broker.LocalBroker(
            triggers, resolve=resolve, delivery=config.delivery, name=config.name, namespace=config.namespace,
            db=self.data_dir / BROKER_DB, max_event_bytes=self.settings.max_event_bytes,
            headers_for=headers_for, receipt=self._receipt,
        )
        self.runtime.broker = self.broker
        self._app = build_app(
            broker=self.broker, guard=front_door_guard(self.settings), max_body_bytes=self.settings.max_event_bytes
        )
        self.cron = self._cron(resolve, headers_for, namespace=config.namespace, broker=config.name)

    def _cron(self, resolve: Callable[[Mapping[str, Any]], str], headers_for: Callable[[str], dict[str, str]], *,
              namespace: str, broker: str) -> LocalCron:
        from . import cron as local_cron

        return local_cron.LocalCron(
            local_cron.load_pingsources(self.eventing_dir, namespace=namespace),
            send=self._send,
            send_direct=local_cron.sink_sender(resolve, headers_for=headers_for),
            specs_with_schedule=self.scheduled_specs,
            clock=self.runtime.clock,
            namespace=namespace,
            broker=broker,
        )

    def _receipt(self, event: ev.Event) -> list[dict[str, Any]] | None:
        """What the ingress answers for a ``bot.changed`` or ``run.requested``: the runs it makes."""
        if event.type not in (ev.BOT_CHANGED, ev.RUN_REQUESTED):
            return None
        found = receipts.expected_runs(event, spec_type=self._spec_type) or []
        return [{key: run[key] for key in RECEIPT_FIELDS} for run in found]

    def _spec_type(self, spec_id: str) -> str | None:
        try:
            return str(json.loads(self.store.read(c.spec_key(spec_id)).data).get("type") or "") or None
        except (JobplaneError, ValueError):
            return None

    def _send(self, event: ev.Event) -> None:
        """``Runtime.send``: straight into the local broker (no HTTP round trip)."""
        if self.broker is None:
            raise UnavailableError("the embedded broker is not started yet")
        self.broker.send(event)

    def scheduled_specs(self) -> list[dict[str, Any]]:
        """Every stored spec with a ``schedule`` (the cron fires a ping for each)."""
        found: list[dict[str, Any]] = []
        for key in self.store.list("specs/"):
            try:
                spec = json.loads(self.store.read(key).data)
            except (JobplaneError, ValueError):
                continue
            if isinstance(spec, dict) and spec.get("schedule"):
                found.append(spec)
        return found

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self._app is None:
            body = {"error": {"code": "unavailable", "message": "jobplane is starting; retry shortly", "details": []}}
            return json_error(start_response, "503 Service Unavailable", body, [("Retry-After", "1")])
        return self._app(environ, start_response)

    # --- reconciling ---

    def _on_finished(self, status: JobStatus) -> None:
        """A local Job ended: a follow-up (on its own thread) lets the Job's last callbacks
        through the broker, then reconciles, so a Job that died without reporting leaves its
        run failed with the Job's reason. Never blocks: it runs on the Job's supervisor, which
        a launch cancelling a superseded Job must never wait for behind a broker flush.
        Follow-ups coalesce: a Job ending while one is pending is covered by it."""
        if self._stopping.is_set():
            return
        with self._follow_up_lock:
            if self._follow_up_pending:
                return
            self._follow_up_pending = True
        threading.Thread(target=self._follow_up, name="jobplane-job-ended", daemon=True).start()

    def _follow_up(self) -> None:
        with self._follow_up_lock:
            self._follow_up_pending = False  # a Job ending from here on needs a pass after this flush
        if self.broker is not None:
            self.broker.flush(timeout=FINISH_GRACE)
        if not self._stopping.is_set():
            self.reconcile()

    def reconcile(self) -> None:
        """One reconciler pass over the active runs; errors are logged, the next pass retries."""
        from .. import reconcile as reconciler

        try:
            self._seen = self._seen or reconciler.Seen()
            report = reconciler.reconcile(self.store, self.launcher, now=self.runtime.clock(), grace=REPORT_GRACE,
                                          seen=self._seen)
        except Exception:  # noqa: BLE001 - a pass must never kill the plane; the next one retries
            log.exception("reconcile pass failed")
            return
        for run_id, reason in report.failed.items():
            log.warning("run %s failed without a final report: %s", run_id, reason)

    def _reconcile_loop(self) -> None:
        while not self._stopping.wait(self.reconcile_every):
            self.reconcile()

    # --- lifecycle ---

    def _recover_jobs(self) -> None:
        """The local Jobs of the plane that ran on this data dir before: their processes
        outlived it and are adopted (before the broker can redeliver a trigger of theirs)."""
        recover = getattr(self.launcher, "recover", None)
        if recover is None:
            return
        recovered = recover()
        active = [s.name for s in recovered if s.state == "running"]
        if active:
            log.info("took back %d running Job(s) of the previous plane: %s", len(active), ", ".join(active))
        waiting = [s.name for s in recovered if s.state == "queued"]
        if waiting:
            log.info("%d Job(s) of the previous plane still wait for quota: %s", len(waiting), ", ".join(waiting))

    def start(self) -> Plane:
        """Serve, deliver, fire and reconcile; a second call (``with Plane(...).start()``) is a
        no-op: two ``serve_forever`` loops on one server outlive ``shutdown``, and the one left
        spins on the closed socket."""
        if self._threads:
            return self
        try:
            self._recover_jobs()
            self._build()
            self._spawn("jobplane-http", self._server.serve_forever)
            assert self.cron is not None and self.broker is not None
            self.broker.resume()
            self.cron.start()
            self._spawn("jobplane-reconcile", self._reconcile_loop)
        except BaseException:
            self.stop()
            raise
        log.info("jobplane up at %s (data in %s)", self.url, self.data_dir)
        return self

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop taking events, stop the cron, let deliveries under way finish (bounded; the rest
        stays in the broker's journal for the next start), then stop the Jobs and the server;
        idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for close in self._closers():
            try:
                close()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                log.exception("error while stopping the plane")
        for thread in self._threads:
            thread.join(timeout=5)

    def _closers(self) -> list[Callable[[], None]]:
        closers: list[Callable[[], None]] = []
        if self.broker is not None:
            closers.append(self.broker.stop_intake)
        if self.cron is not None:
            closers.append(self.cron.close)
        if self.broker is not None:  # its deliveries need the launcher and the server: before both
            closers.append(self.broker.close)
        closers.append(getattr(self.launcher, "close", lambda: None))
        if self._threads:
            closers.append(self._server.shutdown)  # blocks unless serve_forever is running
        closers.append(self._server.server_close)
        return closers

    def __enter__(self) -> Plane:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
