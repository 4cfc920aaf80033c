"""Training Jobs on the simulated cluster: dollars from node prices x elapsed time, checked by
hand; suspension and resumption carried out by the real job controller.

Tolerance: Prometheus scrapes every 5 s and costgov integrates spend at 15 s sample points
(COSTGOV_SAMPLE_STEP_SECONDS in tests/sim/cluster.py), so a figure may lag the wall clock by
up to one step plus one scrape: 20 s of the node's price.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from .cluster import Sim
from .kube import (
    Namespaces,
    budget,
    get,
    gpu_job,
    money,
    overrunning_p5_job,
    running_pods,
    status,
    wait_for,
)

TJB = "trainingjobbudgets.costgov.io"
LAG_SECONDS = 20


def _start(pod: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(pod["status"]["startTime"]))  # type: ignore[index]


@pytest.mark.parametrize(
    ("node", "gpus", "hourly", "priced_as"),
    [
        # p4d.24xlarge on demand, us-east-1: 21.96 $/h for 8 A100; 2 of them: 21.96 x 2/8
        ("sim-p4d", 2, "5.49", "p4d.24xlarge"),
        # g6.xlarge, EKS managed node group, eks.amazonaws.com/capacityType=SPOT: spot 0.40
        ("sim-g6-spot", 1, "0.40", "g6.xlarge"),
        # a2-highgpu-1g, GKE cloud.google.com/gke-spot=true, us-central1: spot 1.80
        ("sim-gke-a2-spot", 1, "1.80", "a2-highgpu-1g"),
        # Standard_NC24ads_A100_v4, AKS scalesetpriority=spot, eastus: spot 0.444 -> 0.44
        ("sim-aks-spot", 1, "0.44", "Standard_NC24ads_A100_v4"),
    ],
)
def test_each_node_is_priced_from_the_labels_kube_state_metrics_exports(
    sim: Sim, namespaces: Namespaces, node: str, gpus: int, hourly: str, priced_as: str
) -> None:
    ns = f"sim-price-{node.removeprefix('sim-')}"
    namespaces(ns)
    sim.cp.apply(budget("run", ns, "10000"))
    aks = [{"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal",
            "value": "spot", "effect": "NoSchedule"}]  # fmt: skip
    job = gpu_job("train", ns, gpus, {"kubernetes.io/hostname": node},
                  labels={"costgov.io/budget": "run"}, tolerations=aks)  # fmt: skip
    sim.cp.apply(job)
    wait_for(lambda: running_pods(sim, ns, "job-name=train"), "pod Running", sim)
    found = wait_for(
        lambda: (s := status(sim, TJB, "run", ns)).get("burnRatePerHour") not in (None, "0.00")
        and s,
        f"a burn rate on {node}", sim, timeout=120,
    )  # fmt: skip
    assert found["burnRatePerHour"] == hourly
    assert priced_as in found["jobs"][0]["pricedAs"]
    if "spot" in node:
        assert "spot" in found["jobs"][0]["pricedAs"]


def test_an_on_prem_node_is_unpriced_until_declared_then_priced_per_gpu_hour(
    sim: Sim, namespaces: Namespaces
) -> None:
    # the node has only GPU feature discovery's labels: no instance type, no provider. Its
    # GPUs are never silently priced (nor silently $0): a condition says how to declare it.
    ns = "sim-price-onprem"
    namespaces(ns)
    sim.cp.apply(budget("run", ns, "10000"))
    sim.cp.apply(gpu_job("train", ns, 2, {"kubernetes.io/hostname": "sim-onprem-a100"},
                         labels={"costgov.io/budget": "run"}))  # fmt: skip
    wait_for(lambda: running_pods(sim, ns, "job-name=train"), "pod Running", sim)

    def unpriced() -> dict[str, object] | None:
        conditions = status(sim, TJB, "run", ns).get("conditions", [])
        return next(
            (c for c in conditions if c["type"] == "Priced" and c["status"] == "False"), None
        )

    found = wait_for(unpriced, "Priced=False once the pod is scraped", sim, timeout=120)
    assert found["reason"] == "UnpricedPods"
    assert status(sim, TJB, "run", ns)["spent"] == "0.00"  # nothing priced, and it says so
    assert "costgov.io/provider=onprem" in str(found["message"])
    sim.cp.kubectl("label", "node", "sim-onprem-a100", "costgov.io/provider=onprem")
    try:
        # declared on premises: A100-80GB at 0.69 per GPU-hour x 2 GPUs = 1.38 $/h
        declared = wait_for(
            lambda: (s := status(sim, TJB, "run", ns)).get("burnRatePerHour") == "1.38" and s,
            "1.38 $/h once declared", sim, timeout=120,
        )  # fmt: skip
        assert "A100-80GB" in declared["jobs"][0]["pricedAs"]
    finally:
        sim.cp.kubectl("label", "node", "sim-onprem-a100", "costgov.io/provider-")


def _policy(name: str, ns_label: str) -> dict[str, object]:
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "CostPolicy",
        "metadata": {"name": name},
        "spec": {
            "mode": "enforce",
            "scope": {"namespaceSelector": {"matchLabels": {"scenario": ns_label}}},
            "budget": {"amount": 1000000, "onExceeded": "suspend"},
        },
    }


def test_spend_grows_at_the_node_price_and_the_job_is_suspended_at_its_budget(
    sim: Sim, namespaces: Namespaces
) -> None:
    ns = "sim-suspend"
    namespaces(ns, scenario="suspend")
    sim.cp.apply(_policy("sim-suspend", "suspend"))
    # The requester said one minute (maxDuration 1m): 55.04 $/h x 1/60 h = 0.92 <= 1.00,
    # admitted. The Job has no deadline of its own and overruns: at 55.04 $/h the $1.00
    # budget is spent after 1.00 / 55.04 x 3600 = 65.4 s of running.
    pod = overrunning_p5_job(sim, ns, "overrun")
    grown = wait_for(
        lambda: (s := status(sim, TJB, "overrun", ns)).get("spent") not in (None, "0.00") and s,
        "spend accruing", sim, timeout=60,
    )  # fmt: skip
    assert grown["burnRatePerHour"] == "55.04"  # a whole p5.48xlarge on demand
    ran = (datetime.fromisoformat(grown["figuresAsOf"]) - _start(pod)).total_seconds()
    expected = Decimal("55.04") * Decimal(ran) / 3600
    assert abs(money(grown["spent"]) - expected) <= Decimal("55.04") * LAG_SECONDS / 3600

    suspended = wait_for(
        lambda: get(sim, "job", "train", ns)["spec"].get("suspend") is True, "Job suspended",
        sim, timeout=150,
    )  # fmt: skip
    assert suspended
    annotations = get(sim, "job", "train", ns)["metadata"]["annotations"]
    assert annotations["costgov.io/suspended-by"] == "overrun"
    # the real job controller deletes the pods of a suspended Job
    wait_for(lambda: not running_pods(sim, ns, "job-name=train") or None, "pods gone", sim)
    after = status(sim, TJB, "overrun", ns)
    assert "train" in after["suspendedJobs"]
    assert money(after["spent"]) >= Decimal("1.00")

    # more budget: costgov resumes the Job it suspended, the job controller starts a pod again
    sim.cp.kubectl(
        "patch", TJB, "overrun", "-n", ns, "--type=merge", "-p", '{"spec":{"amount":"100"}}'
    )
    wait_for(lambda: get(sim, "job", "train", ns)["spec"].get("suspend") is False, "resumed", sim)
    wait_for(lambda: running_pods(sim, ns, "job-name=train"), "pod Running again", sim)
    sim.cp.kubectl("delete", "costpolicy", "sim-suspend")


def test_a_pod_replaced_on_another_node_is_counted_once(sim: Sim, namespaces: Namespaces) -> None:
    ns = "sim-move"
    namespaces(ns)
    sim.cp.apply(budget("move", ns, "10000"))
    job = gpu_job("train", ns, 2, {"node.kubernetes.io/instance-type": "p5.48xlarge"},
                  labels={"costgov.io/budget": "move"})  # fmt: skip
    job["spec"]["backoffLimit"] = 3
    sim.cp.apply(job)
    first = wait_for(lambda: running_pods(sim, ns, "job-name=train"), "pod Running", sim)[0]
    node = first["spec"]["nodeName"]
    sim.cp.kubectl("cordon", node)
    try:
        sim.cp.kubectl("delete", "pod", first["metadata"]["name"], "-n", ns)
        second = wait_for(lambda: running_pods(sim, ns, "job-name=train"), "replacement", sim)[0]
        assert second["spec"]["nodeName"] != node
        # 2 of the 8 GPUs of a p5.48xlarge: 55.04 x 2/8 = 13.76 $/h, on one node at a time
        found = wait_for(
            lambda: (s := status(sim, TJB, "move", ns)).get("burnRatePerHour") == "13.76" and s,
            "13.76 $/h on the new node", sim, timeout=120,
        )  # fmt: skip
        ran = (datetime.fromisoformat(found["figuresAsOf"]) - _start(first)).total_seconds()
        # never more than one pod's worth for the time since the first started
        assert money(found["spent"]) <= Decimal("13.76") * Decimal(ran + LAG_SECONDS) / 3600
    finally:
        sim.cp.kubectl("uncordon", node)
