"""How often a CronJob runs: its schedule, counted over a year.

Kubernetes parses CronJob schedules with robfig/cron's standard parser: five fields
(minute, hour, day of month, month, day of week) with `*`, `?`, lists, ranges, steps and
month/weekday names, or a descriptor (@yearly, @annually, @monthly, @weekly, @daily,
@midnight, @hourly, @every <duration>). When both day of month and day of week are
restricted, a day matches either (cron's rule); when one is `*` or `?`, both must match.
Runs a month are the runs in one calendar year (2026, a non-leap year) over twelve.
"""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from decimal import Decimal

__all__ = ["ScheduleError", "runs_per_month", "schedule_runs"]

_YEAR = 2026
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i
            for i, m in enumerate(
                [
                    "JAN",
                    "FEB",
                    "MAR",
                    "APR",
                    "MAY",
                    "JUN",
                    "JUL",
                    "AUG",
                    "SEP",
                    "OCT",
                    "NOV",
                    "DEC",
                ],
                1,
            )
        },
    ),
    (
        "day of week",
        0,
        6,
        {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])},
    ),
)
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DURATION = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,9})?)(h|m|s|ms)")
_UNIT_SECONDS = {"h": Decimal(3600), "m": Decimal(60), "s": Decimal(1), "ms": Decimal("0.001")}
_SECONDS_PER_MONTH = Decimal(730 * 3600)
_SECONDS_PER_DAY = Decimal(24 * 3600)


class ScheduleError(ValueError):
    """A schedule costgov cannot read (the apiserver would refuse it too)."""


def _value(text: str, low: int, high: int, names: dict[str, int], what: str) -> int:
    found = names.get(text.upper())
    if found is not None:
        return found
    if not text.isdigit() or len(text) > 2:
        raise ScheduleError(f"{what}: {text!r} is not a number from {low} to {high}")
    number = int(text)
    if not low <= number <= high:
        raise ScheduleError(f"{what}: {number} is outside {low}-{high}")
    return number


def _part(part: str, low: int, high: int, names: dict[str, int], what: str) -> set[int]:
    base, _, step_text = part.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or not 0 < int(step_text) <= high:
            raise ScheduleError(f"{what}: step {step_text!r} must be from 1 to {high}")
        step = int(step_text)
    if base in ("*", "?"):
        start, end = low, high
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = (_value(x, low, high, names, what) for x in (first, last))
        if start > end:
            raise ScheduleError(f"{what}: range {base!r} runs backwards")
    else:
        start = _value(base, low, high, names, what)
        end = high if step_text else start
    return set(range(start, end + 1, step))


def _field(text: str, index: int) -> tuple[set[int], bool]:
    """The values a field allows, and whether it is unrestricted (`*` or `?`)."""
    what, low, high, names = _FIELDS[index]
    if len(text) > 200:
        raise ScheduleError(f"{what}: too long")
    values: set[int] = set()
    for part in text.split(","):
        values |= _part(part, low, high, names, what)
    return values, text in ("*", "?")


def _every(text: str) -> tuple[Decimal, Decimal]:
    spec = text.removeprefix("@every").strip()
    parts = _DURATION.findall(spec)
    if not parts or "".join(n + u for n, u in parts) != spec:
        raise ScheduleError(f"@every: {spec!r} is not a duration such as 1h30m")
    seconds = sum((Decimal(n) * _UNIT_SECONDS[u] for n, u in parts), Decimal(0))
    if seconds < 1:
        raise ScheduleError("@every: the interval must be at least one second")
    return _SECONDS_PER_MONTH / seconds, Decimal(math.ceil(_SECONDS_PER_DAY / seconds))


def runs_per_month(schedule: str) -> Decimal:
    """How many times a month (730 h) a CronJob schedule fires, on average over a year."""
    return schedule_runs(schedule)[0]


def schedule_runs(schedule: str) -> tuple[Decimal, Decimal]:
    """How many times a CronJob schedule fires: a month (730 h), on average over a year, and
    on the busiest day (every day it fires, it fires hours x minutes times)."""
    text = " ".join(schedule.split())
    if text.startswith("@every"):
        return _every(text)
    text = _DESCRIPTORS.get(text.lower(), text)
    fields = text.split(" ")
    if len(fields) != 5:
        raise ScheduleError(f"expected five fields (minute hour day month weekday), got {text!r}")
    (minutes, _), (hours, _), (days, any_day), (months, _), (weekdays, any_weekday) = (
        _field(f, i) for i, f in enumerate(fields)
    )
    matching = 0
    day = date(_YEAR, 1, 1)
    while day.year == _YEAR:
        if day.month in months:
            dom, dow = day.day in days, day.isoweekday() % 7 in weekdays
            if (dom and dow) if (any_day or any_weekday) else (dom or dow):
                matching += 1
        day += timedelta(days=1)
    per_day = len(hours) * len(minutes) if matching else 0
    return Decimal(matching * per_day) / 12, Decimal(per_day)
