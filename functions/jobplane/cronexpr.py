"""Cron schedules as Knative's PingSource reads them (robfig/cron's standard parser), and when
they fire in a time zone. Pure: spec validation rejects a bad ``schedule`` with a precise reason
before a PingSource ever sees it, and the embedded cron (``local/cron.py``) fires by the same rules.

Five fields (minute, hour, day of month, month, day of week) with ``*``, ``?``, ranges ``a-b``,
steps ``*/n``, ``a-b/n`` and ``a/n`` (= ``a-max/n``), lists, case-insensitive month and weekday
names (``JAN``, ``MON``), weekday ``7`` = Sunday, and the macros ``@yearly``/``@annually``/
``@monthly``/``@weekly``/``@daily``/``@midnight``/``@hourly``. A ``CRON_TZ=Zone`` prefix is
accepted only where PingSource manifests are read; a spec keeps its zone in ``timezone``.
When both day fields are restricted a day matches if either does; a field is unrestricted when
an item is ``*`` or ``?`` with no step above 1 (robfig/cron's star bit).

Time zones follow the wall clock: on a spring-forward day the skipped local times never fire;
on a fall-back day the repeated hour fires again only for schedules whose hour field covers
every hour (an hourly job keeps its pace, a daily 01:30 job runs once).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import PermanentError

MACROS: Final[dict[str, str]] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
ZONE_PREFIXES: Final = ("CRON_TZ=", "TZ=")
SEARCH_DAYS: Final = 366 * 8 + 2
"""How far ``next_fire`` looks (covers Feb 29 on a given weekday)."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_from: int = 0


FIELDS: Final = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, MONTHS, 1),
    _Field("day of week", 0, 7, WEEKDAYS, 0),
)
_STAR: Final = re.compile(r"[*?](/0*1)?")
_ITEM: Final = re.compile(r"(?P<range>\*|\?|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>[0-9]+))?")


class CronError(PermanentError, ValueError):
    """A schedule that does not parse, or a zone that does not exist; the message says why."""


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule: the allowed values of each field, and its ``CRON_TZ`` zone if any."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday … 6 = Saturday (7 is folded into 0)."""
    days_star: bool
    """Day of month was unrestricted (``*``, ``?``, ``*/1``)."""
    weekdays_star: bool
    """Day of week was unrestricted."""
    timezone: str | None = None

    def day_matches(self, day: date) -> bool:
        """Whether the schedule fires on some minute of ``day``."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = day.isoweekday() % 7 in self.weekdays
        return (dom and dow) if (self.days_star or self.weekdays_star) else (dom or dow)

    def matches(self, moment: datetime) -> bool:
        """Whether the schedule fires in ``moment``'s minute, read as wall time (folds ignored)."""
        return moment.minute in self.minutes and moment.hour in self.hours and self.day_matches(moment.date())


Cron = CronSchedule
"""The name spec validation used."""


def parse(expr: str, *, zone_prefix: bool = False) -> CronSchedule:
    """Parse ``expr`` (five fields or a macro); ``CronError`` says what is wrong.

    ``zone_prefix`` accepts a leading ``CRON_TZ=Zone`` as PingSource does; a spec rejects it."""
    text = " ".join(expr.split())
    timezone = None
    if zone_prefix and text.startswith(ZONE_PREFIXES):
        prefix, _, text = text.partition(" ")
        timezone = prefix.split("=", 1)[1]
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CronError(f"unknown macro {text!r}: expected one of {', '.join(MACROS)}")
        text = MACROS[text.lower()]
    if text.upper().startswith(ZONE_PREFIXES):
        raise CronError("put the timezone in the spec's timezone field, not in the schedule")
    parts = text.split(" ") if text else []
    if len(parts) != len(FIELDS):
        raise CronError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
    values = [_parse_field(part, field) for part, field in zip(parts, FIELDS, strict=True)]
    return CronSchedule(
        minutes=values[0], hours=values[1], days=values[2], months=values[3],
        weekdays=frozenset(v % 7 for v in values[4]),
        days_star=_unrestricted(parts[2]), weekdays_star=_unrestricted(parts[4]), timezone=timezone,
    )


@lru_cache(maxsize=512)
def parse_schedule(text: str) -> CronSchedule:
    """Parse a PingSource's schedule (``CRON_TZ=`` allowed); the error quotes the schedule."""
    try:
        return parse(text, zone_prefix=True)
    except CronError as e:
        raise CronError(f"schedule {text!r}: {e}") from e


def _unrestricted(text: str) -> bool:
    """robfig/cron's star bit: some item is ``*`` or ``?`` with no step above 1."""
    return any(_STAR.fullmatch(item) for item in text.split(","))


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    allowed: set[int] = set()
    for item in text.split(","):
        allowed |= _parse_item(item, field)
    return frozenset(allowed)


def _parse_item(item: str, field: _Field) -> set[int]:
    match = _ITEM.fullmatch(item)
    if not match:
        raise CronError(f"{field.name}: cannot parse {item!r}")
    span, step_text = match["range"], match["step"]
    step = int(step_text) if step_text is not None else 1
    if step < 1:
        raise CronError(f"{field.name}: step must be at least 1, got {step}")
    if span in ("*", "?"):
        low, high = field.low, field.high
    elif "-" in span:
        first, last = span.split("-", 1)
        low, high = _value(first, field), _value(last, field)
        if low > high:
            raise CronError(f"{field.name}: range {item!r} starts after it ends")
    else:
        low = _value(span, field)
        high = field.high if step_text is not None else low
    return set(range(low, high + 1, step))


def _value(text: str, field: _Field) -> int:
    upper = text.upper()
    if upper in field.names:
        return field.names.index(upper) + field.names_from
    if not text.isdigit():
        hint = f" or one of {', '.join(field.names)}" if field.names else ""
        raise CronError(f"{field.name}: {text!r} is not a number{hint}")
    value = int(text)
    if not field.low <= value <= field.high:
        raise CronError(f"{field.name}: {value} is out of range {field.low}-{field.high}")
    return value


# --- when a schedule fires ---------------------------------------------------------------------


def zone(name: str | None) -> tzinfo:
    """The IANA zone ``name`` (None or empty: UTC); ``CronError`` if unknown."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise CronError(f"unknown time zone {name!r}: expected an IANA name such as Europe/Berlin") from e


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
    raise CronError(f"schedule never fires within {SEARCH_DAYS // 366} years")


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
