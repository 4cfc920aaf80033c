"""The steady window's node read from the GPU requests (`promql.gpu_points_requested`), and
the pods that form cannot place asked for again by the join through kube_pod_info, against
a real Prometheus. Series are written as kube-state-metrics v2.20.0 writes them
(tests/integration/exporters.py: its requests carry `node` once the pod is scheduled),
except where a case says what differs.

Step 60 s, KSM scraped at :30 every minute; a point sees a sample up to 300 s old and, as
after a Prometheus restart or in a backfill, no staleness marker ends a series early. Three
stretches of history, each its own window of 3 points (END-120, END-60, END) 30 minutes
apart, so that no sample of one is seen from another:

A (ends A_END): ml/a-0, 8 GPUs on n1, Running, written exactly as KSM writes it; and
  ml/wait-0, 1 GPU, Pending on no node. By hand: a-0 3 points x 8 GPUs x 60 s = 1,440
  GPU-s = 0.4 GPU-h; wait-0 holds nothing and is no line.
B (ends B_END):
  - ml/bare-0, 2 GPUs on n1, Running, its requests without `node` (a relabelling dropped
    it): 3 x 2 x 60 = 360 GPU-s = 0.1 GPU-h, all on n1 (kube_pod_info's node).
  - ml/db-0, a StatefulSet pod replaced on another node under its name: object u-old, 4 GPUs
    on n1, last scraped Running at B_END-150; object u-new, 4 GPUs on n2, Running from its
    scrape at B_END-90. Point B_END-120 sees only u-old: n1. Points B_END-60 and B_END see
    both (u-old's last sample is within 300 s); kube_pod_info's newest sample is u-new's:
    n2. By hand: n1 1 x 4 x 60 = 240 GPU-s; n2 2 x 4 x 60 = 480 GPU-s (not 720 on n1 as
    well, which reading each object's requests alone would give). Now: 4 GPUs on n2.
C (ends C_END): ml/Odd_0, 1 GPU on n1, Running, requests without `node`, a `pod` label no
  Kubernetes pod has (a relabelling rewrote it): 3 x 1 x 60 = 180 GPU-s, found by asking
  the join for every pod.
D (ends D_END): ml/ghost-0, 2 GPUs, Running, requests without `node` and no kube_pod_info
  at all (a metric denylist): no node to price it on, so the window counts it not, and
  says so in a warning (never a silent $0).

n1 and n2 are on-demand p4d.24xlarge in us-east-1: $21.96/h for 8 GPUs (the bundled
catalog, Karpenter's AWS price list), $2.745 per GPU-hour. By hand: a-0 0.4 x 2.745 =
$1.098; bare-0 0.1 x 2.745 = $0.2745; db-0 on n1 240 / 3600 x 2.745 = $0.183, on n2
480 / 3600 x 2.745 = $0.366, now 4 x 2.745 = $10.98/h; Odd_0 180 / 3600 x 2.745 =
$0.13725.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

import pytest

from costgov.adapters.prometheus import MetricsError, PrometheusSource, RangeSeries
from costgov.catalog import load_catalog
from costgov.services.accounting import Snapshot, collect
from costgov.settings import Settings

from .exporters import KSM_TARGET, PHASES, ksm_scrapes
from .prom import History, running_prometheus

D_END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
C_END = D_END - 1800
B_END = C_END - 1800
A_END = B_END - 1800
P4D = {
    "label_node_kubernetes_io_instance_type": "p4d.24xlarge",
    "label_topology_kubernetes_io_region": "us-east-1",
    "label_karpenter_sh_capacity_type": "on-demand",
}


def _without_node_on_requests(
    h: History, times: range, pod: str, gpus: int, info: bool = True
) -> None:
    """KSM's series of a Running pod on n1 whose requests lost `node` to a relabelling
    (`info`: kube_pod_info kept)."""
    ids = {**KSM_TARGET, "namespace": "ml", "pod": pod, "uid": f"u-{pod}"}
    where = {**ids, "node": "n1", "host_ip": "10.0.0.10", "pod_ip": "10.1.0.11"}
    request = {**ids, "container": "main", "resource": "nvidia_com_gpu", "unit": "integer"}
    for t in times:
        if info:
            h.add("kube_pod_info", {**where, "created_by_kind": "Job", "created_by_name": pod},
                  1, t)  # fmt: skip
        h.add("kube_pod_container_resource_requests", request, gpus, t)
        for p in PHASES:
            h.add("kube_pod_status_phase", {**ids, "phase": p}, int(p == "Running"), t)


def _history() -> History:
    h = History()
    for node in ("n1", "n2"):
        h.span("kube_node_labels", {**KSM_TARGET, "node": node, **P4D}, 1, A_END - 900, C_END + 1)
    a = range(A_END - 600 + 30, A_END + 60, 60)
    ksm_scrapes(h, a, namespace="ml", pod="a-0", uid="u-a", node="n1", gpus=8,
                created_by=("Job", "a"))  # fmt: skip
    ksm_scrapes(h, a, namespace="ml", pod="wait-0", uid="u-w", node="", gpus=1,
                created_by=("Job", "wait"), phase="Pending")  # fmt: skip
    _without_node_on_requests(h, range(B_END - 600 + 30, B_END + 60, 60), "bare-0", 2)
    ksm_scrapes(h, range(B_END - 600 + 30, B_END - 120, 60), namespace="ml", pod="db-0",
                uid="u-old", node="n1", gpus=4, created_by=("StatefulSet", "db"))  # fmt: skip
    ksm_scrapes(h, range(B_END - 90, B_END + 60, 60), namespace="ml", pod="db-0",
                uid="u-new", node="n2", gpus=4, created_by=("StatefulSet", "db"))  # fmt: skip
    _without_node_on_requests(h, range(C_END - 600 + 30, C_END + 60, 60), "Odd_0", 1)
    _without_node_on_requests(h, range(D_END - 600 + 30, D_END + 60, 60), "ghost-0", 2, False)
    return h


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


class Recorded(PrometheusSource):
    """The real source, remembering the point-by-point queries (failing the join through
    kube_pod_info when `failing`)."""

    asked: ClassVar[list[str]] = []
    failing: ClassVar[bool] = False

    async def points(
        self, expr: str, at: datetime
    ) -> tuple[tuple[RangeSeries, ...], tuple[str, ...]]:
        self.asked.append(expr)
        if self.failing and "kube_pod_info" in expr:
            raise MetricsError("Prometheus did not answer within 5 s")
        return await super().points(expr, at)


def _snapshot(url: str, end: int, *, failing: bool = False) -> Snapshot:
    Recorded.asked, Recorded.failing = [], failing
    at = datetime.fromtimestamp(end, UTC)
    return asyncio.run(
        collect(Recorded(Settings(prometheus_url=url)), load_catalog(), at=at,
                windows={"w": at - timedelta(seconds=180)}, interval_seconds=300,
                step_seconds=60, live_node_labels={}, live_pod_owners={}, owners_in=(),
                unit_costs=False)
    )  # fmt: skip


def _lines(snap: Snapshot) -> dict[tuple[str, str], tuple[Decimal, Decimal | None]]:
    return {
        (c.usage.pod, c.usage.node): (c.usage.gpu_seconds, c.cost) for c in snap.windows["w"].pods
    }


def test_pods_as_kube_state_metrics_writes_them_are_placed_by_their_requests(url: str) -> None:
    snap = _snapshot(url, A_END)
    assert snap.error is None
    assert _lines(snap) == {("a-0", "n1"): (Decimal(1440), Decimal("1.098"))}
    assert [(c.usage.pod, c.cost) for c in snap.hourly] == [("a-0", Decimal("21.96"))]
    # nodes, utilisation and the window's points: nothing asked again, no kube_pod_info
    assert snap.queries == 3
    assert len(Recorded.asked) == 1 and "kube_pod_info" not in Recorded.asked[0]


def test_requests_without_a_node_or_on_two_nodes_are_asked_for_again(url: str) -> None:
    snap = _snapshot(url, B_END)
    assert snap.error is None
    assert _lines(snap) == {
        ("bare-0", "n1"): (Decimal(360), Decimal("0.2745")),
        ("db-0", "n1"): (Decimal(240), Decimal("0.183")),
        ("db-0", "n2"): (Decimal(480), Decimal("0.366")),
    }
    now = {(c.usage.pod, c.usage.node): c.cost for c in snap.hourly}
    assert now == {("bare-0", "n1"): Decimal("5.49"), ("db-0", "n2"): Decimal("10.98")}
    # one more query, naming the two pods (2 x 2.745 = 5.49 for bare-0 now)
    assert snap.queries == 4
    (again,) = [q for q in Recorded.asked if "kube_pod_info" in q]
    assert 'pod=~"bare-0|db-0"' in again


def test_a_pod_name_no_query_may_carry_has_every_pod_asked_for(url: str) -> None:
    snap = _snapshot(url, C_END)
    assert snap.error is None
    assert _lines(snap) == {("Odd_0", "n1"): (Decimal(180), Decimal("0.13725"))}
    (again,) = [q for q in Recorded.asked if "kube_pod_info" in q]
    assert "pod=~" not in again


def test_a_failed_placement_fails_the_cycle_rather_than_count_nothing(url: str) -> None:
    snap = _snapshot(url, B_END, failing=True)
    assert snap.error is not None and "did not answer" in snap.error
    assert snap.windows == {} and snap.hourly == ()


def test_a_pod_no_join_can_place_is_a_warning_not_a_silent_zero(url: str) -> None:
    snap = _snapshot(url, D_END)
    assert snap.error is None
    assert _lines(snap) == {} and snap.hourly == ()
    (warning,) = [w for w in snap.warnings if "kube_pod_info" in w]
    assert warning.startswith("1 pod(s) hold GPUs") and "ml/ghost-0" in warning
