"""Prometheus `warnings` on an answer (Thanos/Cortex partial responses: a store did not
answer, the figure may be short) are kept and surfaced with the result (adapters/prometheus.py:
"never dropped"; retake_moved and serving_gpu merge their second round's). the exact
utilisation round's must be kept too (a first version lost them: found by an independent
review).

dcgm-exporter series (honor_labels): GPU-a of ml/train-0 reported by exporter pod x1 until
S+60 min, then by x2 (another instance, Hostname): several series for one GPU, so the pod is
asked again exactly. A source wrapping the real Prometheus adds a warning to every answer,
as a querier with a store down does.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from costgov.adapters.prometheus import PrometheusSource, QueryResult
from costgov.catalog import load_catalog
from costgov.services.accounting import collect
from costgov.settings import Settings

from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
S = END - 7200
GPU = {
    "gpu": "0",
    "UUID": "GPU-a",
    "device": "nvidia0",
    "modelName": "NVIDIA A100-SXM4-80GB",
    "pci_bus_id": "00000000:10:00.0",
    "DCGM_FI_DRIVER_VERSION": "580.95",
    "namespace": "ml",
    "pod": "train-0",
    "container": "main",
    "job": "dcgm",
}


class PartialSource(PrometheusSource):
    async def query(self, expr: str, at: datetime) -> QueryResult:
        r = await super().query(expr, at)
        return QueryResult(r.samples, (*r.warnings, f"partial response: store down ({len(expr)})"))


def test_exact_round_warnings_surface() -> None:
    h = History()
    for ts in range(S, END + 60, 60):
        if ts < S + 3600:
            h.add(
                "DCGM_FI_DEV_GPU_UTIL",
                {**GPU, "instance": "10.0.0.21:9400", "Hostname": "x1"},
                30,
                ts,
            )
        else:
            h.add(
                "DCGM_FI_DEV_GPU_UTIL",
                {**GPU, "instance": "10.0.0.22:9400", "Hostname": "x2"},
                70,
                ts,
            )
    with running_prometheus(h) as url:
        src = PartialSource(Settings(prometheus_url=url))
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
    assert snap.error is None and ("ml", "train-0") in snap.utilization
    # nodes, owners, util (per series), now: 4 first-round answers, then 1 exact util
    assert snap.queries == 5
    assert len(snap.warnings) == 5, snap.warnings
