"""A chunk of history that answers while a cycle runs (services/catching_up.py `held`).

Found by review: the cycle read the background's owners before its own queries and its
spend after them. A chunk that answered in between was reported without its pods' owners:
a budget counted $0 for a Job whose pods were gone, and moved its cursor past them.

History as kube-state-metrics v2.20.0 exports it (internal/store/pod.go, node.go): one
8-GPU pod of Job train-old on a p5.48xlarge (55.04 $/h, 8 GPUs) Running for one hour from
S, deleted ten minutes after it finished; nothing runs at the cycle's time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from costgov.adapters.prometheus import PrometheusSource, QueryResult
from costgov.api import TrainingJobBudget, TrainingJobBudgetStatus
from costgov.catalog import load_catalog
from costgov.services.accounting import Snapshot
from costgov.services.budget_reconciling import reconcile_budget
from costgov.services.inventory import Inventory, job_record
from costgov.services.runtime import Runtime
from costgov.services.situations import situation_from
from costgov.settings import Settings

from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
BASE = END - 4 * 3600
S = BASE + 600
GONE = S + 70 * 60
AT = datetime.fromtimestamp(END, UTC)
POD = {"namespace": "ml", "pod": "train-old-abc"}


def _history() -> History:
    h = History()
    node = {"node": "node-a", "label_node_kubernetes_io_instance_type": "p5.48xlarge",
            "label_karpenter_sh_capacity_type": "on-demand"}  # fmt: skip
    h.span("kube_node_labels", node, 1, BASE, END + 1)
    h.span("kube_node_status_capacity",
           {"node": "node-a", "resource": "nvidia_com_gpu", "unit": "integer"}, 8, BASE, END + 1)  # fmt: skip
    h.span("kube_pod_container_resource_requests", {**POD, "container": "main", "node": "node-a",
           "resource": "nvidia_com_gpu", "unit": "integer"}, 8, S, GONE)  # fmt: skip
    h.span("kube_pod_status_phase", {**POD, "phase": "Running"}, 1, S, S + 3600)
    h.span("kube_pod_status_phase", {**POD, "phase": "Running"}, 0, S + 3600, GONE)
    h.span("kube_pod_status_phase", {**POD, "phase": "Succeeded"}, 1, S + 3600, GONE)
    h.span("kube_pod_info", {**POD, "uid": "0b6f9c4e-1", "node": "node-a", "host_ip": "10.0.0.1",
           "pod_ip": "10.1.0.7", "created_by_kind": "Job", "created_by_name": "train-old",
           "priority_class": "", "host_network": "false"}, 1, S, GONE)  # fmt: skip
    h.span("kube_pod_owner", {**POD, "owner_kind": "Job", "owner_name": "train-old",
           "owner_is_controller": "true"}, 1, S, GONE)  # fmt: skip
    return h


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


BUDGET = TrainingJobBudget.model_validate({
    "apiVersion": "costgov.io/v1alpha1", "kind": "TrainingJobBudget",
    "metadata": {"name": "b", "namespace": "ml", "generation": 1},
    "spec": {"amount": 1000, "selector": {"matchLabels": {"team": "a"}}},
})  # fmt: skip
JOB = job_record({
    "apiVersion": "batch/v1", "kind": "Job",
    "metadata": {"name": "train-old", "namespace": "ml", "labels": {"team": "a"}},
    "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "main", "image": "x", "resources": {"limits": {"nvidia.com/gpu": 8}}}]}}},
    "status": {"startTime": datetime.fromtimestamp(S, UTC).isoformat(),
               "conditions": [{"type": "Complete", "status": "True"}]},
})  # fmt: skip
STATUS = {"accounting": {"cursor": datetime.fromtimestamp(BASE, UTC).isoformat(), "spent": "0"}}
assert JOB is not None
INV = Inventory(namespaces={"ml": {}}, budgets=(BUDGET,), jobs=(JOB,),
                statuses={("TrainingJobBudget", "ml", "b"): STATUS})  # fmt: skip


def _budget(snap: Snapshot) -> tuple[Decimal | None, datetime | None]:
    situation = situation_from(INV, catalog=load_catalog(), now=AT, excluded=frozenset())
    old = TrainingJobBudgetStatus.model_validate(STATUS)
    out = reconcile_budget(BUDGET, INV, snap, situation=situation, old=old).status
    return out.spent and Decimal(out.spent), out.accounting.cursor if out.accounting else None


def test_a_chunk_answering_during_a_cycle_is_reported_with_its_owners(
    prometheus_url: str,
) -> None:
    answered = asyncio.Event()

    class Source(PrometheusSource):
        async def query(self, expr: str, at: datetime) -> QueryResult:
            if self._executor is None:  # the cycle's own: answered after a chunk's queries
                await answered.wait()
                await asyncio.sleep(0.5)  # the chunk is priced and waits to be added
                return await super().query(expr, at)
            found = await super().query(expr, at)  # the background's (an `aside` copy)
            answered.set()
            return found

    async def scenario() -> tuple[Snapshot, Snapshot]:
        settings = Settings(prometheus_url=prometheus_url)
        runtime = Runtime(settings, load_catalog(), Source(settings), None)
        during = await runtime.snapshot(INV, now=AT)
        await asyncio.wait_for(runtime.catchup.settled(), 60)
        after = await runtime.snapshot(INV, now=AT)
        runtime.catchup.close()
        return during, after

    during, after = asyncio.run(scenario())
    for snap in (during, after):  # every pod a reported window holds has its owner
        for window in snap.windows.values():
            for line in window.pods:
                assert line.usage.key in snap.owners, f"{line.usage.key} reported, owner unknown"
    spent, cursor = _budget(during)
    # during: the chunk was not added yet, the window lags and the cursor stays, or it was
    # added with its owners; never the window without them ($0 and the cursor past the pod)
    assert (
        cursor is None or cursor == datetime.fromtimestamp(BASE, UTC) or spent == Decimal("55.04")
    )
    # after: one hour x 8 GPUs x 55.04 / 8 = 55.04, the cursor at the cycle's time
    spent, cursor = _budget(after)
    assert spent == Decimal("55.04") and cursor == AT
