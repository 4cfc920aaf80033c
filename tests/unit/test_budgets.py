"""Budget arithmetic: periods, utilisation, thresholds crossed once, forecasts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from costgov.domain.budgets import (
    forecast,
    highest_crossed,
    newly_crossed,
    period_bounds,
    utilization_percent,
)

THRESHOLDS = [50, 80, 95, 100]


def test_monthly_and_daily_periods_in_utc() -> None:
    now = datetime(2026, 12, 15, 10, 30, tzinfo=UTC)
    assert period_bounds(now, "monthly") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert period_bounds(now, "daily") == (
        datetime(2026, 12, 15, tzinfo=UTC),
        datetime(2026, 12, 16, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("spent", "pct", "highest"),
    [
        ("0", 0, None),
        ("4999.99", 49, None),
        ("5000", 50, 50),
        ("9500", 95, 95),
        ("12000", 120, 100),
    ],
)
def test_utilisation_and_highest_threshold(spent: str, pct: int, highest: int | None) -> None:
    # budget $10,000: 5,000 is 50 %, 9,500 is 95 %
    assert utilization_percent(Decimal(spent), Decimal(10000)) == pct
    assert highest_crossed(Decimal(spent), Decimal(10000), THRESHOLDS) == highest


def test_each_threshold_fires_once() -> None:
    # nothing recorded yet, 85 % spent: 50 and 80 fire; recorded 80, now 100 %: 95 and 100
    assert newly_crossed(None, 80, THRESHOLDS) == [50, 80]
    assert newly_crossed(80, 80, THRESHOLDS) == []
    assert newly_crossed(80, 100, THRESHOLDS) == [95, 100]
    assert newly_crossed(None, None, THRESHOLDS) == []


def test_forecast_at_the_current_rate_to_period_end() -> None:
    now, end = datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    # $3,000 spent, $12.50/h for the 10 days (240 h) left: 3,000 + 12.50 x 240 = 6,000
    assert forecast(Decimal(3000), Decimal("12.50"), now, end) == Decimal(6000)
    assert forecast(Decimal(3000), Decimal("12.50"), end, end) == Decimal(3000)
