"""What the sim scenarios do to the cluster and read back from it: kubectl as a user would,
Prometheus over its HTTP API, and waiting for the real controllers."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from .cluster import Sim

T = TypeVar("T")

Namespaces = Callable[..., str]
"""The `namespaces` fixture: make(name, **labels) -> name, deleted after the test."""
SERVED = {"prompt_tokens": 300, "generation_tokens": 100, "requests": 2}
"""What each fake vLLM server serves per second (tests/sim/kwok-metrics.yaml)."""


def get(sim: Sim, what: str, name: str, ns: str | None = None) -> dict[str, Any]:
    args = ["get", what, name, "-o", "json", *(["-n", ns] if ns else [])]
    loaded = json.loads(sim.cp.kubectl(*args).stdout)
    assert isinstance(loaded, dict)
    return loaded


def items(sim: Sim, what: str, ns: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["get", what, "-n", ns, "-o", "json", *(["-l", selector] if selector else [])]
    found = json.loads(sim.cp.kubectl(*args).stdout)["items"]
    assert isinstance(found, list)
    return found


def status(sim: Sim, what: str, name: str, ns: str) -> dict[str, Any]:
    found = get(sim, what, name, ns).get("status") or {}
    assert isinstance(found, dict)
    return found


def money(value: object) -> Decimal:
    return Decimal(str(value))


def wait_for(
    check: Callable[[], T | None], what: str, sim: Sim, timeout: float = 90, every: float = 1
) -> T:
    """The first truthy answer of `check`; on timeout, fails with the operator's log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    logs = sorted(sim.root.glob("operator-*.log"))
    tail = logs[-1].read_text()[-4000:] if logs else ""
    raise AssertionError(f"{what}: not within {timeout:.0f}s; the operator's log ends:\n{tail}")


def promql(sim: Sim, query: str) -> list[dict[str, Any]]:
    url = f"{sim.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    result = body["data"]["result"]
    assert isinstance(result, list)
    return result


def exactly(found: list[T], count: int) -> list[T] | None:
    return found if len(found) == count else None


def namespace(sim: Sim, name: str, **labels: str) -> None:
    sim.cp.apply({"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": name, "labels": labels}})  # fmt: skip


def running_pods(sim: Sim, ns: str, selector: str) -> list[dict[str, Any]]:
    return [
        p
        for p in items(sim, "pods", ns, selector)
        if p.get("status", {}).get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")
    ]


def gpu_job(
    name: str,
    ns: str,
    gpus: int,
    node_selector: dict[str, str],
    labels: dict[str, str] | None = None,
    util: int = 50,
    parallelism: int = 1,
    tolerations: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A training Job as an ML engineer writes it; its pods report `util` % GPU use to the
    fake dcgm-exporter."""
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "nodeSelector": node_selector,
        "containers": [{"name": "trainer", "image": "ghcr.io/example/trainer:1.0",
                        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}],
    }  # fmt: skip
    if tolerations:
        pod["tolerations"] = tolerations
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": {
            "parallelism": parallelism,
            "completions": parallelism,
            "backoffLimit": 0,
            "activeDeadlineSeconds": 86400,
            "template": {
                "metadata": {"annotations": {"sim.costgov.io/gpu-util": str(util)}},
                "spec": pod,
            },
        },
    }


def budget(name: str, ns: str, amount: str, **hints: str) -> dict[str, Any]:
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "TrainingJobBudget",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "amount": amount,
            "selector": {"matchLabels": {"costgov.io/budget": name}},
            **({"hints": hints} if hints else {}),
        },
    }


def overrunning_p5_job(sim: Sim, ns: str, budget_name: str) -> dict[str, Any]:
    """A $1.00 TrainingJobBudget `budget_name` with maxDuration 1m (admitted: 55.04 x 1/60 =
    0.92 <= 1.00) and the Job `train` on all 8 GPUs of a p5.48xlarge under it, with no
    deadline of its own, so it overruns: the budget is spent after 1.00 / 55.04 x 3600 =
    65.4 s of running. Returns the Job's pod once it is Running."""
    tjb = budget(budget_name, ns, "1.00")
    tjb["spec"]["maxDuration"] = "1m"
    sim.cp.apply(tjb)
    job = gpu_job("train", ns, 8, {"node.kubernetes.io/instance-type": "p5.48xlarge"},
                  labels={"costgov.io/budget": budget_name})  # fmt: skip
    del job["spec"]["activeDeadlineSeconds"]
    sim.cp.apply(job)
    return wait_for(lambda: running_pods(sim, ns, "job-name=train"), "pod Running", sim)[0]


def model_server(name: str, ns: str, monthly_budget: int) -> dict[str, Any]:
    """A vLLM server of 1-3 replicas of one L4 on spot (g6.xlarge spot: 0.40 $/h)."""
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "image": "vllm/vllm-openai:v0.6.3",
            "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct"],
            "replicas": {"min": 1, "max": 3},
            "gpu": {"model": "L4", "count": 1},
            "capacityType": "spot",
            "monthlyBudget": monthly_budget,
        },
    }
