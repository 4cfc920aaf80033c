"""The steady cycle's two savings, against a real Prometheus holding kube-state-metrics
series written as KSM v2.20.0 writes them (tests/integration/exporters.py):

- a steady window of at most 4 sample points is asked for point by point (one range-vector
  answer): its sum is the window's GPU time, its last point the GPUs held now;
- only the owners of pods the API does not show are asked of Prometheus, by name.

History (step 60 s, KSM scraped at :30 every minute, a point sees a sample up to 300 s
old). Window (END-180, END]: points END-120, END-60, END.

- ml/live-0, 8 GPUs on n1, Running throughout; the API shows it (Job live-0).
  3 points x 8 GPUs x 60 s = 1,440 GPU-s = 0.4 GPU-h; holds 8 GPUs now.
- ml/gone-0, 4 GPUs on n1, Running until its sample at END-90, Succeeded at END-30, then
  deleted: the API shows it no more; kube_pod_info says Job gone-0 created it.
  Points END-120 (sees END-150: Running) and END-60 (sees END-90: Running) count, END
  (sees END-30: Succeeded) does not: 2 x 4 x 60 = 480 GPU-s = 0.1333... GPU-h.

n1 is an on-demand p4d.24xlarge in us-east-1: $21.96/h for 8 GPUs (the bundled catalog,
Karpenter's AWS price list), $2.745 per GPU-hour. By hand: live-0 0.4 x 2.745 = $1.098;
gone-0 480 / 3600 x 2.745 = $0.366; live-0 now 8 x 2.745 = $21.96/h.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

import pytest

from costgov.adapters.prometheus import MetricsError, PrometheusSource, QueryResult, RangeSeries
from costgov.catalog import load_catalog
from costgov.services.accounting import Snapshot, collect
from costgov.settings import Settings

from .exporters import KSM_TARGET, ksm_scrapes
from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
AT = datetime.fromtimestamp(END, UTC)
NODE = {
    **KSM_TARGET,
    "node": "n1",
    "label_node_kubernetes_io_instance_type": "p4d.24xlarge",
    "label_topology_kubernetes_io_region": "us-east-1",
    "label_karpenter_sh_capacity_type": "on-demand",
}


def _history() -> History:
    h = History()
    h.span("kube_node_labels", NODE, 1, END - 3600, END + 600)
    first = END - 3600 + 30
    ksm_scrapes(h, range(first, END + 600, 60), namespace="ml", pod="live-0", uid="u-live",
                node="n1", gpus=8, created_by=("Job", "live-0"))  # fmt: skip
    ksm_scrapes(h, range(first, END - 60, 60), namespace="ml", pod="gone-0", uid="u-gone",
                node="n1", gpus=4, created_by=("Job", "gone-0"))  # fmt: skip
    ksm_scrapes(h, [END - 30], namespace="ml", pod="gone-0", uid="u-gone", node="n1",
                gpus=4, created_by=("Job", "gone-0"), phase="Succeeded")  # fmt: skip
    return h


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


class Recorded(PrometheusSource):
    """The real source, remembering what it was asked (and failing what `failing` names)."""

    asked: ClassVar[list[str]] = []
    failing: ClassVar[str] = "nothing"

    async def query(self, expr: str, at: datetime) -> QueryResult:
        self.asked.append(expr)
        if self.failing in expr:
            raise MetricsError(f"Prometheus did not answer {expr[:30]!r} within 5 s")
        return await super().query(expr, at)

    async def points(
        self, expr: str, at: datetime
    ) -> tuple[tuple[RangeSeries, ...], tuple[str, ...]]:
        self.asked.append(expr)
        return await super().points(expr, at)


def _snapshot(url: str, live: Mapping[tuple[str, str], str | None] | None, **kw: int) -> Snapshot:
    Recorded.asked = []
    return asyncio.run(
        collect(Recorded(Settings(prometheus_url=url)), load_catalog(), at=AT,
                windows={"w": AT - timedelta(seconds=kw.get("span", 180))},
                interval_seconds=300, step_seconds=60, live_node_labels={},
                live_pod_owners=live, unit_costs=False)
    )  # fmt: skip


def _lines(snap: Snapshot) -> dict[str, tuple[Decimal, Decimal | None]]:
    return {c.usage.pod: (c.usage.gpu_seconds, c.cost) for c in snap.windows["w"].pods}


def test_a_short_window_point_by_point_and_now_from_its_last_point(url: str) -> None:
    snap = _snapshot(url, {("ml", "live-0"): "live-0"})
    assert snap.error is None
    assert _lines(snap) == {
        "live-0": (Decimal(1440), Decimal("1.098")),
        "gone-0": (Decimal(480), Decimal("0.366")),
    }
    now = {c.usage.pod: (c.usage.gpu_hours, c.cost) for c in snap.hourly}
    assert now == {"live-0": (Decimal(8), Decimal("21.96"))}
    # no query of its own for now, and no history form beside the points
    assert not any(q.startswith("sum by (namespace, pod, node) (sum by") for q in Recorded.asked)
    assert sum("kube_pod_status_phase" in q for q in Recorded.asked) == 1


def test_only_the_pod_the_api_does_not_show_has_its_owner_asked(url: str) -> None:
    snap = _snapshot(url, {("ml", "live-0"): "live-0"})
    owner_queries = [q for q in Recorded.asked if "kube_pod_owner" in q]
    assert len(owner_queries) == 1 and 'pod=~"gone-0"' in owner_queries[0]
    assert "live-0" not in owner_queries[0]
    assert snap.owners == {("ml", "live-0"): "live-0", ("ml", "gone-0"): "gone-0"}
    # nodes, utilisation, the window's points; then the one owners query
    assert snap.queries == 4


def test_no_owners_query_when_the_api_shows_every_pod_counted(url: str) -> None:
    snap = _snapshot(url, {("ml", "live-0"): "live-0", ("ml", "gone-0"): "gone-0"})
    assert not any("kube_pod_owner" in q for q in Recorded.asked)
    assert snap.queries == 3 and snap.owners[("ml", "gone-0")] == "gone-0"


def test_without_the_api_every_owner_is_asked_in_the_first_round(url: str) -> None:
    snap = _snapshot(url, None)
    owner_queries = [q for q in Recorded.asked if "kube_pod_owner" in q]
    assert len(owner_queries) == 1 and "pod=~" not in owner_queries[0]
    assert snap.owners == {("ml", "live-0"): "live-0", ("ml", "gone-0"): "gone-0"}


def test_a_failed_owners_query_fails_the_cycle_not_its_attribution(url: str) -> None:
    """Spend attributed to no Job would read as a budget's $0: the cycle fails instead, and
    the resources keep their last figures."""
    Recorded.failing = "kube_pod_owner"
    try:
        snap = _snapshot(url, {("ml", "live-0"): "live-0"})
    finally:
        Recorded.failing = "nothing"
    assert snap.error is not None and "within 5 s" in snap.error
    assert snap.windows == {} and snap.hourly == ()


def test_a_longer_window_is_counted_by_its_sums_and_now_asked_apart(url: str) -> None:
    """Window (END-300, END], 5 points: live-0 5 x 8 x 60 = 2,400 GPU-s; gone-0 Running at
    END-240 (sees END-270), END-180, END-120, END-60: 4 x 4 x 60 = 960 GPU-s."""
    snap = _snapshot(url, {("ml", "live-0"): "live-0"}, span=300)
    assert {k: v[0] for k, v in _lines(snap).items()} == {
        "live-0": Decimal(2400),
        "gone-0": Decimal(960),
    }
    assert {c.usage.pod: c.usage.gpu_hours for c in snap.hourly} == {"live-0": Decimal(8)}


def test_an_answer_with_no_points_is_an_error_not_zero(url: str) -> None:
    source = PrometheusSource(Settings(prometheus_url=url))
    with pytest.raises(MetricsError, match="no range vector"):
        asyncio.run(source.points("kube_node_labels", AT))
