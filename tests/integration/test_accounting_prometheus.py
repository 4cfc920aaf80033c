"""One accounting cycle against a real Prometheus holding realistic exporter history.

History (samples every 60 s, all timestamps in the past):
- node-a p5.48xlarge on demand (55.04 $/h, 8 GPUs); node-b p4d.24xlarge on Karpenter spot
  (8.05 $/h, 8 GPUs); node-c g6.xlarge on EKS spot (0.40 $/h, 1 GPU); node-d GKE spot,
  node-e AKS spot and node-f on premises hold no pods (their prices only).
- ml-research/train-1-abc (Job train-1): 8 GPUs on node-a, Running for 120 min; DCGM with
  honor_labels (namespace/pod), 75 % busy.
- ml-research/train-2-xyz (Job train-2): 2 GPUs, 60 min on node-b then 60 min on node-a
  (it moved nodes); DCGM without honor_labels (exported_namespace/exported_pod), 50 % busy,
  with a NaN sample and a 10-minute gap.
- ml-serving/llama-0: 1 GPU on node-c, Running throughout; vLLM counters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest

from costgov.adapters.prometheus import MetricsError, PrometheusSource, QueryResult, RangeSeries
from costgov.catalog import load_catalog
from costgov.domain.offerings import Offering
from costgov.domain.spend import PodCost, totals
from costgov.services.accounting import Snapshot, collect
from costgov.settings import Settings

from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600  # two whole hours ago
BASE = END - 4 * 3600
S = BASE + 600  # pods start ten minutes into the window
MIN = 60


def _history() -> History:
    h = History()
    # kube_node_labels as kube-state-metrics v2.20.0 writes it (internal/store/node.go:
    # createPrometheusLabelKeysValues("label", ...); internal/store/utils.go: every character
    # outside [a-zA-Z0-9_] becomes "_", then snake_case and lower case), allow-listed labels only
    nodes = {
        "node-a": {
            "label_node_kubernetes_io_instance_type": "p5.48xlarge",
            "label_topology_kubernetes_io_region": "us-east-1",
            "label_karpenter_sh_capacity_type": "on-demand",
        },
        "node-b": {
            "label_node_kubernetes_io_instance_type": "p4d.24xlarge",
            "label_karpenter_sh_capacity_type": "spot",
        },
        "node-c": {  # eks.amazonaws.com/capacityType=SPOT: "capacityType" -> "capacity_type"
            "label_node_kubernetes_io_instance_type": "g6.xlarge",
            "label_eks_amazonaws_com_capacity_type": "SPOT",
        },
        # nodes without pods, for their prices only
        "node-d": {  # cloud.google.com/gke-spot=true
            "label_node_kubernetes_io_instance_type": "a2-highgpu-1g",
            "label_topology_kubernetes_io_region": "us-central1",
            "label_cloud_google_com_gke_spot": "true",
        },
        "node-e": {  # kubernetes.azure.com/scalesetpriority=spot
            "label_node_kubernetes_io_instance_type": "Standard_NC24ads_A100_v4",
            "label_topology_kubernetes_io_region": "eastus",
            "label_kubernetes_azure_com_scalesetpriority": "spot",
        },
        "node-f": {  # on premises: costgov.io/provider=onprem, GPU feature discovery's product
            "label_costgov_io_provider": "onprem",
            "label_nvidia_com_gpu_product": "NVIDIA-H100-80GB-HBM3",
        },
    }
    for node, labels in nodes.items():
        h.span("kube_node_labels", {"node": node, **labels}, 1, BASE, END + 1)
        gpus = 8 if node in ("node-a", "node-b", "node-f") else 1
        h.span(
            "kube_node_status_capacity",
            {"node": node, "resource": "nvidia_com_gpu", "unit": "integer"},
            gpus,
            BASE,
            END + 1,
        )

    def pod(ns: str, name: str, gpus: int, running: tuple[int, int], owner: str | None) -> None:
        labels = {"namespace": ns, "pod": name}
        h.span(
            "kube_pod_container_resource_requests",
            {**labels, "container": "main", "resource": "nvidia_com_gpu", "unit": "integer"},
            gpus,
            running[0],
            END + 1,
        )
        h.span("kube_pod_status_phase", {**labels, "phase": "Running"}, 1, running[0], running[1])
        h.span("kube_pod_status_phase", {**labels, "phase": "Running"}, 0, running[1], END + 1)
        if owner:
            h.span(
                "kube_pod_owner",
                {**labels, "owner_kind": "Job", "owner_name": owner, "owner_is_controller": "true"},
                1,
                running[0],
                END + 1,
            )

    pod("ml-research", "train-1-abc", 8, (S, S + 120 * MIN), "train-1")
    h.span(
        "kube_pod_info",
        {"namespace": "ml-research", "pod": "train-1-abc", "node": "node-a"},
        1,
        S,
        END + 1,
    )
    pod("ml-research", "train-2-xyz", 2, (S, S + 120 * MIN), "train-2")
    h.span(
        "kube_pod_info",
        {"namespace": "ml-research", "pod": "train-2-xyz", "node": "node-b"},
        1,
        S,
        S + 60 * MIN,
    )
    h.span(
        "kube_pod_info",
        {"namespace": "ml-research", "pod": "train-2-xyz", "node": "node-a"},
        1,
        S + 60 * MIN,
        END + 1,
    )
    pod("ml-serving", "llama-0", 1, (S, END + 1), None)
    h.span(
        "kube_pod_info",
        {"namespace": "ml-serving", "pod": "llama-0", "node": "node-c"},
        1,
        S,
        END + 1,
    )
    # DCGM, honor_labels spelling: 75 % busy
    dcgm = {
        "gpu": "0",
        "UUID": "GPU-a0",
        "modelName": "NVIDIA H100 80GB HBM3",
        "Hostname": "node-a",
        "container": "main",
    }
    h.span(
        "DCGM_FI_DEV_GPU_UTIL",
        {**dcgm, "namespace": "ml-research", "pod": "train-1-abc"},
        75,
        S,
        S + 120 * MIN,
    )
    # DCGM scraped without honor_labels: the exporter's own pod/namespace plus exported_*;
    # 50 % busy, one NaN sample, and a 10-minute gap
    exported = {
        **dcgm,
        "UUID": "GPU-b0",
        "Hostname": "node-b",
        "namespace": "gpu-operator",
        "pod": "dcgm-exporter-x",
        "exported_namespace": "ml-research",
        "exported_pod": "train-2-xyz",
        "exported_container": "main",
    }
    for ts in range(S, S + 120 * MIN, MIN):
        if S + 30 * MIN <= ts < S + 40 * MIN:
            continue
        h.add("DCGM_FI_DEV_GPU_UTIL", exported, float("nan") if ts == S + 50 * MIN else 50, ts)
    vllm = {"namespace": "ml-serving", "pod": "llama-0", "model_name": "llama-3.1-8b"}
    for i, ts in enumerate(range(S, END + 1, MIN)):
        h.add("vllm:prompt_tokens_total", vllm, 1000 * i, ts)
        h.add("vllm:generation_tokens_total", vllm, 500 * i, ts)
        h.add("vllm:request_success_total", vllm, 10 * i, ts)
    return h


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


@pytest.fixture(scope="module")
def snapshot(prometheus_url: str) -> Snapshot:
    source = PrometheusSource(Settings(prometheus_url=prometheus_url))
    at = datetime.fromtimestamp(END, UTC)
    return asyncio.run(
        collect(
            source,
            load_catalog(),
            at=at,
            windows={"lifetime": datetime.fromtimestamp(BASE, UTC)},
            interval_seconds=600,
            step_seconds=60,
            live_node_labels={},
        )
    )


@pytest.fixture(scope="module")
def long_snapshot(prometheus_url: str) -> Snapshot:
    """The same cycle with a four-hour interval, for utilisation over the pods' whole run."""
    source = PrometheusSource(Settings(prometheus_url=prometheus_url))
    return asyncio.run(
        collect(
            source,
            load_catalog(),
            at=datetime.fromtimestamp(END, UTC),
            windows={"lifetime": datetime.fromtimestamp(BASE, UTC)},
            interval_seconds=4 * 3600,
            step_seconds=60,
            live_node_labels={},
        )
    )


def _pod(snapshot: Snapshot, pod: str) -> list[tuple[str, Decimal, Decimal | None]]:
    return sorted(
        (c.usage.node, c.usage.gpu_hours, c.cost)
        for c in snapshot.windows["lifetime"].pods
        if c.usage.pod == pod
    )


def test_node_labels_read_under_kube_state_metrics_names(snapshot: Snapshot) -> None:
    prices = {
        node: (o.instance_type or o.gpu_model, o.capacity.value, o.hourly)
        for node, o in snapshot.nodes.items()
        if isinstance(o, Offering)
    }
    assert prices == {
        "node-a": ("p5.48xlarge", "on-demand", Decimal("55.04")),
        "node-b": ("p4d.24xlarge", "spot", Decimal("8.05")),
        "node-c": ("g6.xlarge", "spot", Decimal("0.40")),  # not on demand (0.8048)
        "node-d": ("a2-highgpu-1g", "spot", Decimal("1.80")),  # GKE spot, us-central1
        "node-e": ("Standard_NC24ads_A100_v4", "spot", Decimal("0.444")),  # AKS spot, eastus
        "node-f": ("H100", "on-demand", Decimal("1.36")),  # on premises, 1.36 $/GPU-h
    }


def test_constant_query_count_and_no_errors(snapshot: Snapshot) -> None:
    assert snapshot.error is None
    # nodes, owners, utilisation, the current allocation, unit costs (serving GPU samples,
    # tokens, requests), and two per window (GPU samples, utilisation): 9, whatever the
    # number of pods; plus one because train-2 moved nodes in the window: its GPU samples
    # are taken again by the exact per-point join, narrowed to its name; and one because a
    # reading of its GPU over the window was NaN: its utilisation is taken again by the
    # exact per-point merge (the per-series mean would be NaN), narrowed to its name
    assert snapshot.queries == 9 + 1 + 1


def test_whole_node_job_spend(snapshot: Snapshot) -> None:
    # 120 one-minute samples x 8 GPUs = 16 GPU-hours on node-a: 16 x 55.04 / 8 = 110.08
    assert _pod(snapshot, "train-1-abc") == [("node-a", Decimal(16), Decimal("110.08"))]
    assert snapshot.owners[("ml-research", "train-1-abc")] == "train-1"


def test_a_pod_that_moved_nodes_is_priced_on_each(snapshot: Snapshot) -> None:
    # 60 min x 2 GPUs = 2 GPU-h on each node:
    #   node-a 2 x 55.04 / 8 = 13.76; node-b (p4d spot) 2 x 8.05 / 8 = 2.0125
    assert _pod(snapshot, "train-2-xyz") == [
        ("node-a", Decimal(2), Decimal("13.76")),
        ("node-b", Decimal(2), Decimal("2.0125")),
    ]


def test_utilisation_from_both_dcgm_label_spellings_skipping_nan_and_gaps(
    long_snapshot: Snapshot,
) -> None:
    util = long_snapshot.utilization
    assert util[("ml-research", "train-1-abc")] == pytest.approx(75)
    assert util[("ml-research", "train-2-xyz")] == pytest.approx(50)  # NaN and gap ignored
    assert ("gpu-operator", "dcgm-exporter-x") not in util


def test_window_utilisation_covers_pods_that_ended_before_the_last_interval(
    snapshot: Snapshot,
) -> None:
    # both Jobs' pods stopped at S+120 min, long before the cycle's last 10 minutes (so the
    # interval's utilisation knows neither): over the window, 75 % and 50 % busy
    util = snapshot.windows["lifetime"].utilization
    assert util[("ml-research", "train-1-abc")] == pytest.approx(75)
    assert util[("ml-research", "train-2-xyz")] == pytest.approx(50)
    assert ("ml-research", "train-1-abc") not in snapshot.utilization


def test_current_hourly_and_vllm_rates(snapshot: Snapshot) -> None:
    # only llama-0 is Running at the end: 1 GPU x g6.xlarge spot 0.40 / 1 = 0.40 $/h
    (line,) = snapshot.hourly
    assert (line.usage.pod, line.cost) == ("llama-0", Decimal("0.40"))
    # unit costs look at the trailing hour (UNIT_COST_SPAN_SECONDS), not the 10-minute
    # interval: 1,500 tokens and 10 requests a minute x 60 = 90,000 tokens, 600 requests
    assert snapshot.tokens[("ml-serving", "llama-0")] == pytest.approx(90000)
    assert snapshot.requests[("ml-serving", "llama-0")] == pytest.approx(600)


def test_window_totals(snapshot: Snapshot) -> None:
    # 110.08 + 13.76 + 2.0125 + llama-0, Running at every minute from S to END inclusive:
    # 230 + 1 = 231 samples x 1 GPU = 231/60 GPU-h x 0.40 $/h
    llama = Decimal(231) / 60 * Decimal("0.40")
    total = totals(snapshot.windows["lifetime"].pods)
    assert total.complete
    assert total.cost == pytest.approx(  # the llama share is a recurring decimal
        Decimal("110.08") + Decimal("13.76") + Decimal("2.0125") + llama
    )


def test_prometheus_down_is_an_error_not_zero() -> None:
    from .prom import free_port

    source = PrometheusSource(
        Settings(
            prometheus_url=f"http://127.0.0.1:{free_port()}",
            query_retries=0,
            query_timeout_seconds=2,
        )
    )
    snap = asyncio.run(
        collect(
            source,
            load_catalog(),
            at=datetime.fromtimestamp(END, UTC),
            windows={"lifetime": datetime.fromtimestamp(BASE, UTC)},
            interval_seconds=600,
            step_seconds=60,
            live_node_labels={},
        )
    )
    assert snap.error is not None and "did not answer" in snap.error
    assert snap.windows == {} and snap.hourly == ()


def test_steady_state_cycle_takes_the_current_rate_from_its_one_step_window(
    prometheus_url: str,
) -> None:
    # A cycle whose window is the last minute only (the cursor left by the previous cycle):
    # six queries, and llama-0's rate is its GPU-hours in that minute scaled to an hour.
    source = PrometheusSource(Settings(prometheus_url=prometheus_url))
    at = datetime.fromtimestamp(END, UTC)
    snap = asyncio.run(
        collect(
            source,
            load_catalog(),
            at=at,
            windows={"last": datetime.fromtimestamp(END - 60, UTC)},
            interval_seconds=600,
            step_seconds=60,
            live_node_labels={},
        )
    )
    # No current-allocation query, no utilisation of its own; the GPU requests here carry no
    # `node` (as where a relabelling drops it), so llama-0 is placed by one more query, the
    # join through kube_pod_info (tests/integration/test_placement.py has KSM's own labels).
    assert snap.queries == 8
    (line,) = snap.hourly
    # 1 sample x 1 GPU x 60 s = 1/60 GPU-h in the minute -> 1 GPU held -> 0.40 $/h
    assert (line.usage.pod, line.usage.gpu_hours, line.cost) == ("llama-0", 1, Decimal("0.40"))
    (minute,) = snap.windows["last"].pods
    assert minute.cost == Decimal("0.40") / 60


def _chunked(source: Any, start: int, chunk: int) -> tuple[list[PodCost], list[int], Snapshot]:
    """Follow a window's cursor from `start` to END a chunk at a time, as the operator does
    cycle after cycle; every chunk's lines, where each ended, and the last snapshot."""
    cursor, lines, ends = datetime.fromtimestamp(start, UTC), [], []
    for _ in range(20):
        snap = asyncio.run(
            collect(
                source,
                load_catalog(),
                at=datetime.fromtimestamp(END, UTC),
                windows={"w": cursor},
                interval_seconds=600,
                step_seconds=60,
                live_node_labels={},
                chunk_seconds=chunk,
            )
        )
        assert snap.error is None and not snap.lagging
        window = snap.windows["w"]
        lines += window.pods
        ends.append(int(window.end.timestamp()))
        cursor = window.end
        if window.end == snap.accounted_to:
            return lines, ends, snap
    raise AssertionError("never caught up")


def test_a_window_far_behind_is_counted_a_chunk_at_a_time(prometheus_url: str) -> None:
    source = PrometheusSource(Settings(prometheus_url=prometheus_url))
    lines, ends, last = _chunked(source, BASE, 3600)
    # BASE is on the hour: chunks end at each hour, the last one at END
    assert ends == [BASE + 3600, BASE + 7200, BASE + 10800, END]
    # the same dollars as in one window (test_window_totals): 110.08 + 13.76 + 2.0125 +
    # llama-0's 231 samples / 60 x 0.40; no sample point counted twice or missed
    llama = Decimal(231) / 60 * Decimal("0.40")
    total = totals(lines)
    assert total.complete
    assert total.cost == pytest.approx(
        Decimal("110.08") + Decimal("13.76") + Decimal("2.0125") + llama
    )
    # train-2 moved nodes at S + 60 min (BASE + 70 min), inside the second chunk: still
    # 2 GPU-h on each node, priced on each
    moved: dict[str, Decimal] = {}
    for c in lines:
        if c.usage.pod == "train-2-xyz":
            moved[c.usage.node] = moved.get(c.usage.node, Decimal(0)) + c.usage.gpu_hours
    assert moved == {"node-a": Decimal(2), "node-b": Decimal(2)}
    # a chunk reads owners and nodes as of its own end, four more queries while catching
    # up; the last (steady) cycle asks the usual nine
    assert last.queries == 9


def test_a_chunk_that_fails_holds_back_only_its_own_window(prometheus_url: str) -> None:
    """Queries about the past time out (a month of history at scale); the steady window's
    figures still advance, the window behind stays where it was and says why."""
    real = PrometheusSource(Settings(prometheus_url=prometheus_url))
    at = datetime.fromtimestamp(END, UTC)

    class PastTimesOut:
        async def query(self, expr: str, when: datetime) -> QueryResult:
            if when < at - timedelta(minutes=1):
                raise MetricsError(f"Prometheus did not answer {expr[:20]!r} within 2 s")
            return await real.query(expr, when)

        async def points(
            self, expr: str, when: datetime
        ) -> tuple[tuple[RangeSeries, ...], tuple[str, ...]]:
            return await real.points(expr, when)  # the steady window's: now, answered

    snap = asyncio.run(
        collect(
            cast(PrometheusSource, PastTimesOut()),
            load_catalog(),
            at=at,
            windows={
                "steady": at - timedelta(minutes=1),
                "behind": datetime.fromtimestamp(BASE, UTC),
            },
            interval_seconds=600,
            step_seconds=60,
            live_node_labels={},
            chunk_seconds=3600,
        )
    )
    assert snap.error is None
    assert set(snap.windows) == {"steady"} and snap.catchup_failed
    assert "did not answer" in snap.lagging["behind"]
    (minute,) = snap.windows["steady"].pods  # llama-0's last minute: 0.40 / 60
    assert minute.cost == Decimal("0.40") / 60
