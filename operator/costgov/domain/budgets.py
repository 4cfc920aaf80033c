"""Budget arithmetic: periods, what a workload costs within one, what is left, utilisation,
thresholds crossed, linear forecasts.

A workload is judged against a budget in the budget's own period: a daily budget against
what it costs in a day (24 h), a monthly one against a month (730 h, as cloud price pages
count it), a TrainingJobBudget (a whole effort) against its whole run. A workload without a
runtime limit is a rate: it costs a full period in every period. A CronJob with bounded
runs costs its scheduled runs: a month of them (overlapping runs add up), or its busiest
day's (a nightly 4 h run is 4 h of a daily budget, not 24).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from costgov.domain.money import HOURS_PER_MONTH, SECONDS_PER_HOUR, ZERO
from costgov.domain.workloads import Schedule

__all__ = [
    "PERIOD_HOURS",
    "BudgetView",
    "Period",
    "cost_in_period",
    "forecast",
    "highest_crossed",
    "hours_in_period",
    "newly_crossed",
    "period_bounds",
    "still_to_spend",
    "utilization_percent",
]

Period = Literal["monthly", "daily"]
PERIOD_HOURS: dict[str, Decimal] = {"daily": Decimal(24), "monthly": HOURS_PER_MONTH}
PERIOD_WORD = {"daily": "day", "monthly": "month"}


def hours_in_period(
    hours: Decimal,
    period: Period,
    schedule: Schedule | None = None,
    run_hours: Decimal | None = None,
) -> Decimal:
    """The hours a workload priced for `hours` runs within one period: at most a whole
    period (a 72 h run costs 24 h of a daily budget each day it runs). A CronJob whose runs
    are bounded (`run_hours` each) runs its schedule's: in a month, the `hours` priced (a
    month of scheduled runs; runs that may overlap add up beyond 730 h); in a day, its
    busiest day's runs (at most 24 h when runs never overlap)."""
    if schedule is None or run_hours is None:
        return min(hours, PERIOD_HOURS[period])
    if period == "monthly":
        return hours
    day = schedule.runs_per_day * run_hours
    return day if schedule.overlapping else min(day, PERIOD_HOURS[period])


def cost_in_period(
    hourly: Decimal,
    hours: Decimal,
    period: Period,
    schedule: Schedule | None = None,
    run_hours: Decimal | None = None,
) -> Decimal:
    """What a workload costs within one period, at `hourly` (see `hours_in_period`)."""
    return hourly * hours_in_period(hours, period, schedule, run_hours)


def still_to_spend(
    hourly: Decimal | None, hours: Decimal, started: datetime | None, now: datetime
) -> Decimal | None:
    """What a run still costs from `now` to its end (the whole run if not started yet)."""
    if hourly is None:
        return None
    elapsed = Decimal((now - started).total_seconds()) / SECONDS_PER_HOUR if started else Decimal(0)
    return hourly * max(Decimal(0), hours - elapsed)


@dataclass(frozen=True, slots=True)
class BudgetView:
    """What is known of a budget: its amount, spend so far, and estimates already committed."""

    name: str
    amount: Decimal
    spent: Decimal | None
    """None when spend is unknown (offline): the whole budget is judged, and a note says so."""
    committed: Decimal = Decimal(0)
    """What other work already admitted against it is still expected to cost."""

    @property
    def remaining(self) -> Decimal:
        return self.amount - (self.spent or Decimal(0)) - self.committed


def period_bounds(now: datetime, period: Period) -> tuple[datetime, datetime]:
    """The UTC calendar month or day containing `now`: [start, end)."""
    now = now.astimezone(UTC)
    if period == "daily":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else (start.replace(month=start.month + 1))
    )
    return start, end


def utilization_percent(spent: Decimal, amount: Decimal) -> int:
    """spent / amount in whole percent, rounded down (100 means the budget is used up)."""
    if amount <= 0:
        return 100 if spent > 0 else 0
    return int(spent * 100 // amount)


def highest_crossed(spent: Decimal, amount: Decimal, thresholds: Sequence[int]) -> int | None:
    """The highest threshold (percent) that spend has reached, or None."""
    reached = [t for t in thresholds if spent * 100 >= amount * t]
    return max(reached) if reached else None


def newly_crossed(prior: object, highest: int | None, thresholds: Sequence[int]) -> list[int]:
    """Thresholds reached now and not recorded before (`prior`, the last one recorded): each
    fires one event, once, even when the figures are recomputed from scratch."""
    if highest is None:
        return []
    floor = prior if isinstance(prior, int) else -1
    return [t for t in thresholds if floor < t <= highest]


def forecast(spent: Decimal, hourly: Decimal, now: datetime, end: datetime) -> Decimal:
    """Spend at `end` if the current hourly rate goes on until then."""
    hours_left = max(Decimal((end - now).total_seconds()), ZERO) / 3600
    return spent + hourly * hours_left
