"""Budget arithmetic: periods, utilisation, thresholds crossed once, forecasts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from costgov.domain.budgets import (
    Period,
    forecast,
    highest_crossed,
    hours_in_period,
    newly_crossed,
    period_bounds,
    utilization_percent,
)
from costgov.domain.costing import estimate_workload
from costgov.domain.reading import workload_from_object

from .helpers import CATALOG

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


def _cron(schedule: str, deadline: int | None, policy: str = "Allow") -> Any:
    job = {"template": {"spec": {
        "restartPolicy": "Never",
        "nodeSelector": {"node.kubernetes.io/instance-type": "g6.xlarge"},
        "containers": [{"name": "m", "image": "x", "resources": {"limits": {"nvidia.com/gpu": 1}}}],
    }}}  # fmt: skip
    if deadline is not None:
        job["activeDeadlineSeconds"] = deadline
    obj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "ml"},
           "spec": {"schedule": schedule, "concurrencyPolicy": policy,
                    "jobTemplate": {"spec": job}}}  # fmt: skip
    return estimate_workload(workload_from_object(obj), CATALOG)


def _in(est: Any, period: Period) -> Decimal:
    return hours_in_period(est.hours, period, est.workload.schedule, est.run_hours)


@pytest.mark.parametrize(
    ("schedule", "deadline", "policy", "monthly", "daily"),
    [
        # nightly, 4 h runs: 365/12 runs x 4 h = 121.67 h a month; its day: 1 run x 4 h
        ("0 2 * * *", 14400, "Allow", Decimal(365 * 4) / 12, 4),
        # every 10 min, 2 h runs that may overlap: 4,380 runs x 2 h = 8,760 h a month;
        # a day: 144 runs x 2 h = 288 h (12 runs at once)
        ("*/10 * * * *", 7200, "Allow", 8760, 288),
        # the same, never overlapping: at most 730 h a month, 24 h a day
        ("*/10 * * * *", 7200, "Forbid", 730, 24),
        # Sundays, 10 h runs: 52/12 runs x 10 h = 43.33 h a month; its busiest day 10 h
        ("0 0 * * 0", 36000, "Allow", Decimal(52 * 10) / 12, 10),
        # runs without a deadline: running all month, a rate: 730 h, 24 h a day
        ("0 2 * * *", None, "Allow", 730, 24),
    ],
)
def test_a_cronjob_costs_its_scheduled_runs_in_each_period(
    schedule: str, deadline: int | None, policy: str, monthly: Decimal, daily: int
) -> None:
    est = _cron(schedule, deadline, policy)
    assert _in(est, "monthly") == monthly
    assert _in(est, "daily") == daily


def test_a_run_costs_at_most_a_whole_period_each_period() -> None:
    # a 72 h run: 24 h of a daily budget, 72 h of a monthly one
    assert hours_in_period(Decimal(72), "daily") == 24
    assert hours_in_period(Decimal(72), "monthly") == 72
