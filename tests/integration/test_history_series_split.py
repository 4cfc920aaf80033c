"""A pod object that one kube-state-metrics reports all along, whose series change identity
in a label other than instance/job mid-window: a ServiceMonitor/relabel change that adds or
renames a target label (here `service`, as kube-prometheus-stack writes it), or two
Prometheus replicas' series seen side by side with a `prometheus_replica` label (Thanos
Query without dedup, federation). The exact per-point join (`gpu_samples_of`) counts every point; the history form, which counts
points per series, must see the pod as several series and count it again merged per point.
(Found by an independent review: a first version took the largest series' count: 8,160 and
10,560 GPU-seconds.)

KSM series written as kube-state-metrics v2 writes them (namespace, pod, uid on every pod
series; node on requests and info), scraped at :30 every minute. Window (B, B+3600] at 60 s:
60 points. By hand, the pod holds 4 GPUs Running at every point: 4 x 60 x 60 = 14,400
GPU-seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from costgov.adapters import promql
from costgov.adapters.prometheus import PrometheusSource
from costgov.catalog import load_catalog
from costgov.services.accounting import collect
from costgov.settings import Settings

from .exporters import ksm_scrapes
from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
B = END - 3600
KSM = {"job": "kube-state-metrics", "instance": "10.0.0.5:8080"}
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


def _ksm(
    h: History,
    ns: str,
    pod: str,
    node: str,
    gpus: int,
    extra: dict[str, str],
    start: int,
    stop: int,
) -> None:
    ksm_scrapes(h, range(start + 30, stop, 60), namespace=ns, pod=pod, uid=f"u-{pod}",
                node=node, gpus=gpus, created_by=("Job", pod), target={**KSM, **extra})  # fmt: skip


def _history() -> History:
    h = History()
    h.span(
        "kube_node_labels",
        {"node": "n1", "label_node_kubernetes_io_instance_type": "p4d.24xlarge"},
        1,
        B - 3600,
        END + 600,
    )
    # a target label renamed at B+30 min (same KSM pod, same instance)
    _ksm(h, "a", "relabelled", "n1", 4, {"service": "ksm-old"}, B - 3600, B + 1800)
    _ksm(h, "a", "relabelled", "n1", 4, {"service": "ksm-new"}, B + 1800, END + 600)
    # two Prometheus replicas, each down for part of the window
    _ksm(h, "b", "replicas", "n1", 4, {"prometheus_replica": "prometheus-0"}, B - 3600, B + 2400)
    _ksm(h, "b", "replicas", "n1", 4, {"prometheus_replica": "prometheus-1"}, B + 1200, END + 600)
    return h


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


def _seconds(url: str) -> dict[tuple[str, str], float]:
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
    out: dict[tuple[str, str], float] = {}
    for c in snap.windows["w"].pods:
        out[c.usage.key] = out.get(c.usage.key, 0) + float(c.usage.gpu_seconds)
    return out


@pytest.mark.parametrize("key", [("a", "relabelled"), ("b", "replicas")])
def test_exact_form_counts_every_point(url: str, key: tuple[str, str]) -> None:
    src = PrometheusSource(Settings(prometheus_url=url))
    r = asyncio.run(
        src.query(promql.gpu_samples_of([key[1]], 3600, 60), datetime.fromtimestamp(END, UTC))
    )
    got = sum(s.value for s in r.samples if s.labels["namespace"] == key[0]) * 60
    assert got == 4 * 60 * 60


@pytest.mark.parametrize("key", [("a", "relabelled"), ("b", "replicas")])
def test_cycle_counts_every_point(url: str, key: tuple[str, str]) -> None:
    assert _seconds(url)[key] == 4 * 60 * 60
