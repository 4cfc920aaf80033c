"""A cycle whose first round already failed (here: the node labels query timed out, so the
snapshot will carry an error and its figures are thrown away) must not run the second
round against the same, struggling Prometheus: here it would be one exact utilisation query
for a pod whose GPU two exporters reported (honor_labels). Found by an independent review."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import ClassVar

from costgov.adapters.prometheus import MetricsError, PrometheusSource, QueryResult
from costgov.catalog import load_catalog
from costgov.services.accounting import collect
from costgov.settings import Settings

from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
S = END - 7200
GPU = {
    "gpu": "0",
    "UUID": "GPU-a",
    "modelName": "NVIDIA A100-SXM4-80GB",
    "namespace": "ml",
    "pod": "train-0",
    "container": "main",
    "job": "dcgm",
}


class Failing(PrometheusSource):
    asked: ClassVar[list[str]] = []

    async def query(self, expr: str, at: datetime) -> QueryResult:
        self.asked.append(expr)
        if expr.startswith("last_over_time(kube_node_labels"):
            raise MetricsError("no answer within 30 s")
        return await super().query(expr, at)


def test_no_second_round_after_a_failed_first_round() -> None:
    h = History()
    for ts in range(S, END + 60, 60):
        inst = "10.0.0.21:9400" if ts < S + 3600 else "10.0.0.22:9400"
        h.add("DCGM_FI_DEV_GPU_UTIL", {**GPU, "instance": inst}, 50, ts)
    with running_prometheus(h) as url:
        src = Failing(Settings(prometheus_url=url))
        snap = asyncio.run(
            collect(
                src,
                load_catalog(),
                at=datetime.fromtimestamp(END, UTC),
                windows={},
                interval_seconds=7200,
                step_seconds=60,
                live_node_labels={},
                unit_costs=False,
            )
        )
    assert snap.error is not None
    assert len(src.asked) == 4  # nodes, owners, util, now: nothing more
