"""`make sim-demo`: the operator at work on the simulated cluster `make sim-up` started.

A platform policy that suspends over-budget training; a $1.00 TrainingJobBudget whose
requester said the Job takes a minute; the Job (a whole p5.48xlarge, 55.04 $/h) overruns:
dollars accrue in `kubectl get`, the budget is spent, costgov suspends the Job and the job
controller deletes its pods. Then a model server on L4 spot nodes capped by its budget.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .cluster import DEFAULT_DIR, Sim, load
from .kube import budget, get, gpu_job, model_server, namespace, running_pods

NS = "demo"
POLICY = {
    "apiVersion": "costgov.io/v1alpha1",
    "kind": "CostPolicy",
    "metadata": {"name": "demo-platform"},
    "spec": {
        "mode": "enforce",
        "scope": {"namespaceSelector": {"matchLabels": {"costgov.io/demo": "true"}}},
        "budget": {"amount": 50000, "onExceeded": "suspend"},
        "limits": {"maxGPUsPerWorkload": 16},
    },
}
SERVER = model_server("llama-8b-chat", NS, 600)


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def show(sim: Sim, *args: str) -> None:
    print(f"$ kubectl {' '.join(args)}")
    print(sim.cp.kubectl(*args, check=False).stdout, end="", flush=True)


def _suspended(sim: Sim) -> bool:
    return get(sim, "job", "llama-finetune", NS)["spec"].get("suspend") is True


def training(sim: Sim) -> None:
    say("a platform policy (enforce, suspend when a budget is spent) and a $1.00 budget")
    namespace(sim, NS, **{"costgov.io/demo": "true"})
    sim.cp.apply(POLICY)
    tjb = budget("llama-finetune", NS, "1.00")
    tjb["spec"]["maxDuration"] = "1m"  # what the requester said: 55.04 $/h x 1 min = $0.92
    sim.cp.apply(tjb)
    job = gpu_job("llama-finetune", NS, 8, {"node.kubernetes.io/instance-type": "p5.48xlarge"},
                  labels={"costgov.io/budget": "llama-finetune"}, util=35)  # fmt: skip
    del job["spec"]["activeDeadlineSeconds"]
    sim.cp.apply(job)
    print("job.batch/llama-finetune created (8 x H100 on a p5.48xlarge, no deadline)")
    for _ in range(60):
        if running_pods(sim, NS, "job-name=llama-finetune"):
            break
        time.sleep(1)
    else:
        raise SystemExit("no free p5.48xlarge for the Job: run the demo on a fresh `make sim-up`")
    show(sim, "get", "pods", "-n", NS, "-o", "wide")
    say("dollars accrue at 55.04 $/h; the Job overruns its minute")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not _suspended(sim):
        show(sim, "get", "trainingjobbudgets", "-n", NS)
        time.sleep(15)
    say("budget spent: costgov suspended the Job; the job controller deleted its pods")
    show(sim, "get", "trainingjobbudgets", "-n", NS)
    show(sim, "get", "jobs", "-n", NS, "-o",
         "custom-columns=JOB:.metadata.name,SUSPENDED:.spec.suspend,"
         "BY:.metadata.annotations.costgov\\.io/suspended-by")  # fmt: skip
    for _ in range(30):
        if not running_pods(sim, NS, "job-name=llama-finetune"):
            break
        time.sleep(2)
    show(sim, "get", "pods", "-n", NS, "-l", "job-name=llama-finetune")
    show(
        sim, "get", "events", "-n", NS, "--field-selector", "involvedObject.kind=TrainingJobBudget"
    )


def serving(sim: Sim) -> None:
    say("a model server: 1-3 replicas of 1 L4 on spot, $600 a month")
    print("g6.xlarge spot 0.40 $/h x 730 h = $292 a replica-month: the budget affords 2")
    sim.cp.apply(SERVER)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        idep = get(sim, "inferencedeployments", "llama-8b-chat", NS)
        if (idep.get("status") or {}).get("costPerMillionTokens"):
            break
        time.sleep(5)
    show(sim, "get", "inferencedeployments", "-n", NS)
    show(sim, "get", "pods", "-n", NS, "-l", "costgov.io/inference-deployment=llama-8b-chat",
         "-o", "wide")  # fmt: skip
    status = get(sim, "inferencedeployments", "llama-8b-chat", NS).get("status") or {}
    print(json.dumps({k: status.get(k) for k in (
        "replicas", "cappedReplicas", "hourlyCost", "projectedMonthlyCost",
        "costPerMillionTokens", "costPerThousandRequests")}, indent=1))  # fmt: skip


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    if not (root / "env").exists():
        print("no simulated cluster: run `make sim-up` first", file=sys.stderr)
        return 1
    sim = load(root)
    sim.cp.kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true")
    training(sim)
    serving(sim)
    say(f"explore: source {root / 'env'}; kubectl get trainingjobbudgets,inferencedeployments -A")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
