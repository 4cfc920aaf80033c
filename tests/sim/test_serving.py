"""A model server on the simulated cluster: costgov's Deployment makes real ReplicaSets and
Pods (deployment and replicaset controllers), replicas are capped by the monthly budget,
$ per 1M tokens comes from vLLM's counters, and deleting the InferenceDeployment lets the
garbage collector remove everything it owned."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from .cluster import Sim
from .kube import (
    SERVED,
    Namespaces,
    exactly,
    get,
    items,
    model_server,
    money,
    running_pods,
    status,
    wait_for,
)

IDEP = "inferencedeployments.costgov.io"


def _started(pods: list[dict[str, Any]]) -> datetime:
    return min(datetime.fromisoformat(p["status"]["startTime"]) for p in pods)


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
    sim.cp.apply(model_server("chat", "sim-serve", 600))
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
    per_request = Decimal("0.40") / 3600 / SERVED["requests"]
    # Let the servers run a while: the figures cover their life so far (under an hour)
    time.sleep(60)
    found = wait_for(
        lambda: (s := status(sim, IDEP, "chat", "sim-serve")).get("costPerMillionTokens") and s,
        "$ per 1M tokens", sim, timeout=150,
    )  # fmt: skip
    assert found["hourlyCost"] == "0.80"  # 2 x 0.40
    assert found["replicas"] == 2 and found["cappedReplicas"] == 2
    # Tolerance: GPU time is counted at 15 s sample points, so up to one step may be missed
    # at a pod's start and one at the figures' end, and the counters are scraped every 5 s:
    # over a server's age A seconds the ratio may be off by (2 x 15 + 5) / A; plus half a
    # cent of rounding. (CI once saw 0.18 against 0.2778 at A = 61 s: 35 % off, over the
    # (15 + 5) / A = 33 % this allowed before.)
    age = (datetime.fromisoformat(found["figuresAsOf"]) - _started(pods)).total_seconds()
    slack = Decimal(35) / Decimal(age)
    measured = money(found["costPerMillionTokens"])
    assert abs(measured - per_token * 1_000_000) <= per_token * 1_000_000 * slack + Decimal("0.005")
    measured = money(found["costPerThousandRequests"])
    assert abs(measured - per_request * 1000) <= per_request * 1000 * slack + Decimal("0.005")

    sim.cp.kubectl("delete", IDEP, "chat", "-n", "sim-serve")
    wait_for(
        lambda: not items(sim, "deployments", "sim-serve") and not items(sim, "replicasets", "sim-serve")
        and not running_pods(sim, "sim-serve", selector),
        "Deployment, ReplicaSet and Pods garbage-collected", sim, timeout=90,
    )  # fmt: skip
    sim.cp.kubectl("delete", "costpolicy", "sim-serving")
