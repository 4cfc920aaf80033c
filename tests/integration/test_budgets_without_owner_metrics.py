"""TrainingJobBudgets on a cluster whose Prometheus knows no pod's owner: kube-state-metrics
runs with --metric-denylist=kube_pod_owner and a metric_relabel_configs `labeldrop` removes
kube_pod_info's created_by_kind / created_by_name. The API's ownerReferences then tie a pod
to its Job; a GPU pod nobody can tie to a Job beside a running Job must be a condition,
never a silent $0.

The operator runs on kmock with a real Prometheus; its clock is pinned to END (mid-month, in
the past). Prices (operator/costgov/catalog/data/prices.yaml): p5.48xlarge on demand,
us-east-1, $55.04/h for 8 GPUs = $6.88 per GPU-hour.
History (one sample a minute, series as kube-state-metrics v2.20.0 writes them, less
the dropped labels, see exporters.py; S = END - 60 min):
  seen-1-q9w4r (Job seen-1, running, budget "seen"): 8 GPUs on node-a, Running S .. END
    (61 samples); in the API with its Job as controller ownerReference.
  unseen-1-z3x5c (running beside Job unseen-1, budget "unseen"): 8 GPUs on node-b, Running
    S .. END; not in the operator's pod index (not created in the API emulator), standing
    for any pod the operator cannot see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from .exporters import gpu_pod
from .harness import Cluster, caught_up, running_operator
from .objects import P5_NODE_LABELS, budget, job, job_pod, mid_month_end, node
from .prom import History, running_prometheus

pytestmark = pytest.mark.asyncio(loop_scope="module")

END = mid_month_end()
MIN = 60
S = END - 60 * MIN
NOW = datetime.fromtimestamp(END, UTC)
CREATED = (NOW - timedelta(days=1)).isoformat().replace("+00:00", "Z")
NS = "team-b"
TJB = "costgov.io/v1alpha1/trainingjobbudgets"


def _history() -> History:
    h = History()
    for name in ("node-a", "node-b"):
        labels = {
            "node": name,
            "label_node_kubernetes_io_instance_type": "p5.48xlarge",
            "label_topology_kubernetes_io_region": "us-east-1",
            "label_karpenter_sh_capacity_type": "on-demand",
        }
        h.span("kube_node_labels", labels, 1, S - 600, END + 1)
    for pod, on in (("seen-1-q9w4r", "node-a"), ("unseen-1-z3x5c", "node-b")):
        gpu_pod(h, namespace=NS, pod=pod, node=on, gpus=8, running=(S, END + 1), until=END + 1,
                created_by=None)  # fmt: skip
    return h


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(prometheus_url: str) -> AsyncIterator[Cluster]:
    async with running_operator(prometheus_url, clock=lambda: NOW) as c:
        await c.create("v1/namespaces", {"kind": "Namespace", "metadata": {"name": NS}})
        for name in ("node-a", "node-b"):
            await c.create("v1/nodes", node(name, P5_NODE_LABELS))
        await c.create("v1/pods", job_pod("seen-1-q9w4r", NS, "seen-1", "node-a"))
        for name in ("seen", "unseen"):
            await c.create(
                "batch/v1/jobs",
                job(f"{name}-1", NS, budget=name, finished=False, created=CREATED),
            )
        # the budgets last: their first cycle accounts everything up to END at once
        for name in ("seen", "unseen"):
            await c.create(TJB, budget(name, NS, 1000, created=CREATED))
        yield c


def _status(c: Cluster, name: str) -> dict[str, Any]:
    return dict(c.get(TJB, NS, name).get("status") or {})


def _conditions(c: Cluster, name: str) -> dict[str, dict[str, Any]]:
    return {x["type"]: x for x in _status(c, name).get("conditions", [])}


async def test_the_apis_owner_reference_ties_a_pod_to_its_job(cluster: Cluster) -> None:
    await cluster.wait_for(lambda: caught_up(_status(cluster, "seen")))
    status = _status(cluster, "seen")
    # seen-1: 61 samples (S .. END) x 8 GPUs = 8 x 61/60 GPU-h x $6.88 = $55.9573 -> 55.96
    assert status["spent"] == "55.96"
    assert status["burnRatePerHour"] == "55.04"  # 8 GPUs x $6.88 now
    assert _conditions(cluster, "seen")["Attributed"]["status"] == "True"


async def test_a_running_job_with_pods_of_unknown_owner_is_a_condition(cluster: Cluster) -> None:
    await cluster.wait_for(lambda: "Attributed" in _conditions(cluster, "unseen"))
    status = _status(cluster, "unseen")
    attributed = _conditions(cluster, "unseen")["Attributed"]
    assert (attributed["status"], attributed["reason"]) == ("False", "OwnerUnknown")
    assert "Job(s) unseen-1 running" in attributed["message"]
    assert "team-b/unseen-1-z3x5c" in attributed["message"]
    assert "not counted" in attributed["message"]
    assert status["spent"] == "0.00"  # nothing attributed, and the condition says why
