"""A pod watch that fails after the first list is shown on every costgov resource
(PodsFollowed) and counted in /metrics, not only logged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from costgov.adapters.metrics import OperatorMetrics
from costgov.api import (
    CostPolicy,
    CostPolicyStatus,
    InferenceDeployment,
    InferenceDeploymentStatus,
    TrainingJobBudget,
    TrainingJobBudgetStatus,
)
from costgov.catalog import load_catalog
from costgov.services.accounting import Snapshot
from costgov.services.budget_reconciling import reconcile_budget
from costgov.services.inference_reconciling import reconcile_inference
from costgov.services.inventory import Inventory
from costgov.services.podwatch import PodStore
from costgov.services.policy_reconciling import reconcile_policy
from costgov.services.situations import audit_judgements, situation_from

NOW = datetime(2026, 11, 14, 12, tzinfo=UTC)
PROBLEM = 'cannot follow pods: watching pods: 403 Forbidden: pods is forbidden: User "system:serviceaccount:costgov:costgov" cannot watch resource "pods"'
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(kind: str) -> dict[str, Any]:
    """The first object of `kind` in examples/ (what a user copies), with a generation."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == kind:
                doc["metadata"]["generation"] = 1
                return dict(doc)
    raise AssertionError(f"no {kind} in examples/")


BUDGET = TrainingJobBudget.model_validate(_example("TrainingJobBudget"))
NAMESPACES = {
    doc["metadata"]["name"]: doc["metadata"].get("labels") or {}
    for doc in yaml.safe_load_all((EXAMPLES / "namespaces.yaml").read_text())
    if doc
}
POLICY = CostPolicy.model_validate(_example("CostPolicy"))
SERVER = InferenceDeployment.model_validate(_example("InferenceDeployment"))


def _conditions(problems: dict[str | None, str]) -> list[dict[str, str]]:
    inv = Inventory(namespaces=NAMESPACES, pods_problems=problems, budgets=(BUDGET,),
                    policies=(POLICY,), inference=(SERVER,))  # fmt: skip
    snap = Snapshot(NOW, {}, (), {}, {}, {}, {}, 300, {}, 4, accounted_to=NOW)
    situation = situation_from(inv, catalog=load_catalog(), now=NOW, excluded=frozenset())
    statuses = [
        reconcile_budget(BUDGET, inv, snap, situation=situation, old=TrainingJobBudgetStatus()),
        reconcile_policy(POLICY, inv, snap, situation=situation, old=CostPolicyStatus(),
                         judgements=audit_judgements(inv, situation)),
        reconcile_inference(SERVER, inv, snap, situation=situation,
                            old=InferenceDeploymentStatus(), ready_replicas=1),
    ]  # fmt: skip
    return [
        next(c.model_dump() for c in o.status.conditions if c.type == "PodsFollowed")
        for o in statuses
    ]


def test_every_resource_says_its_pods_are_as_last_seen_and_why() -> None:
    for found in _conditions({None: PROBLEM}):  # followed cluster-wide: every resource
        assert (found["status"], found["reason"]) == ("False", "WatchFailing")
        assert found["message"] == (
            f"{PROBLEM}; figures and decisions rest on the GPU pods as last seen"
        )
    for found in _conditions({}):
        assert (found["status"], found["reason"]) == ("True", "Watching")


def test_a_namespace_whose_pods_are_not_followed_shows_only_on_its_own_resources() -> None:
    """Found by review: one namespace's failing follower turned every resource False."""
    budget_ns, server_ns = BUDGET.metadata.namespace, SERVER.metadata.namespace
    assert budget_ns != server_ns  # examples/: ml-research and ml-serving
    budget, policy, server = _conditions({budget_ns: f"cannot follow pods in {budget_ns}: x"})
    assert budget["status"] == "False" and f"in {budget_ns}" in budget["message"]
    assert policy["status"] == "False"  # it governs both namespaces (examples/namespaces.yaml)
    assert server["status"] == "True"
    assert all(c["status"] == "True" for c in _conditions({"elsewhere": "cannot follow pods"}))


def test_the_failing_scopes_are_counted_in_metrics() -> None:
    async def scenario() -> list[float | None]:
        metrics, store = OperatorMetrics(), PodStore()
        store.report = metrics.pod_follow_failing.set
        store.expect(["ml", "serving"])
        gauge = lambda: metrics.registry.get_sample_value("costgov_pod_follow_failing")  # noqa: E731
        seen = [gauge()]
        store.replace({}, "ml")
        store.replace({}, "serving")
        store.failing(PROBLEM, "ml")
        store.failing("cannot follow pods in serving: timed out", "serving")
        seen.append(gauge())
        store.replace({}, "ml")  # listed again: that scope is followed again
        seen.append(gauge())
        store.failing(None, "serving")
        seen.append(gauge())
        return seen

    assert asyncio.run(scenario()) == [0.0, 2.0, 1.0, 0.0]


def test_a_problem_concerns_its_own_namespace_and_the_cluster_wide_one_all() -> None:
    from costgov.services.inventory import problems_in

    problems = {"team-a": "cannot follow pods in team-a: 403", "team-b": "in team-b: 500"}
    assert problems_in(problems, ["team-a"]) == "cannot follow pods in team-a: 403"
    assert problems_in(problems, ["team-c"]) is None
    assert problems_in(problems, None) == "cannot follow pods in team-a: 403; in team-b: 500"
    assert problems_in({None: "cluster"}, ["team-c"]) == "cluster"
