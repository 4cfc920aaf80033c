"""How much a gateway counter grew over a window (adapters/promql.py `counter_growth`),
against a real Prometheus, for the shapes scrapes really leave: a gap at a window's start
(a failed scrape marks the series stale), a series born inside the window with a lifetime
total behind it (a gateway that counted before Prometheus first scraped it), a reset.

Every counter grows $1 a minute from $5,000, sampled every minute; W0 = [A - 1 h, A] and
W1 = [A, END] are consecutive windows of an hour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from costgov.adapters import promql
from costgov.adapters.prometheus import PrometheusSource
from costgov.settings import Settings

from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 3) * 3600
A = END - 3600
M = "litellm_spend_metric_total"


def _value(ts: int) -> float:
    return 5000 + (ts - (END - 3 * 3600)) / 60


def _history() -> History:
    h = History()
    for ts in range(END - 3 * 3600, END + 61, 60):
        if not A - 360 <= ts < A + 60:  # a gap from 6 minutes before A to 1 minute after
            h.add(M, {"case": "gap"}, _value(ts), ts)
        if ts >= A + 1800:  # first scraped half-way through W1, $5,000+ already counted
            h.add(M, {"case": "born"}, _value(ts), ts)
        restarted = _value(ts) if ts < A + 1800 else (ts - (A + 1800)) / 60
        h.add(M, {"case": "reset"}, restarted, ts)  # restarts from 0 half-way through W1
    return h


@pytest.fixture(scope="module")
def growth() -> Iterator[dict[tuple[str, int], float]]:
    with running_prometheus(_history()) as url:
        source = PrometheusSource(Settings(prometheus_url=url))

        async def at(end: int) -> dict[str, float]:
            found = await source.query(
                promql.counter_growth(M, 3600), datetime.fromtimestamp(end, UTC)
            )
            return {s.labels["case"]: s.value for s in found.samples}

        yield {(case, end): v for end in (A, END) for case, v in asyncio.run(at(end)).items()}


def test_a_gap_at_the_start_neither_loses_nor_adds(growth: dict[tuple[str, int], float]) -> None:
    # W0 ends at its last sample before the gap (A - 7 min): 53 minutes, $53; W1 starts
    # from that sample: 67 minutes, $67; together the two hours' $120, nothing twice
    assert growth[("gap", A)] == pytest.approx(53)
    assert growth[("gap", END)] == pytest.approx(67)


def test_a_series_first_seen_inside_the_window_is_not_its_lifetime(
    growth: dict[tuple[str, int], float],
) -> None:
    # 31 samples (A + 30 min .. END), $30 between the first and the last; increase()
    # extrapolates half a scrape interval before the first (it cannot know more):
    # 30 x 30.5 / 30 = 30.5, not $5,000+
    assert growth[("born", END)] == pytest.approx(30.5)
    assert ("born", A) not in growth


def test_a_reset_inside_the_window_counts_across_it(growth: dict[tuple[str, int], float]) -> None:
    # $29 before the reset (samples A .. A + 29 min), then 0 .. $30: increase() counts both
    assert growth[("reset", END)] == pytest.approx(60, abs=1.5)
