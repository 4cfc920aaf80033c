"""Error paths of the second round. KSM v2 shapes, samples at :30 each minute.

a/w-0: recreated under its name (uid a1 on n1 B-1770..B+1170, uid a2 on n2 B+1230..END+570),
       4 GPUs, Running: seen as two objects (exact join retake).
b/ha-0: one object on n1, 2 GPUs, Running all along, reported by two KSM replicas (two
       Running series: SEVERAL_SERIES flag, merged retake). Its GPU 0 reported by two
       dcgm-exporter pods (instance differs): utilisation unsettled (exact retake).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from costgov.adapters.prometheus import MetricsError, PrometheusSource, QueryResult
from costgov.catalog import load_catalog
from costgov.services.accounting import chunk_spend, collect
from costgov.settings import Settings

from .exporters import ksm_scrapes
from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
B = END - 3600
PHASES = ("Pending", "Succeeded", "Failed", "Unknown", "Running")


def _pod(h, ns, pod, uid, node, gpus, first, last, inst="10.0.0.5:8080"):
    ksm_scrapes(h, range(first, last + 1, 60), namespace=ns, pod=pod, uid=uid, node=node,
                gpus=gpus, created_by=("Job", pod),
                target={"job": "kube-state-metrics", "instance": inst})  # fmt: skip


def _history() -> History:
    h = History()
    for n in ("n1", "n2"):
        h.span(
            "kube_node_labels",
            {"node": n, "label_node_kubernetes_io_instance_type": "p4d.24xlarge"},
            1,
            B - 3600,
            END + 600,
        )
    _pod(h, "a", "w-0", "a1", "n1", 4, B - 1770, B + 1170)
    _pod(h, "a", "w-0", "a2", "n2", 4, B + 1230, END + 570)
    for inst in ("10.0.0.5:8080", "10.0.0.6:8080"):
        _pod(h, "b", "ha-0", "b1", "n1", 2, B - 1770, END + 570, inst)
    for inst in ("10.0.1.1:9400", "10.0.1.2:9400"):
        for g in ("0", "1"):
            h.span(
                "DCGM_FI_DEV_GPU_UTIL",
                {
                    "job": "dcgm",
                    "instance": inst,
                    "gpu": g,
                    "UUID": f"GPU-{g}",
                    "namespace": "b",
                    "pod": "ha-0",
                    "container": "main",
                    "Hostname": "n1",
                },
                50,
                B - 1770,
                END + 570,
            )
    return h


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


class Failing(PrometheusSource):
    def __init__(self, settings, fails: str) -> None:
        super().__init__(settings)
        self.fails, self.asked, self.after_failure = fails, [], 0

    async def query(self, expr: str, at: datetime) -> QueryResult:
        if any(self.fails in e for e in self.asked):
            self.after_failure += 1
        self.asked.append(expr)
        if self.fails in expr:
            raise MetricsError("no answer within 30 s")
        return await super().query(expr, at)


FIRST_HOURS = "+ 2097152)"  # only the first-round history form has the sentinel
MERGED = "sum_over_time((max by (namespace, pod) (kube_pod_status_phase"


def test_chunk_whose_first_round_failed_asks_no_more(url: str) -> None:
    """Brief: the second round is skipped when a query of the first round failed, so a
    struggling Prometheus is not asked more. A catch-up chunk is always owned, so the gate
    never trips: an exact utilisation query (the costly form) goes out for a chunk whose
    result chunk_spend throws away."""
    src = Failing(Settings(prometheus_url=url), FIRST_HOURS)

    async def go():
        # sequential first round so that "after the failure" is well defined
        return await chunk_spend(
            src,
            load_catalog(),
            start=datetime.fromtimestamp(B, UTC),
            to=datetime.fromtimestamp(END, UTC),
            step=60,
            chunk=3600,
            live_node_labels={},
        )

    found = asyncio.run(go())
    assert isinstance(found, str)
    second_round = [e for e in src.asked if "avg by (namespace, pod) (avg_over_time(" in e]
    assert second_round == [], f"{len(second_round)} exact utilisation queries after failure"


def test_chunk_whose_retake_failed_is_an_error(url: str) -> None:
    src = Failing(Settings(prometheus_url=url), MERGED)
    found = asyncio.run(
        chunk_spend(
            src,
            load_catalog(),
            start=datetime.fromtimestamp(B, UTC),
            to=datetime.fromtimestamp(END, UTC),
            step=60,
            chunk=3600,
            live_node_labels={},
        )
    )
    assert isinstance(found, str)


def test_cycle_catch_up_retake_failed_lags(url: str) -> None:
    src = Failing(Settings(prometheus_url=url), MERGED)
    snap = asyncio.run(
        collect(
            src,
            load_catalog(),
            at=datetime.fromtimestamp(END, UTC),
            windows={"w": datetime.fromtimestamp(B, UTC)},
            interval_seconds=600,
            step_seconds=60,
            live_node_labels={},
            unit_costs=False,
            chunk_seconds=1800,
        )
    )
    assert snap.error is None
    assert "w" in snap.lagging and "w" not in snap.windows


def test_cycle_ok_numbers(url: str) -> None:
    snap = asyncio.run(
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
    assert snap.error is None
    got: dict = {}
    for c in snap.windows["w"].pods:
        got[c.usage.key] = got.get(c.usage.key, 0) + float(c.usage.gpu_seconds)
    # a/w-0: a1 visible at points B+60..B+1440 (last sample B+1170 +300 > B+1440? no:
    #   B+1170+300 = B+1470 -> points up to B+1440); a2 from B+1260 .. END.
    #   exact join takes max per container per point (4 either way): points B+60..END = 60
    #   -> 4 x 60 x 60 = 14,400. b/ha-0: 2 x 60 x 60 = 7,200.
    assert got == {("a", "w-0"): 14400, ("b", "ha-0"): 7200}
    assert snap.windows["w"].utilization[("b", "ha-0")] == 50
