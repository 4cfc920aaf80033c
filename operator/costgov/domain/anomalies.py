"""Spend anomalies: an hour of spend against its own recent baseline.

    baseline: with two weeks of hourly history, the same hour of the week in the weeks
              before (spend follows the working week); with less, every earlier hour
              (a rolling baseline), given at least MIN_POINTS of them
    anomaly:  spend > mean + sigma x standard deviation, and spend - mean >= a minimum in
              dollars (a quiet subject's $0.02 -> $0.50 is not worth an alert)

Pure: hourly figures come in, the verdict and the numbers behind it go out.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

__all__ = [
    "MIN_POINTS",
    "WEEK",
    "Anomaly",
    "Baseline",
    "anomalies_of",
    "baseline",
    "hours",
    "judge",
]

MIN_POINTS = 6
"""Hours of history a rolling baseline needs (fewer: no verdict, said so)."""
WEEK = timedelta(days=7)
FLOOR = Decimal("0.01")
"""No threshold is below a cent (with no minimum, a subject that never spent is not
anomalous at $0.001)."""


@dataclass(frozen=True, slots=True)
class Baseline:
    mean: Decimal
    std: Decimal
    method: Literal["hour-of-week", "rolling"]
    points: int


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One subject's hour over its baseline, and what drove it."""

    subject: str
    """namespace/<name>, team/<name> or model/<provider>/<model>."""
    source: Literal["gpu", "api", "gpu+api"]
    hour_end: datetime
    spent: Decimal
    baseline: Baseline
    threshold: Decimal
    driver: str
    """The workload, team or model that spent the most of it."""

    @property
    def message(self) -> str:
        b = self.baseline
        return (
            f"{self.subject}: ${self.spent:,.2f} in the hour to {self.hour_end:%Y-%m-%d %H:%M} "
            f"UTC against a {b.method} baseline of ${b.mean:,.2f} +/- ${b.std:,.2f} "
            f"({b.points} hours; threshold ${self.threshold:,.2f}); driven by {self.driver}"
        )


def baseline(history: Mapping[datetime, Decimal], hour_end: datetime) -> Baseline | None:
    """The baseline for the hour ending at `hour_end` from the hours before it."""
    earlier = {t: v for t, v in history.items() if t < hour_end}
    same_hour = [v for t, v in earlier.items() if (hour_end - t) % WEEK == timedelta(0)]
    if len(same_hour) >= 2:
        values, method = same_hour, "hour-of-week"
    elif len(earlier) >= MIN_POINTS:
        values, method = list(earlier.values()), "rolling"
    else:
        return None
    return Baseline(
        statistics.mean(values), statistics.pstdev(values), method,  # type: ignore[arg-type]
        len(values),
    )  # fmt: skip


def judge(
    spent: Decimal, base: Baseline, *, sigma: Decimal, minimum: Decimal
) -> tuple[bool, Decimal]:
    """(whether `spent` is anomalous, the threshold it was held to)."""
    threshold = max(base.mean + sigma * base.std, base.mean + minimum, FLOOR)
    return spent > threshold, threshold


def anomalies_of(
    series: Mapping[str, Mapping[datetime, Decimal]],
    hour_end: datetime,
    drivers: Mapping[str, str],
    sources: Mapping[str, Literal["gpu", "api", "gpu+api"]],
    *,
    sigma: Decimal,
    minimum: Decimal,
) -> list[Anomaly]:
    """Every subject whose hour ending at `hour_end` is over its baseline."""
    found = []
    for subject, history in sorted(series.items()):
        spent = history.get(hour_end)
        base = baseline(history, hour_end)
        if spent is None or base is None:
            continue
        over, threshold = judge(spent, base, sigma=sigma, minimum=minimum)
        if over:
            found.append(Anomaly(subject, sources.get(subject, "api"), hour_end, spent, base,
                                 threshold, drivers.get(subject, "unknown")))  # fmt: skip
    return found


def hours(points: Sequence[tuple[datetime, Decimal]]) -> dict[datetime, Decimal]:
    """Hourly points summed by hour (several series of one subject)."""
    out: dict[datetime, Decimal] = {}
    for at, value in points:
        out[at] = out.get(at, Decimal(0)) + value
    return out
