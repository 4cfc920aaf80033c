"""A pod name reused by two pod objects (uids) with different GPU requests, the first never
scheduled (Pending, no `node` on kube_pod_info / requests), the second Running on n1.

KSM v2 shapes: namespace, pod, uid on every series; node only once scheduled; 5 phase
series; instance/job scrape labels. Samples at :30 every minute. Window (B, END], 60 s:
points B+60 .. END (60 points). A point sees a sample up to 300 s old.

a/w-0: old uid 8 GPUs Pending, samples B-1770 .. B+570; new uid 4 GPUs Running on n1,
       samples B+1230 .. END+570. Points seeing the new pod Running: B+1260 .. END = 40.
       Old pod never Running. By hand: 4 x 40 x 60 = 9,600 GPU-s.
b/w-1: old uid 8 GPUs Pending, samples B-1770 .. B-270 (its last sample is inside the
       requests' reach [END-3899, END] but before the first point's lookback
       (B-240, B+60]); new uid 4 GPUs Running on n1, samples B+30 .. END+570: 60 points.
       By hand: 4 x 60 x 60 = 14,400 GPU-s.
c/w-2: like a/w-0 but both 4 GPUs, the old pod's container named "trainer", the new
       one's "main". By hand: 4 x 40 x 60 = 9,600 GPU-s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from costgov.adapters import promql
from costgov.adapters.prometheus import PrometheusSource
from costgov.catalog import load_catalog
from costgov.services.accounting import chunk_spend, collect
from costgov.settings import Settings

from .exporters import ksm_scrapes
from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
B = END - 3600
KSM = {"job": "kube-state-metrics", "instance": "10.0.0.5:8080"}
PHASES = ("Pending", "Succeeded", "Failed", "Unknown", "Running")


def _pod(h, ns, pod, uid, node, gpus, phase, first, last, container="main"):
    ksm_scrapes(h, range(first, last + 1, 60), namespace=ns, pod=pod, uid=uid, node=node,
                gpus=gpus, created_by=("StatefulSet", "w"), phase=phase, container=container,
                target=KSM)  # fmt: skip


def _history() -> History:
    h = History()
    h.span(
        "kube_node_labels",
        {**KSM, "node": "n1", "label_node_kubernetes_io_instance_type": "p4d.24xlarge"},
        1,
        B - 3600,
        END + 600,
    )
    _pod(h, "a", "w-0", "old-a", None, 8, "Pending", B - 1770, B + 570)
    _pod(h, "a", "w-0", "new-a", "n1", 4, "Running", B + 1230, END + 570)
    _pod(h, "b", "w-1", "old-b", None, 8, "Pending", B - 1770, B - 270)
    _pod(h, "b", "w-1", "new-b", "n1", 4, "Running", B + 30, END + 570)
    _pod(h, "c", "w-2", "old-c", None, 4, "Pending", B - 1770, B + 570, container="trainer")
    _pod(h, "c", "w-2", "new-c", "n1", 4, "Running", B + 1230, END + 570)
    # the reverse: a StatefulSet's pod Running with 4 GPUs, its template raised to 8 GPUs,
    # the new pod object Pending (no capacity). Old: samples B-1770 .. B+1770, visible at
    # points B+60 .. B+2040 (34 points); new: samples from B+2130 on, Pending.
    _pod(h, "d", "w-3", "old-d", "n1", 4, "Running", B - 1770, B + 1770)
    _pod(h, "d", "w-3", "new-d", None, 8, "Pending", B + 2130, END + 570)
    return h


# d/w-3: 4 x 34 x 60 = 8,160
EXPECTED = {("a", "w-0"): 9600, ("b", "w-1"): 14400, ("c", "w-2"): 9600, ("d", "w-3"): 8160}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


def _total(lines) -> dict:
    out: dict = {}
    for c in lines:
        out[c.usage.key] = out.get(c.usage.key, 0) + float(c.usage.gpu_seconds)
    return out


def test_exact_join_is_right(url: str) -> None:
    src = PrometheusSource(Settings(prometheus_url=url))
    r = asyncio.run(
        src.query(
            promql.gpu_samples_of(["w-0", "w-1", "w-2", "w-3"], 3600, 60),
            datetime.fromtimestamp(END, UTC),
        )
    )
    got: dict = {}
    for s in r.samples:
        k = (s.labels["namespace"], s.labels["pod"])
        got[k] = got.get(k, 0) + s.value * 60
    assert got == EXPECTED


def test_cycle(url: str) -> None:
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
    assert _total(snap.windows["w"].pods) == EXPECTED


def test_catch_up_chunk(url: str) -> None:
    found = asyncio.run(
        chunk_spend(
            PrometheusSource(Settings(prometheus_url=url)),
            load_catalog(),
            start=datetime.fromtimestamp(B, UTC),
            to=datetime.fromtimestamp(END, UTC),
            step=60,
            chunk=3600,
            live_node_labels={},
        )
    )
    assert not isinstance(found, str), found
    assert _total(found[0].pods) == EXPECTED
