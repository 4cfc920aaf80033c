"""Catching up on past spend in the background (services/catching_up.py), against a real
Prometheus holding test_accounting_prometheus's exporter history (4 hours: train-1 on
node-a, train-2 moving from node-b to node-a, llama-0 on node-c)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import cast

import pytest

from costgov.adapters.prometheus import MetricsError, PrometheusSource, QueryResult, RangeSeries
from costgov.catalog import load_catalog
from costgov.domain.spend import totals
from costgov.services.accounting import Snapshot, collect
from costgov.services.catching_up import CatchUp
from costgov.settings import Settings

from .test_accounting_prometheus import BASE, END, prometheus_url  # noqa: F401 (a fixture)

START, TO = datetime.fromtimestamp(BASE, UTC), datetime.fromtimestamp(END, UTC)
DAY = 86400
# the window's dollars by hand (test_accounting_prometheus.test_window_totals): train-1
# 110.08, train-2 13.76 + 2.0125 on its two nodes, llama-0 231 samples / 60 x 0.40
WHOLE = (
    Decimal("110.08") + Decimal("13.76") + Decimal("2.0125") + Decimal(231) / 60 * Decimal("0.40")
)


def _catchup(source: PrometheusSource, retry: float = 5.0) -> CatchUp:
    return CatchUp(source, load_catalog(), step=60, timeout=10, most=DAY, retry=retry)


def _cycle(at: datetime) -> Snapshot:
    """A steady cycle's snapshot (no windows of its own) ending at `at`."""
    return Snapshot(at, {}, (), {}, {}, {}, {}, 600, {}, 3, accounted_to=at)


def test_a_window_far_behind_is_counted_in_the_background_to_the_same_dollars(
    prometheus_url: str,  # noqa: F811
) -> None:
    async def scenario() -> tuple[Snapshot, CatchUp]:
        catchup = _catchup(PrometheusSource(Settings(prometheus_url=prometheus_url)))
        assert catchup.behind({"w": START, "now": TO - timedelta(minutes=1)}, TO, 600) == {"w"}
        catchup.want({"w": START}, TO, {})
        await asyncio.wait_for(catchup.settled(), 60)
        return catchup.report(_cycle(TO), {"w": START}), catchup

    snap, catchup = asyncio.run(scenario())
    assert_whole(snap, catchup)


def assert_whole(snap: Snapshot, catchup: CatchUp) -> None:
    """The window "w" caught up from START to TO, to the dollars by hand."""
    window = snap.windows["w"]
    assert (window.start, window.end) == (START, TO) and "w" not in snap.lagging
    total = totals(window.pods)
    assert total.complete and total.cost == pytest.approx(WHOLE)
    # train-2 moved nodes in the second hour: 2 GPU-h on each, priced on each
    moved = {c.usage.node: c.usage.gpu_hours for c in window.pods if c.usage.pod == "train-2-xyz"}
    assert moved == {"node-a": 2, "node-b": 2}
    # owners from the history (kube_pod_owner), for pods long gone by the cycle's time
    assert catchup.owners()[("ml-research", "train-1-abc")] == ("Job", "train-1")


def test_the_cycle_never_waits_for_a_chunk_and_says_how_far_it_got(
    prometheus_url: str,  # noqa: F811
) -> None:
    """Queries about the past hang (a month at scale); the steady cycle's own queries answer
    at once, and the window behind is reported lagging, nothing counted yet."""
    real = PrometheusSource(Settings(prometheus_url=prometheus_url))
    release = asyncio.Event()

    class PastIsSlow:
        def close(self) -> None: ...

        async def query(self, expr: str, when: datetime) -> QueryResult:
            if when < TO:  # a chunk ends before the cycle
                await release.wait()
            return await real.query(expr, when)

        async def points(
            self, expr: str, when: datetime
        ) -> tuple[tuple[RangeSeries, ...], tuple[str, ...]]:
            return await real.points(expr, when)  # the recording rules' evaluations (none)

    async def scenario() -> tuple[Snapshot, Snapshot, CatchUp]:
        catchup = _catchup(cast(PrometheusSource, PastIsSlow()))
        catchup.want({"w": START}, TO, {})
        steady = await asyncio.wait_for(
            collect(real, load_catalog(), at=TO, windows={"now": TO - timedelta(minutes=1)},
                    interval_seconds=600, step_seconds=60, live_node_labels={}),
            10,
        )  # fmt: skip
        first = catchup.report(steady, {"w": START})
        release.set()
        await asyncio.wait_for(catchup.settled(), 60)
        return first, catchup.report(steady, {"w": START}), catchup

    first, later, _ = asyncio.run(scenario())
    assert first.error is None and first.windows["now"].pods  # llama-0's last minute
    assert "w" not in first.windows
    assert first.lagging["w"] == f"counted in the background from {START:%Y-%m-%dT%H:%M:%SZ}"
    assert later.windows["w"].end == TO and "w" not in later.lagging


def test_a_failing_chunk_is_retried_smaller_and_says_why(prometheus_url: str) -> None:  # noqa: F811
    class Down:
        def close(self) -> None: ...

        async def query(self, expr: str, when: datetime) -> QueryResult:
            raise MetricsError("Prometheus did not answer within 10 s")

        async def points(self, expr: str, when: datetime) -> QueryResult:
            raise MetricsError("Prometheus did not answer within 10 s")

    async def scenario() -> tuple[Snapshot, CatchUp]:
        catchup = _catchup(cast(PrometheusSource, Down()), retry=0.05)
        catchup.want({"w": START}, TO, {})
        await asyncio.sleep(0.3)  # a few failed chunks
        snap = catchup.report(_cycle(TO), {"w": START})
        catchup.close()
        return snap, catchup

    snap, catchup = asyncio.run(scenario())
    assert "w" not in snap.windows
    assert "did not answer within 10 s" in snap.lagging["w"]
    assert catchup.chunk < 3600 and catchup.chunk >= 60  # halved each time, never below a step


def test_the_point_reached_is_a_window_of_its_own_sharing_later_chunks(
    prometheus_url: str,  # noqa: F811
) -> None:
    """Resources that moved their cursor to where the counting reached, and those that did
    not yet, are both counted on from there by the same chunks (no query asked twice)."""
    real = PrometheusSource(Settings(prometheus_url=prometheus_url))
    half = START + timedelta(hours=2)
    asked: list[tuple[str, datetime]] = []

    class Counted:
        def close(self) -> None: ...

        async def query(self, expr: str, when: datetime) -> QueryResult:
            asked.append((expr, when))
            return await real.query(expr, when)

        async def points(
            self, expr: str, when: datetime
        ) -> tuple[tuple[RangeSeries, ...], tuple[str, ...]]:
            return await real.points(expr, when)  # the recording rules' evaluations (none)

    async def scenario() -> tuple[Snapshot, Snapshot]:
        catchup = _catchup(cast(PrometheusSource, Counted()))
        catchup.want({"w": START}, half, {})  # the cycle then ended two hours in
        await asyncio.wait_for(catchup.settled(), 60)
        early = catchup.report(_cycle(TO), {"w": START})  # reached `half`: a window starts there
        asked.clear()
        catchup.want({"w": START, "moved": half}, TO, {})
        await asyncio.wait_for(catchup.settled(), 60)
        return early, catchup.report(_cycle(TO), {"w": START, "moved": half})

    early, snap = asyncio.run(scenario())
    first, whole, moved = early.windows["w"], snap.windows["w"], snap.windows["moved"]
    assert (first.start, first.end) == (START, half)
    assert (whole.start, whole.end, moved.start, moved.end) == (START, TO, half, TO)
    assert totals(whole.pods).cost == pytest.approx(WHOLE)
    assert totals(whole.pods).cost == totals(first.pods).cost + totals(moved.pods).cost
    assert asked and len(asked) == len(set(asked))  # each chunk asked once, for both
