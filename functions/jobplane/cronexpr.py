"""Cron schedules as PingSource takes them: five fields or a macro, parsed and matched.

Spec validation needs to reject a bad ``schedule`` with a precise reason before a PingSource
(or the embedded cron) ever sees it; the same parse tells the embedded cron whether a minute
fires. Semantics follow robfig/cron's standard parser, which Knative's PingSource uses: names
(``JAN``, ``MON``) case-insensitive, ``7`` is Sunday too, ``?`` means ``*``, and when both
day fields are restricted (not ``*``/``?``, a step above 1 restricts) a day matches if either
does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

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
_STAR = re.compile(r"[*?](/0*1)?")
_ITEM = re.compile(r"^(?P<range>\*|\?|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>[0-9]+))?$")


class CronError(ValueError):
    """A schedule that does not parse; the message says which field and why."""


@dataclass(frozen=True)
class Cron:
    """A parsed schedule: the allowed values of each field (weekday 7 folded into 0)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    """Day of month was unrestricted (``*``, ``?``, ``*/1``)."""
    any_weekday: bool
    """Day of week was unrestricted."""

    def matches(self, moment: datetime) -> bool:
        """Whether the schedule fires in ``moment``'s minute (in ``moment``'s own timezone)."""
        if moment.minute not in self.minutes or moment.hour not in self.hours:
            return False
        if moment.month not in self.months:
            return False
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok


def parse(expr: str) -> Cron:
    """Parse ``expr`` (five fields or a macro); ``CronError`` says what is wrong."""
    text = " ".join(expr.split())
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CronError(f"unknown macro {text!r}: expected one of {', '.join(MACROS)}")
        text = MACROS[text.lower()]
    if text.upper().startswith(("TZ=", "CRON_TZ=")):
        raise CronError("put the timezone in the spec's timezone field, not in the schedule")
    parts = text.split(" ")
    if len(parts) != len(FIELDS):
        raise CronError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
    values = [_parse_field(part, field) for part, field in zip(parts, FIELDS, strict=True)]
    weekdays = frozenset(v % 7 for v in values[4])
    return Cron(
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
        any_day=_unrestricted(parts[2]),
        any_weekday=_unrestricted(parts[4]),
    )


def _unrestricted(text: str) -> bool:
    """robfig/cron's star bit: some item is ``*`` or ``?`` with no step above 1."""
    return any(_STAR.fullmatch(item) for item in text.split(","))


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    allowed: set[int] = set()
    for item in text.split(","):
        allowed |= _parse_item(item, field)
    return frozenset(allowed)


def _parse_item(item: str, field: _Field) -> set[int]:
    match = _ITEM.match(item)
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
