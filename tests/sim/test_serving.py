"""A model server on the simulated cluster: costgov's Deployment makes real ReplicaSets and
Pods (deployment and replicaset controllers), replicas are capped by the monthly budget,
$ per 1M tokens comes from vLLM's counters, and deleting the InferenceDeployment lets the
garbage collector remove everything it owned."""

from __future__ import annotations

from decimal import Decimal

from .cluster import Sim
from .kube import SERVED, Namespaces, exactly, get, items, money, running_pods, status, wait_for

IDEP = "inferencedeployments.costgov.io"


def _server(budget: int) -> dict[str, object]:
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": "chat", "namespace": "sim-serve"},
        "spec": {
            "image": "vllm/vllm-openai:v0.6.3",
            "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct"],
            "replicas": {"min": 1, "max": 3},
            "gpu": {"model": "L4", "count": 1},
            "capacityType": "spot",
            "monthlyBudget": budget,
        },
    }


POLICY = {
    "apiVersion": "costgov.io/v1alpha1",
    "kind": "CostPolicy",
    "metadata": {"name": "sim-serving"},
    "spec": {
        "mode": "enforce",
        "scope": {"namespaceSelector": {"matchLabels": {"scenario": "serve"}}},
    },
}


def test_model_server_runs_capped_priced_per_token_and_is_garbage_collected(
    sim: Sim, namespaces: Namespaces
) -> None:
    namespaces("sim-serve", scenario="serve")
    sim.cp.apply(POLICY)  # an enforcing policy: budgets cap replicas (else they only warn)
    # g6.xlarge spot (EKS node group, capacityType SPOT) 0.40 $/h x 730 h = 292 $/month a
    # replica; 3 x 292 = 876 > 600: capped at floor(600 / 292) = 2 replicas
    sim.cp.apply(_server(600))
    selector = "costgov.io/inference-deployment=chat"
    pods = wait_for(
        lambda: exactly(running_pods(sim, "sim-serve", selector), 2),
        "2 model-server pods Running", sim, timeout=120,
    )  # fmt: skip
    assert {p["spec"]["nodeName"] for p in pods} <= {
        "sim-g6-spot",
        "sim-g6-spot-2",
        "sim-g6-spot-3",
    }
    assert get(sim, "deployment", "chat", "sim-serve")["spec"]["replicas"] == 2
    assert len(items(sim, "replicasets", "sim-serve", selector)) == 1  # the real controller's

    # Each pod serves 300 + 100 tokens and 2 requests a second (tests/sim/kwok-metrics.yaml)
    # on 0.40 $/h: 0.40 / 3600 / 400 x 1e6 = 0.2778 $ per 1M tokens; 0.40 / 3600 / 2 x 1000
    # = 0.0556 $ per 1,000 requests. The same for one pod or two.
    per_token = Decimal("0.40") / 3600 / (SERVED["prompt_tokens"] + SERVED["generation_tokens"])
    found = wait_for(
        lambda: (s := status(sim, IDEP, "chat", "sim-serve")).get("costPerMillionTokens") and s,
        "$ per 1M tokens", sim, timeout=150,
    )  # fmt: skip
    assert found["hourlyCost"] == "0.80"  # 2 x 0.40
    assert found["replicas"] == 2 and found["cappedReplicas"] == 2
    # cents: 0.2778 shows as 0.28; one sample step of slack either way in the ratio
    assert abs(money(found["costPerMillionTokens"]) - per_token * 1_000_000) <= Decimal("0.02")
    per_request = Decimal("0.40") / 3600 / SERVED["requests"] * 1000
    assert abs(money(found["costPerThousandRequests"]) - per_request) <= Decimal("0.01")

    sim.cp.kubectl("delete", IDEP, "chat", "-n", "sim-serve")
    wait_for(
        lambda: not items(sim, "deployments", "sim-serve") and not items(sim, "replicasets", "sim-serve")
        and not running_pods(sim, "sim-serve", selector),
        "Deployment, ReplicaSet and Pods garbage-collected", sim, timeout=90,
    )  # fmt: skip
    sim.cp.kubectl("delete", "costpolicy", "sim-serving")
