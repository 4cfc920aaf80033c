"""A TrainingJobBudget on a cluster whose kube-state-metrics does not export kube_pod_owner
(--metric-denylist=kube_pod_owner, a common cardinality cut): pods are tied to their Jobs
through kube_pod_info's created_by_kind / created_by_name, or through the API.

The operator runs on kmock with a real Prometheus; its clock is pinned to END (mid-month, in
the past). Prices (operator/costgov/catalog/data/prices.yaml): node-a p5.48xlarge on demand,
us-east-1, $55.04/h for 8 GPUs = $6.88 per GPU-hour.
History (one sample a minute, series as kube-state-metrics v2.20.0 and dcgm-exporter write
them, see exporters.py; S = END - 120 min):
  sweep-1-x7k2p (Job sweep-1, finished): 8 GPUs on node-a, Running S .. S+59 min
    (60 samples), Succeeded after, deleted at S+70 min: gone from the API, so only
    kube_pod_info{created_by_kind="Job",created_by_name="sweep-1"} ties it to its Job.
    25 % busy.
  sweep-2-m4n8q (Job sweep-2, running): 8 GPUs on node-a, Running S+61 min .. END
    (60 samples); in the API with its Job as controller ownerReference, and in kube_pod_info.
    50 % busy.
  render-0-k2j8d (Job render, finished): 1 GPU on node-x, a p9.96xlarge, an instance type
    the price catalog does not know, Running S .. S+29 min (30 samples): unpriced.
A CostPolicy with a daily budget governs the namespace (label team=a).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from .exporters import dcgm_utilization, gpu_pod
from .harness import Cluster, caught_up, running_operator
from .objects import P5_NODE_LABELS, budget, job, job_pod, mid_month_end, node
from .prom import History, running_prometheus

pytestmark = pytest.mark.asyncio(loop_scope="module")

END = mid_month_end()
MIN = 60
S = END - 120 * MIN
NOW = datetime.fromtimestamp(END, UTC)
CREATED = (NOW - timedelta(days=1)).isoformat().replace("+00:00", "Z")
NS = "team-a"
TJB = "costgov.io/v1alpha1/trainingjobbudgets"
CP = "costgov.io/v1alpha1/costpolicies"


KSM_X = {"label_node_kubernetes_io_instance_type": "p9.96xlarge"}
POLICY = {
    "apiVersion": "costgov.io/v1alpha1",
    "kind": "CostPolicy",
    "metadata": {"name": "team-a", "generation": 1, "creationTimestamp": CREATED},
    "spec": {
        "mode": "audit",
        "scope": {"namespaceSelector": {"matchLabels": {"team": "a"}}},
        # daily: the period so far (00:00 to noon) is sampled every 60 s, exactly
        "budget": {"amount": 10000, "period": "daily"},
    },
}


def _history() -> History:
    h = History()
    h.span(
        "kube_node_labels",
        {
            "node": "node-a",
            "label_node_kubernetes_io_instance_type": "p5.48xlarge",
            "label_topology_kubernetes_io_region": "us-east-1",
            "label_karpenter_sh_capacity_type": "on-demand",
        },
        1,
        S - 600,
        END + 1,
    )
    sweep1 = {"namespace": NS, "pod": "sweep-1-x7k2p", "node": "node-a", "gpus": 8}
    gpu_pod(h, **sweep1, running=(S, S + 60 * MIN), until=S + 70 * MIN,
            created_by=("Job", "sweep-1"))  # fmt: skip
    sweep2 = {"namespace": NS, "pod": "sweep-2-m4n8q", "node": "node-a", "gpus": 8}
    gpu_pod(h, **sweep2, running=(S + 61 * MIN, END + 1), until=END + 1,
            created_by=("Job", "sweep-2"))  # fmt: skip
    h.span("kube_node_labels", {"node": "node-x", **KSM_X}, 1, S - 600, END + 1)
    gpu_pod(h, namespace=NS, pod="render-0-k2j8d", node="node-x", gpus=1,
            running=(S, S + 30 * MIN), until=S + 40 * MIN, created_by=("Job", "render"))  # fmt: skip
    h100 = "NVIDIA H100 80GB HBM3"
    dcgm_utilization(h, **sweep1, model=h100, percent=25, start=S, stop=S + 60 * MIN)
    dcgm_utilization(h, **sweep2, model=h100, percent=50, start=S + 61 * MIN, stop=END + 1)
    return h


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(prometheus_url: str) -> AsyncIterator[Cluster]:
    async with running_operator(prometheus_url, clock=lambda: NOW) as c:
        namespace = {"kind": "Namespace", "metadata": {"name": NS, "labels": {"team": "a"}}}
        await c.create("v1/namespaces", namespace)
        await c.create("v1/nodes", node("node-a", P5_NODE_LABELS))
        await c.create(
            "v1/nodes", node("node-x", {"node.kubernetes.io/instance-type": "p9.96xlarge"})
        )
        await c.create(
            "batch/v1/jobs",
            job("render", NS, budget="sweep", finished=True, created=CREATED, gpus=1),
        )
        await c.create(
            "batch/v1/jobs", job("sweep-1", NS, budget="sweep", finished=True, created=CREATED)
        )
        await c.create(
            "batch/v1/jobs", job("sweep-2", NS, budget="sweep", finished=False, created=CREATED)
        )
        await c.create("v1/pods", job_pod("sweep-2-m4n8q", NS, "sweep-2", "node-a"))
        # the budget last: its first cycle accounts everything up to END at once
        await c.create(TJB, budget("sweep", NS, 1000, created=CREATED))
        await c.create(CP, json.loads(json.dumps(POLICY)))
        yield c


def _status(c: Cluster) -> dict[str, Any]:
    return dict(c.get(TJB, NS, "sweep").get("status") or {})


async def test_spend_of_pods_known_through_kube_pod_info(cluster: Cluster) -> None:
    await cluster.wait_for(
        lambda: caught_up(_status(cluster)), describe=lambda: str(_status(cluster))
    )
    status = _status(cluster)
    # sweep-1: 60 samples x 8 GPUs = 8 GPU-h x $6.88 = $55.04 (kube_pod_info's created_by)
    # sweep-2: 60 samples x 8 GPUs = 8 GPU-h x $6.88 = $55.04
    # spent 55.04 + 55.04 = 110.08, not $0.00
    assert status["spent"] == "110.08"
    assert status["burnRatePerHour"] == "55.04"  # sweep-2 holds all 8 GPUs: 8 x 6.88
    lines = {j["name"]: (j["cost"], j["hours"]) for j in status["jobs"]}
    # render: 30 samples x 1 GPU = 0.5 GPU-h on node-x, unpriced: no dollars
    assert lines == {
        "sweep-1": ("55.04", "1.00"),
        "sweep-2": ("55.04", "1.00"),
        "render": ("0.00", "0.50"),
    }
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Attributed"]["status"] == "True"


async def test_idle_dollars_over_the_whole_budget_period(cluster: Cluster) -> None:
    await cluster.wait_for(
        lambda: caught_up(_status(cluster)) and "idleGPUCost" in _status(cluster)
    )
    # each pod's cost x its own idle share over the time it ran, sweep-1 ended an hour ago:
    #   sweep-1 $55.04 x (100 - 25) % = 41.28; sweep-2 $55.04 x (100 - 50) % = 27.52
    assert _status(cluster)["idleGPUCost"] == "68.80"  # 41.28 + 27.52


def _versions(c: Cluster, resource: str, ns: str | None, name: str) -> list[dict[str, Any]]:
    """Every status the object had, once it had figures, oldest first."""
    history = c.k8s.objects[resource, ns, name].history
    statuses = [dict(v.raw.get("status") or {}) for v in history if v is not None]
    return [s for s in statuses if caught_up(s)]


async def test_unpriced_pods_stay_noted_cycle_after_cycle(cluster: Cluster) -> None:
    # the first cycle accounts the period up to END; the later ones (the clock is pinned)
    # add empty windows: render-0 is left out of the period's spend all the same
    await cluster.wait_for(
        lambda: (
            len(_versions(cluster, CP, None, "team-a")) >= 4
            and len(_versions(cluster, TJB, NS, "sweep")) >= 4
        ),
        timeout=30,
    )
    for status in _versions(cluster, CP, None, "team-a"):
        assert status["spent"] == "110.08"  # sweep-1 55.04 + sweep-2 55.04; render-0 none
        assert status["unpricedPods"] == 1
        conds = {c["type"]: c for c in status["conditions"]}
        assert conds["BudgetExceeded"]["message"] == (
            "spent $110.08 of the daily budget $10,000.00; 1 pod unpriced, not included"
        )
        assert conds["Priced"]["status"] == "False"
        assert (
            "team-a/render-0-k2j8d: node node-x: instance type 'p9.96xlarge'"
            in (conds["Priced"]["message"])
        )
    for status in _versions(cluster, TJB, NS, "sweep"):
        conds = {c["type"]: c for c in status["conditions"]}
        assert conds["Priced"]["status"] == "False", status
        assert conds["Priced"]["message"].startswith("1 pod unpriced, not included: team-a/")
