"""The operator names its windows by RFC 3339 start (services/windows.window_key), which has
colons; planning.plan splits query names on ':' to find a util:W query's window.

A window between one and two intervals long (the cycle counts it itself: catch-up takes
only windows longer than HANDOFF_INTERVALS=2 intervals) gets its own util:W query."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from costgov.adapters.prometheus import PrometheusSource
from costgov.catalog import load_catalog
from costgov.services.accounting import collect
from costgov.services.windows import window_key
from costgov.settings import Settings

from .exporters import dcgm_utilization, gpu_pod
from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600


def test_a_window_of_one_and_a_half_intervals_is_counted() -> None:
    h = History()
    h.span(
        "kube_node_labels",
        {"node": "n1", "label_node_kubernetes_io_instance_type": "p4d.24xlarge"},
        1,
        END - 3600,
        END + 60,
    )
    gpu_pod(
        h,
        namespace="ml",
        pod="train-0",
        node="n1",
        gpus=8,
        running=(END - 3600, END + 60),
        until=END + 60,
        created_by=("Job", "train"),
    )
    dcgm_utilization(
        h,
        namespace="ml",
        pod="train-0",
        node="n1",
        gpus=8,
        model="A100",
        percent=40,
        start=END - 3600,
        stop=END + 60,
    )
    at = datetime.fromtimestamp(END, UTC)
    start = at - timedelta(seconds=450)  # 7.5 min: > interval (300), < 2 intervals
    with running_prometheus(h) as url:
        snap = asyncio.run(
            collect(
                PrometheusSource(Settings(prometheus_url=url)),
                load_catalog(),
                at=at,
                windows={window_key(start): start},
                interval_seconds=300,
                step_seconds=60,
                live_node_labels={},
                unit_costs=False,
            )
        )
    assert snap.error is None
    # the start floors to the step grid: END-480; points END-420 .. END at 60 s = 8
    # 8 GPUs x 8 points x 60 s
    assert sum(c.usage.gpu_seconds for c in snap.windows[window_key(start)].pods) == 8 * 8 * 60
