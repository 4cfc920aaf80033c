"""GPU samples over a long window (the join-free history form and its exact second round)
against kube-state-metrics v2 history as it exports it: `uid` on every pod series, `node` on
kube_pod_container_resource_requests and kube_pod_info (empty while unscheduled), the
scrape's `instance`. Found by an independent review: the first history form counted a
pod twice when its requests series changed identity (scheduled, exporter restarted).

Scrapes at :30 of every minute; the window is (BASE, END], 180 points at 60 s. GPU x points
by hand: a pod counts its GPUs at every point p with a Running scrape the lookback sees.
Backfilled history has no staleness markers, so a series that ends is still seen for the
5-minute lookback: where that matters (pods deleted or recreated in the window) the figure
is checked against the exact per-point join instead of the hand count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from costgov.adapters import promql
from costgov.adapters.prometheus import PrometheusSource
from costgov.catalog import load_catalog
from costgov.services.accounting import Snapshot, collect
from costgov.settings import Settings

from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
BASE = END - 3 * 3600
M = 60
KSM = {"job": "kube-state-metrics", "instance": "10.0.0.5:8080"}


def _pod(
    h: History,
    ns: str,
    name: str,
    uid: str,
    node: str,
    gpus: dict[str, int],
    running: tuple[int, int],
    *,
    pending_from: int | None = None,
    succeeded_until: int | None = None,
    ksm: dict[str, str] = KSM,
    info_gap: tuple[int, int] | None = None,
) -> None:
    base = {**ksm, "namespace": ns, "pod": name, "uid": uid}
    start, stop = pending_from or running[0], succeeded_until or running[1]
    first = start + (30 - start % 60) % 60
    for t in range(first, stop, 60):
        n = node if t >= running[0] else ""  # unscheduled while Pending
        for container, count in gpus.items():
            labels = {**base, "container": container, "node": n}
            h.add("kube_pod_container_resource_requests",
                  {**labels, "resource": "nvidia_com_gpu", "unit": "integer"}, count, t)  # fmt: skip
        if not (info_gap and info_gap[0] <= t < info_gap[1]):
            h.add("kube_pod_info", {**base, "node": n, "created_by_kind": "StatefulSet",
                                    "created_by_name": name.rsplit("-", 1)[0]}, 1, t)  # fmt: skip
        phase = "Running" if running[0] <= t < running[1] else (
            "Pending" if t < running[0] else "Succeeded")  # fmt: skip
        for p in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
            h.add("kube_pod_status_phase", {**base, "phase": p}, int(p == phase), t)


def _history() -> History:
    h = History()
    for node in ("node-1", "node-2", "node-3", "node-4"):
        labels = {"node": node, "label_node_kubernetes_io_instance_type": "p4d.24xlarge"}
        h.span("kube_node_labels", labels, 1, BASE - 3600, END + 3600)
    always = (BASE - 3600, END + 3600)
    _pod(h, "a", "two-containers", "u-a", "node-1", {"main": 2, "sidecar": 2}, always)
    _pod(h, "b", "pending-then-run", "u-b", "node-1", {"main": 4},
         (BASE + 30 * M, BASE + 90 * M), pending_from=BASE + 10 * M,
         succeeded_until=BASE + 110 * M)  # fmt: skip
    _pod(h, "c", "gone-inside", "u-c", "node-2", {"main": 8}, (BASE - 3600, BASE + 45 * M))
    _pod(h, "d", "sts-0", "u-d1", "node-3", {"main": 2}, (BASE + 5 * M, BASE + 65 * M))
    _pod(h, "d", "sts-0", "u-d2", "node-3", {"main": 2}, (BASE + 66 * M, BASE + 150 * M))
    _pod(h, "e", "sts-0", "u-e1", "node-3", {"main": 1}, (BASE - 3600, BASE + 60 * M))
    _pod(h, "e", "sts-0", "u-e2", "node-3", {"main": 4}, (BASE + 61 * M, END + 3600))
    _pod(h, "f", "ksm-restart", "u-f", "node-4", {"main": 8}, (BASE - 3600, BASE + 40 * M))
    _pod(h, "f", "ksm-restart", "u-f", "node-4", {"main": 8}, (BASE + 40 * M, END + 3600),
         ksm={**KSM, "instance": "10.0.0.9:8080"})  # fmt: skip
    _pod(h, "g", "sts-1", "u-g1", "node-1", {"main": 2}, (BASE - 3600, BASE + 60 * M))
    _pod(h, "g", "sts-1", "u-g2", "node-2", {"main": 2}, (BASE + 62 * M, END + 3600))
    _pod(h, "h", "info-gap", "u-h", "node-2", {"main": 1}, always,
         info_gap=(BASE + 60 * M, BASE + 80 * M))  # fmt: skip
    for instance in ("10.0.0.5:8080", "10.0.0.6:8080"):  # two kube-state-metrics replicas
        _pod(h, "i", "ha-replicas", "u-i", "node-4", {"main": 1}, always,
             ksm={**KSM, "instance": instance})  # fmt: skip
    return h


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


def _collect(url: str, chunk: int | None) -> list[Snapshot]:
    """The window from BASE followed to END as the operator does (chunks when `chunk`)."""
    source, cursor, snaps = PrometheusSource(Settings(prometheus_url=url)), BASE, []
    while cursor < END:
        snap = asyncio.run(
            collect(
                source,
                load_catalog(),
                at=datetime.fromtimestamp(END, UTC),
                windows={"w": datetime.fromtimestamp(cursor, UTC)},
                interval_seconds=600,
                step_seconds=60,
                live_node_labels={},
                unit_costs=False,
                chunk_seconds=chunk,
            )
        )
        assert snap.error is None and not snap.lagging
        snaps.append(snap)
        cursor = int(snap.windows["w"].end.timestamp())
    return snaps


def _points(snaps: list[Snapshot]) -> dict[tuple[str, str, str], int]:
    """GPU x points by (namespace, pod, node): GPU-hours x 60."""
    out: dict[tuple[str, str, str], int] = {}
    for snap in snaps:
        for line in snap.windows["w"].pods:
            key = (line.usage.namespace, line.usage.pod, line.usage.node)
            out[key] = out.get(key, 0) + round(line.usage.gpu_hours * 60)
    return out


def _exact(url: str) -> dict[tuple[str, str, str], int]:
    source = PrometheusSource(Settings(prometheus_url=url))
    result = asyncio.run(
        source.query(promql.gpu_samples(3 * 3600, 60), datetime.fromtimestamp(END, UTC))
    )
    return {
        (s.labels["namespace"], s.labels["pod"], s.labels["node"]): int(s.value)
        for s in result.samples
        if s.value > 0
    }


@pytest.mark.parametrize("chunk", [None, 3600], ids=["one window", "hourly chunks"])
def test_history_counts_each_pod_object_once(prometheus_url: str, chunk: int | None) -> None:
    found = _points(_collect(prometheus_url, chunk))
    # Running at every point: 180 points x (2 + 2) GPUs
    assert found[("a", "two-containers", "node-1")] == 720
    # Pending 20 min (requests with node=""), then scheduled: Running scrapes BASE+30:30 ..
    # BASE+89:30 are seen at the points BASE+31 .. BASE+90: 60 points x 4 GPUs (the first
    # history form counted the unscheduled series too: 480)
    assert found[("b", "pending-then-run", "node-1")] == 240
    # kube-state-metrics restarted (another `instance`) 40 minutes in: 180 x 8, once
    assert found[("f", "ksm-restart", "node-4")] == 1440
    # kube_pod_info without a node for 20 minutes while Running: its GPUs still count,
    # 180 x 1
    assert found[("h", "info-gap", "node-2")] == 180
    # two kube-state-metrics replicas export every series twice: counted once, 180 x 1
    assert found[("i", "ha-replicas", "node-4")] == 180
    # deleted inside the window, or recreated under its name on the same node (d, e: the
    # second round) or on another (g): what the exact per-point join counts
    exact = _exact(prometheus_url)
    for key in (("c", "gone-inside", "node-2"), ("d", "sts-0", "node-3"),
                ("e", "sts-0", "node-3"), ("g", "sts-1", "node-1"), ("g", "sts-1", "node-2")):  # fmt: skip
        assert found[key] == exact[key], key
    # e, by hand: the 1-GPU pod's last Running scrape is BASE+59:30, seen (lookback) up to
    # the point BASE+64; the 4-GPU pod's first is BASE+61:30, seen from BASE+62. Points
    # BASE+1 .. BASE+61: 1 GPU (61); BASE+62 .. END: 4 GPUs, the old pod's request not added
    # where both are seen (119 x 4 = 476): 537
    assert found[("e", "sts-0", "node-3")] == 537
