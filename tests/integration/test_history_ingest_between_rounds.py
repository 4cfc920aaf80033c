"""Samples stamped before the window's end that Prometheus ingests between the first round and
the retake (a kube-state-metrics scrape of 10,000 pods takes seconds and its samples carry
the scrape's start time; remote-write/Thanos receive lag more). Modelled with two
Prometheus servers: the first round reads one, the second round the other, which holds
the same history plus the samples that arrived meanwhile.

e/s-0: reported by two KSM replicas (HA: two Running series, SEVERAL_SERIES flag), 2 GPUs.
Old uid on n1, samples B-1770 .. END-630 (Running), visible at points B+60 .. END-360:
54 points. The pod is recreated: new uid on n2, first sample END-30 (Running), seen by the
second server only, at point END: 1 point.
By hand: 2 x 54 x 60 = 6,480 GPU-s on n1 (first view), plus 2 x 1 x 60 = 120 on n2 (second
view): the answer is 6,480 or 6,600, and never more than 6,600.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from costgov.adapters.prometheus import PrometheusSource, QueryResult
from costgov.catalog import load_catalog
from costgov.services.accounting import collect
from costgov.settings import Settings

from .exporters import ksm_scrapes
from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
B = END - 3600
PHASES = ("Pending", "Succeeded", "Failed", "Unknown", "Running")
MERGED = "sum_over_time((max by (namespace, pod"


def _pod(h, uid, node, first, last):
    for inst in ("10.0.0.5:8080", "10.0.0.6:8080"):
        ksm_scrapes(h, range(first, last + 1, 60), namespace="e", pod="s-0", uid=uid, node=node,
                    gpus=2, created_by=("StatefulSet", "s"),
                    target={"job": "kube-state-metrics", "instance": inst})  # fmt: skip


def _history(later: bool) -> History:
    h = History()
    for n in ("n1", "n2"):
        h.span(
            "kube_node_labels",
            {"node": n, "label_node_kubernetes_io_instance_type": "p4d.24xlarge"},
            1,
            B - 3600,
            END + 600,
        )
    _pod(h, "old", "n1", B - 1770, END - 630)
    if later:
        _pod(h, "new", "n2", END - 30, END - 30)
    return h


class TwoViews(PrometheusSource):
    def __init__(self, first: str, second: str) -> None:
        super().__init__(Settings(prometheus_url=first))
        self.later = PrometheusSource(Settings(prometheus_url=second))

    async def query(self, expr: str, at: datetime) -> QueryResult:
        if MERGED in expr:
            return await self.later.query(expr, at)
        return await super().query(expr, at)


def test_no_double_count_when_an_object_arrives_between_rounds() -> None:
    with running_prometheus(_history(False)) as first, running_prometheus(_history(True)) as second:
        snap = asyncio.run(
            collect(
                TwoViews(first, second),
                load_catalog(),
                at=datetime.fromtimestamp(END, UTC),
                windows={"w": datetime.fromtimestamp(B, UTC)},
                interval_seconds=600,
                step_seconds=60,
                live_node_labels={},
                unit_costs=False,
            )
        )
    assert snap.error is None
    lines = {
        (c.usage.key, c.usage.node): float(c.usage.gpu_seconds) for c in snap.windows["w"].pods
    }
    assert sum(lines.values()) in (6480, 6600), lines
