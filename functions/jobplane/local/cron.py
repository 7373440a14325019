"""The embedded plane's PingSources: cron schedules that fire real ``dev.knative.sources.ping``
events, the same ones Knative's ping adapter sends, so the launch function cannot tell the
embedded plane from a cluster.

Two kinds of sources fire: the PingSource manifests in ``eventing/`` and, for every stored spec
with a ``schedule``, the PingSource a cluster would run for it (``jobplane-spec-{specId}``,
data ``{"specId": ...}``, sink the broker).

The schedule language is Knative's (robfig/cron's standard parser): five fields (minute,
hour, day of month, month, day of week) with ``*``, ``?``, ranges ``a-b``, steps ``*/n``,
``a-b/n`` and ``a/n`` (= ``a-max/n``), lists, month and weekday names (``JAN``, ``MON``),
weekday ``7`` = Sunday, the macros ``@yearly``/``@annually``/``@monthly``/``@weekly``/
``@daily``/``@midnight``/``@hourly``, and an optional ``CRON_TZ=Zone`` prefix. When both day
fields are restricted, a day matches if either does (cron's rule); a field is unrestricted
only when it is ``*`` or ``?`` (a step makes it restricted, as in robfig/cron).

Time zones (``spec.timezone``, default UTC, the adapter pod's zone) follow the wall clock:
on a spring-forward day the skipped local times never fire; on a fall-back day the repeated
hour fires again only for schedules whose hour field is unrestricted (an hourly job keeps
its pace, a daily 01:30 job runs once).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .. import schedules
from ..errors import PermanentError
from ..events import PING, Event, is_json, now_rfc3339

log = logging.getLogger(__name__)

MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS: Final = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)}
WEEKDAYS: Final = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_FIELDS: Final[tuple[tuple[str, int, int, Mapping[str, int]], ...]] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, WEEKDAYS),
)
SEARCH_DAYS: Final = 366 * 8 + 2
"""How far ``next_fire`` looks (covers Feb 29 on a given weekday)."""
CATCH_UP_MINUTES: Final = 5
"""Minutes a late tick still fires for; beyond that they are missed, as with a stalled adapter."""


# --- schedules (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class CronSchedule:
    """A parsed five-field schedule, with its optional ``CRON_TZ`` zone."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday … 6 = Saturday."""
    days_star: bool
    weekdays_star: bool
    timezone: str | None = None

    def day_matches(self, d: date) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.days
        dow = (d.weekday() + 1) % 7 in self.weekdays
        return (dom and dow) if (self.days_star or self.weekdays_star) else (dom or dow)

    def matches(self, local: datetime) -> bool:
        """Whether a local wall-clock time matches (ignoring DST folds)."""
        return local.minute in self.minutes and local.hour in self.hours and self.day_matches(local.date())


@lru_cache(maxsize=512)
def parse_schedule(text: str) -> CronSchedule:
    """Parse a schedule; PermanentError names the field and what is wrong with it."""
    raw = text.strip()
    zone = None
    if raw.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, raw = raw.partition(" ")
        zone = prefix.split("=", 1)[1]
        raw = raw.strip()
    raw = MACROS.get(raw.lower(), raw)
    if raw.startswith("@"):
        raise PermanentError(f"schedule {text!r}: unsupported descriptor (use one of {', '.join(MACROS)})")
    parts = raw.split()
    if len(parts) != 5:
        raise PermanentError(f"schedule {text!r}: expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
    sets = [_parse_field(p, *spec, schedule=text) for p, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(0 if d == 7 else d for d in sets[4])
    return CronSchedule(
        minutes=sets[0], hours=sets[1], days=sets[2], months=sets[3], weekdays=weekdays,
        days_star=parts[2] in ("*", "?"), weekdays_star=parts[4] in ("*", "?"), timezone=zone,
    )


def _parse_field(expr: str, name: str, lo: int, hi: int, names: Mapping[str, int], *, schedule: str) -> frozenset[int]:
    values: set[int] = set()
    for item in expr.split(","):
        try:
            values |= _parse_item(item, lo, hi, names)
        except ValueError as e:
            raise PermanentError(f"schedule {schedule!r}: {name} field {expr!r}: {e}") from None
    return frozenset(values)


def _parse_item(item: str, lo: int, hi: int, names: Mapping[str, int]) -> set[int]:
    base, slash, step_text = item.partition("/")
    step = _number(step_text, {}) if slash else 1
    if step < 1:
        raise ValueError("step must be at least 1")
    if base in ("*", "?"):
        start, end = lo, hi
    elif "-" in base:
        a, b = base.split("-", 1)
        start, end = _number(a, names), _number(b, names)
    else:
        start = _number(base, names)
        end = hi if slash else start
    if not lo <= start <= end <= hi:
        raise ValueError(f"{item!r} is out of range {lo}-{hi} (or its start is past its end)")
    return set(range(start, end + 1, step))


def _number(text: str, names: Mapping[str, int]) -> int:
    key = text.strip().upper()
    if key in names:
        return names[key]
    if not key.isdigit():
        raise ValueError(f"{text!r} is not a number" + (f" or a name ({', '.join(names)})" if names else ""))
    return int(key)


def zone(name: str | None) -> tzinfo:
    """The IANA zone ``name`` (None or empty: UTC); PermanentError if unknown."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise PermanentError(f"unknown time zone {name!r}: expected an IANA name such as Europe/Berlin") from e


def fires_at(schedule: CronSchedule, tz: tzinfo, instant: datetime) -> bool:
    """Whether the schedule fires at this (minute-aligned) instant, DST rules included."""
    if instant.second or instant.microsecond:
        return False
    local = instant.astimezone(tz)
    if not schedule.matches(local):
        return False
    repeated = local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()
    return not repeated or len(schedule.hours) == 24


def next_fire(schedule: str | CronSchedule, tz: str | tzinfo | None, after: datetime) -> datetime:
    """The first instant strictly after ``after`` (aware) at which the schedule fires, in the
    schedule's zone. ``tz`` may be a name; a ``CRON_TZ=`` prefix wins over it."""
    sched = parse_schedule(schedule) if isinstance(schedule, str) else schedule
    zone_ = zone(sched.timezone) if sched.timezone else (tz if isinstance(tz, tzinfo) else zone(tz))
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    day = after.astimezone(zone_).date() - timedelta(days=1)
    for _ in range(SEARCH_DAYS):
        if sched.day_matches(day):
            found = [t for t in _day_instants(sched, zone_, day) if t > after and fires_at(sched, zone_, t)]
            if found:
                return min(found).astimezone(zone_)
        day += timedelta(days=1)
    raise PermanentError(f"schedule never fires within {SEARCH_DAYS // 366} years")


def _day_instants(sched: CronSchedule, tz: tzinfo, day: date) -> set[datetime]:
    """Every existing instant whose local wall time on ``day`` has a matching hour and minute."""
    out: set[datetime] = set()
    for hour in sched.hours:
        for minute in sched.minutes:
            wall = datetime(day.year, day.month, day.day, hour, minute)
            for fold in (0, 1):
                instant = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
                if instant.astimezone(tz).replace(tzinfo=None) == wall:
                    out.add(instant)
    return out


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


def sink_sender(resolve: Callable[[Mapping[str, Any]], str], *, timeout: float = 10.0) -> SendDirect:
    """Send to a PingSource's own sink (a Service, a URI) over HTTP, binary mode."""
    from ..events import http_sender

    def send(event: Event, sink: Mapping[str, Any]) -> None:
        http_sender(resolve(sink), timeout=timeout)(event)

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
        """When each source fires next (for ``jobplane`` to show)."""
        after = after or self.clock()
        out = {}
        for s in self._all_sources():
            sched = parse_schedule(s.schedule)
            out[s.name] = next_fire(sched, sched.timezone or s.timezone, after)
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
        out += [spec_pingsource(s, namespace=self.namespace, broker=self.broker) for s in specs if s.get("schedule") and s.get("id")]
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
