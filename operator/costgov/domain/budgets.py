"""Budget arithmetic: periods, utilisation, thresholds crossed, linear forecasts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from costgov.domain.money import ZERO

__all__ = ["crossed", "forecast", "highest_crossed", "period_bounds", "utilization_percent"]


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


def crossed(
    before: Decimal, after: Decimal, amount: Decimal, thresholds: Sequence[int]
) -> list[int]:
    """Thresholds crossed going from `before` to `after` spend: each fires once per crossing."""
    return [t for t in thresholds if before * 100 < amount * t <= after * 100]


def forecast(spent: Decimal, start: datetime, end: datetime, now: datetime) -> Decimal:
    """Spend at period end if it goes on at this period's average rate so far."""
    elapsed = Decimal((now - start).total_seconds())
    total = Decimal((end - start).total_seconds())
    if elapsed <= 0:
        return spent if spent > ZERO else ZERO
    return spent * total / elapsed
