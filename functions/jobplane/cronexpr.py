"""Cron schedules as Knative's PingSource reads them (robfig/cron's standard parser), and when
they fire in a time zone. Spec validation rejects a bad ``schedule`` with a precise reason before
a PingSource ever sees it, and the embedded cron (``local/cron.py``) fires by the same rules.

Fields are read by croniter (a well-kept cron library); this module holds only where
PingSource's dialect differs from croniter's and what croniter cannot know:

- exactly five fields (minute, hour, day of month, month, day of week), or one of the macros
  ``@yearly``/``@annually``/``@monthly``/``@weekly``/``@daily``/``@midnight``/``@hourly``;
  ``?`` means ``*`` in any field; croniter's extensions (``L``, ``W``, ``#``, seconds, years)
  and wrapping ranges (``10-5``) are refused, as robfig/cron refuses them;
- a ``CRON_TZ=Zone`` (or ``TZ=Zone``) prefix, accepted only where PingSource manifests are
  read; a spec keeps its zone in ``timezone``;
- when both day fields are restricted a day matches if either does; a field is unrestricted
  when an item is ``*`` or ``?`` with no step above 1 (robfig/cron's star bit);
- a schedule that can never fire (``0 0 30 2 *``) is an error, not a search that gives up.

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

from croniter import CroniterError, croniter

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
"""robfig/cron's macros, as PingSource reads them."""
FIELD_NAMES: Final = ("minute", "hour", "day of month", "month", "day of week")
RANGES: Final = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
DAYS_IN_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
ZONE_PREFIXES: Final = ("CRON_TZ=", "TZ=")
SEARCH_DAYS: Final = 366 * 8 + 2
"""How far ``next_fire`` looks (covers Feb 29 on a given weekday)."""
_NAMED: Final = (False, False, False, True, True)
_ITEM: Final = re.compile(r"(?P<range>[*?]|(?P<a>[0-9]+|[A-Za-z]+)(?:-(?P<b>[0-9]+|[A-Za-z]+))?)(?:/(?P<step>[0-9]+))?")
_STAR: Final = re.compile(r"[*?](/0*1)?")


class CronError(PermanentError, ValueError):
    """A schedule that does not parse or never fires, or a zone that does not exist; the message says why."""


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

    def ever_fires(self) -> bool:
        """Whether some calendar day matches (with only the day of month restricted, some
        allowed month must have an allowed day: February has 29 in leap years)."""
        if self.days_star or not self.weekdays_star:
            return True  # every month has every weekday
        return any(day <= DAYS_IN_MONTH[month - 1] for month in self.months for day in self.days)


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
    if text.upper().startswith(ZONE_PREFIXES):
        raise CronError("put the timezone in the spec's timezone field, not in the schedule")
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CronError(f"unknown macro {text!r}: expected one of {', '.join(MACROS)}")
        text = MACROS[text.lower()]
    parts = text.split(" ") if text else []
    if len(parts) != len(FIELD_NAMES):
        raise CronError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
    for index, part in enumerate(parts):
        _check_dialect(part, index)
    values = _expand(parts)
    schedule = CronSchedule(
        minutes=values[0], hours=values[1], days=values[2], months=values[3], weekdays=values[4],
        days_star=_unrestricted(parts[2]), weekdays_star=_unrestricted(parts[4]), timezone=timezone,
    )
    if not schedule.ever_fires():
        raise CronError(f"never fires: no month among {parts[3]!r} has day {parts[2]!r}")
    return schedule


@lru_cache(maxsize=512)
def parse_schedule(text: str) -> CronSchedule:
    """Parse a PingSource's schedule (``CRON_TZ=`` allowed); the error quotes the schedule."""
    try:
        return parse(text, zone_prefix=True)
    except CronError as e:
        raise CronError(f"schedule {text!r}: {e}") from e


def _check_dialect(part: str, index: int) -> None:
    """Refuse what robfig/cron refuses and croniter would read (``L``, ``W``, ``#``, names in
    number fields, wrapping ranges)."""
    name = FIELD_NAMES[index]
    for item in part.split(","):
        match = _ITEM.fullmatch(item)
        if not match:
            raise CronError(f"{name}: cannot parse {item!r}")
        ends = [end for end in (match["a"], match["b"]) if end]
        if any(not end.isdigit() for end in ends) and not _NAMED[index]:
            raise CronError(f"{name}: {item!r} is not a number")
        if match["step"] is not None and int(match["step"]) < 1:
            raise CronError(f"{name}: step must be at least 1, got {match['step']}")
        if len(ends) == 2 and _ordinal(ends[0], index) > _ordinal(ends[1], index):
            raise CronError(f"{name}: range {item!r} starts after it ends")


def _ordinal(end: str, index: int) -> int:
    """A range end's number (a month or weekday name's position; an unknown name is croniter's to refuse)."""
    if end.isdigit():
        return int(end)
    names = MONTHS if index == 3 else WEEKDAYS
    first = 1 if index == 3 else 0
    return names.index(end.upper()) + first if end.upper() in names else -1


def _expand(parts: list[str]) -> list[frozenset[int]]:
    """Each field's allowed values, as croniter reads them (``?`` is ``*``; 7 is Sunday)."""
    text = " ".join(part.replace("?", "*") for part in parts)
    try:
        fields = croniter.expand(text)[0]
    except CroniterError as e:
        raise CronError(_field_problem(parts, e)) from None
    out = []
    for index, values in enumerate(fields[:5]):
        low, high = RANGES[index]
        out.append(frozenset(range(low, high + 1)) if values == ["*"] else frozenset(int(v) % 7 if index == 4 else int(v) for v in values))
    return out


def _field_problem(parts: list[str], err: CroniterError) -> str:
    """croniter's message names the whole expression: find the field it is about."""
    for index, part in enumerate(parts):
        probe = ["*"] * len(parts)
        probe[index] = part.replace("?", "*")
        try:
            croniter.expand(" ".join(probe))
        except CroniterError as e:
            low, high = RANGES[index]
            if "range" in str(e):
                return f"{FIELD_NAMES[index]}: {part} is out of range {low}-{7 if index == 4 else high}"
            names = ", ".join(MONTHS if index == 3 else WEEKDAYS)
            return f"{FIELD_NAMES[index]}: {part!r} is not a number or one of {names}"
    return f"cannot read the schedule: {err}"


def _unrestricted(text: str) -> bool:
    """robfig/cron's star bit: some item is ``*`` or ``?`` with no step above 1."""
    return any(_STAR.fullmatch(item) for item in text.split(","))


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
