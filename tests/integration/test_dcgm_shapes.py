"""GPU utilisation per pod (promql.gpu_utilization, every accounting cycle's idle dollars and
the recommendations' evidence) on a real Prometheus, for the shapes dcgm-exporter's series
take in the wild.

One GPU per pod, one sample a minute over two hours (S = END - 2 h): 30 % busy in the first
hour, 70 % in the second. Its exporter pod is replaced at S + 1 h and the old one reports on
for ten more minutes (both reading 70 %), the two differing in more than their pod name:
- honor_labels (the workload's namespace/pod on the series): `instance` (the new pod's IP);
- without it (exported_namespace/exported_pod): the exporter's pod, `instance`, `Hostname`
  (older exporters without NODE_NAME put their own pod name there) and
  `DCGM_FI_DRIVER_VERSION` (a driver upgrade rolls the exporter).
By hand: the 120 points of the window (END - 7140 s .. END, a minute apart) see 30 % at the 59
points before S + 1 h and 70 % at the 61 from it: (59 x 30 + 61 x 70) / 120 = 50.33. Counted
as two GPUs, the old exporter's series alone would average about 36 and the pod about 53.
A pod one exporter reports all along (train-single, 20 % then 60 %): (59 x 20 + 61 x 60) /
120 = 40.33. The operator's cycle takes each series' mean first and asks again, exactly,
for the pods a GPU of which several series report: the figures must be the same.
A pod whose only GPU is a MIG instance (GPU_I_ID set; DCGM reports 0 for its utilisation)
gets no figure, not 0 % busy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import pytest

from costgov.adapters import promql
from costgov.adapters.prometheus import PrometheusSource
from costgov.catalog import load_catalog
from costgov.services.accounting import Snapshot, collect
from costgov.settings import Settings

from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 3) * 3600
S = END - 7200
SWITCH = S + 3600
GPU = {"gpu": "0", "device": "nvidia0", "modelName": "NVIDIA H100 80GB HBM3",
       "pci_bus_id": "00000000:10:00.0"}  # fmt: skip


def _reading(h: History, labels: dict[str, str], start: int, stop: int) -> None:
    for ts in range(start, stop, 60):
        h.add("DCGM_FI_DEV_GPU_UTIL", labels, 30 if ts < SWITCH else 70, ts)


def _history() -> History:
    h = History()
    honor = {**GPU, "UUID": "GPU-a", "Hostname": "node-a", "DCGM_FI_DRIVER_VERSION": "580.95",
             "namespace": "ml", "pod": "train-honor", "container": "main"}  # fmt: skip
    _reading(h, {**honor, "instance": "10.0.0.11:9400"}, S, SWITCH + 600)
    _reading(h, {**honor, "instance": "10.0.0.12:9400"}, SWITCH, END + 60)
    exported = {**GPU, "UUID": "GPU-b", "exported_namespace": "ml",
                "exported_pod": "train-exported", "exported_container": "main",
                "namespace": "gpu-operator", "container": "nvidia-dcgm-exporter",
                "job": "nvidia-dcgm-exporter"}  # fmt: skip
    _reading(h, {**exported, "pod": "dcgm-x1", "instance": "10.0.0.21:9400",
                 "Hostname": "dcgm-x1", "DCGM_FI_DRIVER_VERSION": "570.86"}, S, SWITCH + 600)  # fmt: skip
    _reading(h, {**exported, "pod": "dcgm-x2", "instance": "10.0.0.22:9400",
                 "Hostname": "dcgm-x2", "DCGM_FI_DRIVER_VERSION": "580.95"}, SWITCH, END + 60)  # fmt: skip
    single = {**GPU, "UUID": "GPU-d", "Hostname": "node-d", "DCGM_FI_DRIVER_VERSION": "580.95",
              "namespace": "ml", "pod": "train-single", "container": "main",
              "instance": "10.0.0.31:9400"}  # fmt: skip
    for ts in range(S, END + 60, 60):
        h.add("DCGM_FI_DEV_GPU_UTIL", single, 20 if ts < SWITCH else 60, ts)
    mig = {**GPU, "UUID": "GPU-c", "GPU_I_ID": "3", "GPU_I_PROFILE": "1g.10gb",
           "namespace": "ml", "pod": "notebook-mig", "container": "main"}  # fmt: skip
    h.span("DCGM_FI_DEV_GPU_UTIL", mig, 0, S, END + 60)
    return h


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


@pytest.fixture(scope="module")
def utilisation(url: str) -> dict[tuple[str, str], float]:
    source = PrometheusSource(Settings(prometheus_url=url))
    at = datetime.fromtimestamp(END, UTC)
    result = asyncio.run(source.query(promql.gpu_utilization(7200, 60), at))
    return {(s.labels["namespace"], s.labels["pod"]): s.value for s in result.samples}


@pytest.fixture(scope="module")
def cycle_utilisation(url: str) -> Snapshot:
    """The operator's own cycle over the same two hours (its interval)."""
    at = datetime.fromtimestamp(END, UTC)
    return asyncio.run(
        collect(PrometheusSource(Settings(prometheus_url=url)), load_catalog(), at=at,
                windows={}, interval_seconds=7200, step_seconds=60, live_node_labels={},
                unit_costs=False)
    )  # fmt: skip


@pytest.fixture(scope="module", params=["one query", "the cycle"])
def figures(
    request: pytest.FixtureRequest,
    utilisation: dict[tuple[str, str], float],
    cycle_utilisation: Snapshot,
) -> Mapping[tuple[str, str], float]:
    return utilisation if request.param == "one query" else cycle_utilisation.utilization


@pytest.mark.parametrize("pod", ["train-honor", "train-exported"])
def test_a_replaced_exporter_counts_its_gpu_once(
    figures: Mapping[tuple[str, str], float], pod: str
) -> None:
    assert figures[("ml", pod)] == pytest.approx((59 * 30 + 61 * 70) / 120)


def test_one_exporter_all_along(figures: Mapping[tuple[str, str], float]) -> None:
    assert figures[("ml", "train-single")] == pytest.approx((59 * 20 + 61 * 60) / 120)


def test_a_mig_instance_has_no_utilisation_figure(
    figures: Mapping[tuple[str, str], float],
) -> None:
    assert ("ml", "notebook-mig") not in figures


def test_the_cycle_asks_again_only_for_the_pods_of_replaced_exporters(
    cycle_utilisation: Snapshot,
) -> None:
    # nodes, owners, utilisation's per-series means, the current allocation; then one
    # exact query for train-honor and train-exported together
    assert cycle_utilisation.error is None
    assert cycle_utilisation.queries == 4 + 1
