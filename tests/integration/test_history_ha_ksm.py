"""Two kube-state-metrics replicas (HA, unsharded: every pod reported by both, instance
differing): every GPU pod has two Running series, so the history form flags them all and
they are counted again with Running merged per point, by name, 200 a query, one query for
every pod past five batches: the cycle's queries stay bounded. (Found by an independent
review: a first version retook them with the whole per-point join, a query per 200 pods.)

N=401 pods, 1 GPU each, Running all along; window (B, B+1200] at 60 s = 20 points.
By hand: 401 x 1 x 20 x 60 = 481,200 GPU-seconds. Queries: nodes, owners, util, now,
hours:w, util:w = 6 (no DCGM series, nothing to settle), then the 401 pods merged per point:
ceil(401 / 200) = 3.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from costgov.adapters.prometheus import PrometheusSource
from costgov.catalog import load_catalog
from costgov.services.accounting import Snapshot, collect
from costgov.settings import Settings

from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
B = END - 1200
N = 401
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


def _history() -> History:
    h = History()
    h.span(
        "kube_node_labels",
        {"node": "n1", "label_node_kubernetes_io_instance_type": "p4d.24xlarge"},
        1,
        B - 900,
        END + 60,
    )
    for instance in ("10.0.0.5:8080", "10.0.0.6:8080"):
        for i in range(N):
            base = {
                "job": "kube-state-metrics",
                "instance": instance,
                "namespace": "ml",
                "pod": f"w-{i}",
                "uid": f"u-{i}",
            }
            for t in range(B - 600 + 30, END + 60, 60):
                h.add("kube_pod_info", {**base, "node": "n1"}, 1, t)
                h.add(
                    "kube_pod_container_resource_requests",
                    {
                        **base,
                        "container": "main",
                        "node": "n1",
                        "resource": "nvidia_com_gpu",
                        "unit": "integer",
                    },
                    1,
                    t,
                )
                h.add("kube_pod_status_phase", {**base, "phase": "Running"}, 1, t)
    return h


@pytest.fixture(scope="module")
def snap() -> Iterator[Snapshot]:
    with running_prometheus(_history()) as url:
        yield asyncio.run(
            collect(
                PrometheusSource(Settings(prometheus_url=url)),
                load_catalog(),
                at=datetime.fromtimestamp(END, UTC),
                windows={"w": datetime.fromtimestamp(B, UTC)},
                interval_seconds=600,
                step_seconds=60,
                live_node_labels={},
                unit_costs=False,
            )
        )


def test_figures(snap: Snapshot) -> None:
    assert snap.error is None
    assert sum(c.usage.gpu_seconds for c in snap.windows["w"].pods) == N * 1 * 20 * 60


def test_queries_stay_bounded(snap: Snapshot) -> None:
    assert snap.queries == 6 + 3
