"""The simulated cluster itself: what its real components export is what costgov reads.

These facts are the world's, not ours: node labels as kube-state-metrics v2.20.0 really
names them, GPU capacity as it really spells the resource, pods scheduled by the real
kube-scheduler onto kwok's nodes. If one of them changes, costgov's readers must follow.
"""

from __future__ import annotations

from .cluster import Sim
from .kube import gpu_job, namespace, promql, running_pods, wait_for

NODES = {
    "sim-p5-a", "sim-p5-b", "sim-p4d", "sim-g6-spot", "sim-g6-spot-2", "sim-g6-spot-3",
    "sim-gke-a2-spot", "sim-aks-spot", "sim-onprem-a100",
}  # fmt: skip


def _ready(node: dict[str, object]) -> bool:
    conditions = node.get("status", {}).get("conditions", [])  # type: ignore[attr-defined]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_kwok_runs_the_fake_gpu_nodes(sim: Sim) -> None:
    import json

    def ready() -> set[str]:
        nodes = json.loads(sim.cp.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        return {n["metadata"]["name"] for n in nodes if _ready(n)}

    assert wait_for(lambda: ready() if ready() == NODES else None, "nodes Ready", sim) == NODES


def test_kube_state_metrics_snake_cases_capitalised_node_labels(sim: Sim) -> None:
    # kube-state-metrics internal/store/utils.go: sanitize, then toSnakeCase (lower case)
    series = wait_for(
        lambda: promql(sim, 'kube_node_labels{node="sim-g6-spot"}'), "kube_node_labels", sim
    )
    labels = series[0]["metric"]
    assert labels["label_eks_amazonaws_com_capacity_type"] == "SPOT"
    assert "label_eks_amazonaws_com_capacityType" not in labels
    assert labels["label_node_kubernetes_io_instance_type"] == "g6.xlarge"
    gpus = promql(sim, 'kube_node_status_capacity{node="sim-p5-a",resource="nvidia_com_gpu"}')
    assert gpus[0]["metric"]["unit"] == "integer" and gpus[0]["value"][1] == "8"


def test_the_real_controllers_run_a_job_and_kwok_serves_its_gpu_metrics(sim: Sim) -> None:
    namespace(sim, "sim-smoke")
    sim.cp.apply(gpu_job("smoke", "sim-smoke", 1, {"kubernetes.io/hostname": "sim-onprem-a100"},
                         util=37))  # fmt: skip
    pods = wait_for(lambda: running_pods(sim, "sim-smoke", "job-name=smoke"), "pod Running", sim)
    assert pods[0]["spec"]["nodeName"] == "sim-onprem-a100"  # bound by kube-scheduler
    pod = pods[0]["metadata"]["name"]
    util = wait_for(
        lambda: promql(sim, f'DCGM_FI_DEV_GPU_UTIL{{namespace="sim-smoke",pod="{pod}"}}'),
        "DCGM_FI_DEV_GPU_UTIL scraped", sim,
    )  # fmt: skip
    assert util[0]["value"][1] == "37"
    assert util[0]["metric"]["Hostname"] == "sim-onprem-a100"
    owner = wait_for(
        lambda: promql(sim, f'kube_pod_owner{{namespace="sim-smoke",pod="{pod}"}}'),
        "kube_pod_owner", sim,
    )  # fmt: skip
    assert owner[0]["metric"]["owner_kind"] == "Job" and owner[0]["metric"]["owner_name"] == "smoke"
    sim.cp.kubectl("delete", "namespace", "sim-smoke", "--wait=false")


def test_the_operator_reports_its_cycles_and_asks_few_queries(sim: Sim) -> None:
    import urllib.request

    def metrics() -> dict[str, float] | None:
        with urllib.request.urlopen(sim.metrics_url, timeout=5) as r:
            lines = r.read().decode().splitlines()
        found = {
            line.split()[0]: float(line.split()[1])
            for line in lines
            if line.startswith(("costgov_accounting_cycle", "costgov_accounting_cycles_total"))
        }
        return found if found.get("costgov_accounting_cycles_total", 0) >= 2 else None

    # cycles run for the resources there are: one policy is enough (it governs nothing)
    sim.cp.apply({"apiVersion": "costgov.io/v1alpha1", "kind": "CostPolicy",
                  "metadata": {"name": "sim-cycles"},
                  "spec": {"mode": "audit", "scope": {"namespaceSelector": {
                      "matchLabels": {"scenario": "none"}}}}})  # fmt: skip
    try:
        found = wait_for(metrics, "two accounting cycles", sim, timeout=90)
    finally:
        sim.cp.kubectl("delete", "costpolicy", "sim-cycles", "--ignore-not-found")
    assert 0 < found["costgov_accounting_cycle_queries"] <= 15  # issue #9: at most 15
    assert found["costgov_accounting_cycle_duration_seconds_count"] >= 2
