"""Budget arithmetic: periods, utilisation, thresholds crossed, linear forecasts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from costgov.domain.money import ZERO

__all__ = ["forecast", "highest_crossed", "newly_crossed", "period_bounds", "utilization_percent"]


def period_bounds(now: datetime, period: Literal["monthly", "daily"]) -> tuple[datetime, datetime]:
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
