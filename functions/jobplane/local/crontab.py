"""Cron schedules as Knative's PingSource reads them (robfig/cron's standard parser), and when
they fire in a time zone. Pure: the local cron (``cron.py``) and ``jobplane`` use it.

Five fields (minute, hour, day of month, month, day of week) with ``*``, ``?``, ranges
``a-b``, steps ``*/n``, ``a-b/n`` and ``a/n`` (= ``a-max/n``), lists, month and weekday names
(``JAN``, ``MON``), weekday ``7`` = Sunday, the macros ``@yearly``/``@annually``/
``@monthly``/``@weekly``/``@daily``/``@midnight``/``@hourly``, and an optional
``CRON_TZ=Zone`` prefix. When both day fields are restricted, a day matches if either does
(cron's rule); a field is unrestricted only when it is ``*`` or ``?`` (a step makes it
restricted, as in robfig/cron).

Time zones follow the wall clock: on a spring-forward day the skipped local times never fire;
on a fall-back day the repeated hour fires again only for schedules whose hour field is
unrestricted (an hourly job keeps its pace, a daily 01:30 job runs once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import PermanentError

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
