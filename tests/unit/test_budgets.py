"""Budget arithmetic: periods, utilisation, thresholds crossed once, forecasts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from costgov.domain.budgets import (
    crossed,
    forecast,
    highest_crossed,
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


def test_each_threshold_is_crossed_once() -> None:
    # 4,000 -> 8,500 of 10,000 crosses 50 % and 80 %; staying at 8,500 crosses nothing
    assert crossed(Decimal(4000), Decimal(8500), Decimal(10000), THRESHOLDS) == [50, 80]
    assert crossed(Decimal(8500), Decimal(8500), Decimal(10000), THRESHOLDS) == []
    assert crossed(Decimal(8500), Decimal(10000), Decimal(10000), THRESHOLDS) == [95, 100]


def test_linear_forecast_to_period_end() -> None:
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    # $3,000 spent in the first 10 of 30 days: 3,000 x 30 / 10 = 9,000 at month end
    assert forecast(Decimal(3000), start, end, datetime(2026, 11, 11, tzinfo=UTC)) == Decimal(9000)
    assert forecast(Decimal(0), start, end, start) == Decimal(0)
