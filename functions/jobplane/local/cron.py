"""The embedded plane's PingSources: cron schedules that fire real ``dev.knative.sources.ping``
events, the same ones Knative's ping adapter sends, so the launch function cannot tell the
embedded plane from a cluster.

Two kinds of sources fire: the PingSource manifests in ``eventing/`` and, for every stored spec
with a ``schedule``, the PingSource a cluster would run for it (``jobplane.schedules`` names
and fills it: ``jobplane-spec-{specId}``, data ``{"specId": ...}``, sink the broker).
Schedules, time zones and DST are ``jobplane.cronexpr``'s (croniter reads them); a PingSource without ``timezone`` runs in
UTC (the ping adapter pod's zone). A spec whose PingSource is already among the manifests (the
built-in ``retrain-all``, rendered into ``eventing/``) fires once, as the manifest says, as a
cluster runs the committed manifest and not the stored spec; a differing schedule is logged.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import yaml

from .. import schedules
from ..cronexpr import CronSchedule, fires_at, next_fire, parse_schedule, zone
from ..errors import PermanentError
from ..events import PING, Event, is_json, now_rfc3339

__all__ = [
    "CronSchedule", "LocalCron", "PingSource", "fires_at", "load_pingsources", "next_fire", "parse_schedule",
    "pingsource_from_manifest", "sink_sender", "spec_pingsource", "zone",
]

log = logging.getLogger(__name__)

CATCH_UP_MINUTES: Final = 5
"""Minutes a late tick still fires for; beyond that they are missed, as with a stalled adapter."""


# --- PingSources -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PingSource:
    """What a ``sources.knative.dev/v1`` PingSource says, enough to fire it as Knative does."""

    name: str
    schedule: str = "* * * * *"
    timezone: str | None = None
    namespace: str = "default"
    data: bytes | None = None
    """``spec.data`` (UTF-8) or ``spec.dataBase64`` (decoded)."""
    content_type: str | None = None
    sink: Mapping[str, Any] = field(default_factory=lambda: {"ref": {"kind": "Broker", "name": "default"}})
    extensions: Mapping[str, str] = field(default_factory=dict)
    """``spec.ceOverrides.extensions``."""

    @property
    def source(self) -> str:
        """Knative's ``PingSourceSource(namespace, name)``."""
        return f"/apis/v1/namespaces/{self.namespace}/pingsources/{self.name}"

    @property
    def to_broker(self) -> bool:
        ref = self.sink.get("ref") or {}
        return ref.get("kind") == "Broker" and not self.sink.get("uri")

    def event(self, *, now: datetime, id: str | None = None) -> Event:
        """The event Knative's ping adapter sends: type, source, a fresh id, the data as-is."""
        return Event(
            type=PING, source=self.source, id=id or str(uuid.uuid4()), time=now_rfc3339(now),
            data=_decoded(self.data, self.content_type), datacontenttype=self.content_type or None,
            extensions=dict(self.extensions),
        )


def _decoded(data: bytes | None, content_type: str | None) -> Any:
    """``Event.data`` holds decoded JSON / text; bytes that do not decode stay bytes (sent raw)."""
    if data is None:
        return None
    if is_json(content_type):
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return data
    if (content_type or "").lower().startswith("text/"):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data
    return data


def pingsource_from_manifest(doc: Mapping[str, Any], *, namespace: str = "default", where: str = "PingSource") -> PingSource:
    meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
    if not meta.get("name") or not spec.get("sink"):
        raise PermanentError(f"{where}: a PingSource needs metadata.name and spec.sink")
    if spec.get("data") and spec.get("dataBase64"):
        raise PermanentError(f"{where}: spec.data and spec.dataBase64 are mutually exclusive")
    data = base64.b64decode(spec["dataBase64"]) if spec.get("dataBase64") else (str(spec["data"]).encode() if spec.get("data") else None)
    source = PingSource(
        name=str(meta["name"]), schedule=str(spec.get("schedule") or "* * * * *"), timezone=spec.get("timezone") or None,
        namespace=str(meta.get("namespace") or namespace), data=data, content_type=spec.get("contentType") or None,
        sink=spec["sink"], extensions=dict((spec.get("ceOverrides") or {}).get("extensions") or {}),
    )
    parse_schedule(source.schedule)
    zone(source.timezone)
    return source


def load_pingsources(eventing_dir: Path, *, namespace: str = "default") -> list[PingSource]:
    """The PingSources among the YAML files directly in ``eventing_dir``."""
    out = []
    for path in sorted(Path(eventing_dir).glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, Mapping) and doc.get("kind") == "PingSource" and str(doc.get("apiVersion", "")).startswith("sources.knative.dev/"):
                out.append(pingsource_from_manifest(doc, namespace=namespace, where=str(path)))
    return out


def spec_pingsource(spec: Mapping[str, Any], *, namespace: str = "default", broker: str = "default") -> PingSource:
    """The PingSource a cluster runs for a spec with a ``schedule`` (named and filled by
    ``jobplane.schedules``, which renders it for the cluster)."""
    spec_id = str(spec["id"])
    return PingSource(
        name=schedules.pingsource_name(spec_id), schedule=str(spec["schedule"]), timezone=spec.get("timezone") or None,
        namespace=namespace, data=schedules.pingsource_data(spec_id).encode(), content_type="application/json",
        sink={"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": broker}},
    )


# --- the cron ---------------------------------------------------------------------------------

Send = Callable[[Event], None]
SendDirect = Callable[[Event, Mapping[str, Any]], None]


def sink_sender(
    resolve: Callable[[Mapping[str, Any]], str],
    *,
    timeout: float = 10.0,
    headers_for: Callable[[str], Mapping[str, str]] = lambda url: {},
) -> SendDirect:
    """Send to a PingSource's own sink (a Service, a URI) over HTTP, binary mode, with
    ``headers_for(url)`` (the plane's token for its own functions)."""
    from ..events import http_sender

    def send(event: Event, sink: Mapping[str, Any]) -> None:
        url = resolve(sink)
        http_sender(url, timeout=timeout, headers=headers_for(url))(event)

    return send


class LocalCron:
    """Fires PingSources (from manifests and from specs with a ``schedule``) on a thread.

    ``send`` takes events whose sink is the broker (``LocalBroker.send``); ``send_direct``
    those sinking elsewhere (see ``sink_sender``); without it they are skipped with a warning.
    ``run_pending(now)`` does one tick synchronously (what the thread calls every ``tick`` s).
    """

    def __init__(
        self,
        sources: Iterable[PingSource],
        *,
        send: Send,
        specs_with_schedule: Callable[[], Sequence[Mapping[str, Any]]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tick: float = 1.0,
        send_direct: SendDirect | None = None,
        namespace: str = "default",
        broker: str = "default",
    ) -> None:
        self.sources = list(sources)
        self.send, self.send_direct = send, send_direct
        self.specs_with_schedule = specs_with_schedule
        self.clock, self.tick = clock, tick
        self.namespace, self.broker = namespace, broker
        self._checked: datetime | None = None
        self._last: dict[str, datetime] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LocalCron:
        self._thread = threading.Thread(target=self._loop, name="local-cron", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.tick + 5)

    def run_pending(self, now: datetime | None = None) -> list[Event]:
        """Fire every source due in the minutes since the last tick (the first tick only
        starts the count, as the adapter fires at minute starts); the events fired."""
        with self._lock:
            minutes = self._advance((now or self.clock()).astimezone(UTC))
            if not minutes:
                return []
            fired = []
            for source in self._all_sources():
                moment = self._due(source, minutes)
                if moment is None:
                    continue
                self._last[source.source] = moment
                event = self._fire(source, now or self.clock())
                if event is not None:
                    fired.append(event)
            return fired

    def next_fires(self, after: datetime | None = None) -> dict[str, datetime]:
        """When each source fires next (for ``jobplane`` to show); a source whose schedule
        cannot fire (a bad stored spec) is logged once and left out, never an error."""
        after = after or self.clock()
        out = {}
        for s in self._all_sources():
            try:
                sched = parse_schedule(s.schedule)
                out[s.name] = next_fire(sched, sched.timezone or s.timezone, after)
            except PermanentError as e:
                self._warn_once(s.source, f"PingSource {s.name} never fires: {e.message}")
        return out

    def _advance(self, now: datetime) -> list[datetime]:
        minute = now.replace(second=0, microsecond=0)
        if self._checked is None or minute <= self._checked:
            self._checked = self._checked or minute
            return []
        start = max(self._checked, minute - timedelta(minutes=CATCH_UP_MINUTES))
        self._checked = minute
        count = int((minute - start) / timedelta(minutes=1))
        return [start + timedelta(minutes=k) for k in range(1, count + 1)]

    def _due(self, source: PingSource, minutes: Sequence[datetime]) -> datetime | None:
        """The latest of ``minutes`` at which ``source`` fires and has not fired yet."""
        try:
            sched = parse_schedule(source.schedule)
            tz = zone(sched.timezone or source.timezone)
        except PermanentError as e:
            self._warn_once(source.source, f"PingSource {source.name} never fires: {e.message}")
            return None
        hits = [m for m in minutes if fires_at(sched, tz, m) and self._last.get(source.source) != m]
        return hits[-1] if hits else None

    def _all_sources(self) -> list[PingSource]:
        out = list(self.sources)
        if self.specs_with_schedule is None:
            return out
        try:
            specs = self.specs_with_schedule()
        except Exception:
            log.exception("local cron: listing specs with a schedule failed")
            return out
        return out + self._spec_sources(specs, manifests={(s.namespace, s.name): s for s in out})

    def _spec_sources(self, specs: Iterable[Mapping[str, Any]], *, manifests: Mapping[tuple[str, str], PingSource]) -> list[PingSource]:
        """The specs' PingSources, less those a manifest already names (it fires instead)."""
        out = []
        for spec in specs:
            if not (spec.get("schedule") and spec.get("id")):
                continue
            source = spec_pingsource(spec, namespace=self.namespace, broker=self.broker)
            manifest = manifests.get((source.namespace, source.name))
            if manifest is None:
                out.append(source)
            elif (manifest.schedule, manifest.timezone) != (source.schedule, source.timezone):
                self._warn_once(f"differs:{source.source}", (
                    f"spec {spec['id']} says {source.schedule!r} ({source.timezone}) but its PingSource manifest "
                    f"{manifest.name} says {manifest.schedule!r} ({manifest.timezone}); the manifest fires: "
                    "render the spec again (jobplane render-pingsource) to change it"))
        return out

    def _fire(self, source: PingSource, now: datetime) -> Event | None:
        """Send one ping; the event, or None when there is no sender for its sink."""
        event = source.event(now=now)
        if not source.to_broker and self.send_direct is None:
            self._warn_once(source.source, f"PingSource {source.name}: no sender for sink {dict(source.sink)!r}")
            return None
        try:
            if source.to_broker:
                self.send(event)
            else:
                assert self.send_direct is not None
                self.send_direct(event, source.sink)
        except Exception as e:  # Knative's adapter logs and drops a ping its sink refused
            log.error("local cron: sending %s from %s failed: %s", event.id, source.source, e)
        return event

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("local cron: %s", message)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.run_pending()
            except Exception:
                log.exception("local cron: tick failed")
