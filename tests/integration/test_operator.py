"""The operator end to end on kmock + a real Prometheus: status, conditions, events,
the owned Deployment, suspension, and the admission webhook over HTTP.

The operator's clock is pinned to END (mid-month, in the past), so the spend windows are the
same whatever day CI runs. Prices from the bundled catalog:
  node-a p5.48xlarge on demand 55.04 $/h / 8 GPUs = 6.88 $/GPU-h
  node-c g6.xlarge EKS spot 0.40 $/h / 1 GPU
History (one sample a minute; S = END - 230 min):
  train-1-abc (Job train-1): 8 GPUs on node-a, Running S .. S+119 min (120 samples), done
  train-2-pqr (Job train-2): 8 GPUs on node-a, Running S+120 min .. END (111 samples), running
  llama-8b-chat-0 (InferenceDeployment llama-8b-chat): 1 GPU on node-c, Running S .. END
    (231 samples), 40 % busy, 1,500 tokens and 10 requests a minute
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

from costgov.domain.budgets import period_bounds

from .harness import Cluster, caught_up, running_operator
from .prom import History, running_prometheus

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _end() -> int:
    """Noon on the 14th of this month, or of last month before the 15th: always past."""
    now = datetime.now(UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if now.day < 15:
        month = (month - timedelta(days=1)).replace(day=1)
    return int((month + timedelta(days=13, hours=12)).timestamp())


END = _end()
MIN = 60
S = END - 230 * MIN
NOW = datetime.fromtimestamp(END, UTC)
CREATED = (NOW - timedelta(days=1)).isoformat().replace("+00:00", "Z")

NODES = {
    "node-a": {
        "node.kubernetes.io/instance-type": "p5.48xlarge",
        "topology.kubernetes.io/region": "us-east-1",
        "karpenter.sh/capacity-type": "on-demand",
    },
    "node-c": {
        "node.kubernetes.io/instance-type": "g6.xlarge",
        "eks.amazonaws.com/capacityType": "SPOT",
    },
}


# kube_node_labels as kube-state-metrics v2.20.0 writes NODES' labels (internal/store/utils.go:
# non-[a-zA-Z0-9_] -> "_", snake_case, lower case)
KSM_NODE_LABELS = {
    "node-a": {
        "label_node_kubernetes_io_instance_type": "p5.48xlarge",
        "label_topology_kubernetes_io_region": "us-east-1",
        "label_karpenter_sh_capacity_type": "on-demand",
    },
    "node-c": {
        "label_node_kubernetes_io_instance_type": "g6.xlarge",
        "label_eks_amazonaws_com_capacity_type": "SPOT",
    },
}


def _history() -> History:
    h = History()
    for node, labels in KSM_NODE_LABELS.items():
        h.span("kube_node_labels", {"node": node, **labels}, 1, S - 600, END + 1)

    def pod(
        ns: str, name: str, node: str, gpus: int, start: int, stop: int, owner: str | None
    ) -> None:
        labels = {"namespace": ns, "pod": name}
        h.span(
            "kube_pod_container_resource_requests",
            {**labels, "container": "main", "resource": "nvidia_com_gpu", "unit": "integer"},
            gpus,
            start,
            END + 1,
        )
        h.span("kube_pod_info", {**labels, "node": node}, 1, start, END + 1)
        h.span("kube_pod_status_phase", {**labels, "phase": "Running"}, 1, start, stop)
        if stop <= END:
            h.span("kube_pod_status_phase", {**labels, "phase": "Running"}, 0, stop, END + 1)
        if owner:
            h.span(
                "kube_pod_owner",
                {**labels, "owner_kind": "Job", "owner_name": owner},
                1,
                start,
                END + 1,
            )

    pod("ml-research", "train-1-abc", "node-a", 8, S, S + 120 * MIN, "train-1")
    pod("ml-research", "train-2-pqr", "node-a", 8, S + 120 * MIN, END + 1, "train-2")
    pod("ml-serving", "llama-8b-chat-0", "node-c", 1, S, END + 1, None)
    h.span(
        "DCGM_FI_DEV_GPU_UTIL",
        {
            "gpu": "0",
            "UUID": "GPU-c0",
            "modelName": "NVIDIA L4",
            "Hostname": "node-c",
            "namespace": "gpu-operator",
            "pod": "dcgm-x",
            "exported_namespace": "ml-serving",
            "exported_pod": "llama-8b-chat-0",
        },
        40,
        S,
        END + 1,
    )
    for gpu in range(8):  # dcgm-exporter on node-a: train-2's GPUs, 20 % busy, 20,000 MiB
        dcgm = {"gpu": str(gpu), "UUID": f"GPU-a{gpu}", "modelName": "NVIDIA H100 80GB HBM3",
                "Hostname": "node-a", "namespace": "ml-research", "pod": "train-2-pqr"}  # fmt: skip
        h.span("DCGM_FI_DEV_GPU_UTIL", dcgm, 20, S + 120 * MIN, END + 1)
        h.span("DCGM_FI_DEV_FB_USED", dcgm, 20000, S + 120 * MIN, END + 1)
    vllm = {"namespace": "ml-serving", "pod": "llama-8b-chat-0"}
    for i, ts in enumerate(range(S, END + 1, MIN)):
        h.add("vllm:prompt_tokens_total", vllm, 1000 * i, ts)
        h.add("vllm:generation_tokens_total", vllm, 500 * i, ts)
        h.add("vllm:request_success_total", vllm, 10 * i, ts)
    return h


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


def _job(
    name: str,
    *,
    gpus: int = 8,
    finished: bool,
    labels: dict[str, str] | None = None,
    deadline: int | None = 259200,
    ns: str = "ml-research",
) -> dict[str, Any]:
    status: dict[str, Any] = {"startTime": CREATED}
    if finished:
        status["conditions"] = [{"type": "Complete", "status": "True"}]
    else:
        status["active"] = 1
    spec: dict[str, Any] = {
        "template": {
            "spec": {
                "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
                "containers": [
                    {
                        "name": "main",
                        "image": "trainer",
                        "resources": {"limits": {"nvidia.com/gpu": gpus}},
                    }
                ],
            }
        }
    }
    if deadline:
        spec["activeDeadlineSeconds"] = deadline
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": labels if labels is not None else {"costgov.io/budget": "llama-finetune"},
            "creationTimestamp": CREATED,
        },
        "spec": spec,
        "status": status,
    }


POLICY = {
    "apiVersion": "costgov.io/v1alpha1",
    "kind": "CostPolicy",
    "metadata": {"name": "ml-platform", "generation": 1, "creationTimestamp": CREATED},
    "spec": {
        "mode": "enforce",
        "scope": {"namespaceSelector": {"matchLabels": {"costgov.io/governed": "true"}}},
        "budget": {"amount": 20000, "period": "monthly", "onExceeded": "suspend"},
        "approvals": [
            {"above": 1000, "approvers": {"users": ["alice"], "groups": ["ml-leads"]}},
            {"above": 50000, "deny": True},
        ],
        "limits": {"maxGPUsPerWorkload": 16},
    },
}
WARN_POLICY = {
    "apiVersion": "costgov.io/v1alpha1",
    "kind": "CostPolicy",
    "metadata": {"name": "sandbox-warn", "generation": 1, "creationTimestamp": CREATED},
    "spec": {
        "mode": "warn",
        "scope": {"namespaceSelector": {"matchLabels": {"team": "sandbox"}}},
        "limits": {"maxGPUsPerWorkload": 4},
    },
}
AUDIT_POLICY = {
    "apiVersion": "costgov.io/v1alpha1",
    "kind": "CostPolicy",
    "metadata": {"name": "lab-audit", "generation": 1, "creationTimestamp": CREATED},
    "spec": {
        "mode": "audit",
        "scope": {"namespaceSelector": {"matchLabels": {"team": "lab"}}},
        "limits": {"maxGPUsPerWorkload": 4},
    },
}


def _budget(name: str, amount: int, approval: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "amount": amount,
        "selector": {"matchLabels": {"costgov.io/budget": name}},
        "hints": {"instanceType": "p5.48xlarge"},
        "maxDuration": "72h",
        "requestedBy": "bob",
    }
    if approval:
        spec["approval"] = approval
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "TrainingJobBudget",
        "metadata": {
            "name": name,
            "namespace": "ml-research",
            "generation": 1,
            "creationTimestamp": CREATED,
        },
        "spec": spec,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(prometheus_url: str) -> AsyncIterator[Cluster]:
    async with running_operator(prometheus_url, clock=lambda: NOW) as c:
        for ns, team in (
            ("ml-research", "research"),
            ("ml-serving", "serving"),
            ("sandbox", "sandbox"),
            ("lab", "lab"),
        ):
            governed = {"costgov.io/governed": "true"} if ns.startswith("ml-") else {}
            await c.create(
                "v1/namespaces",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {"team": team, **governed}},
                },
            )
        for node, labels in NODES.items():
            await c.create(
                "v1/nodes",
                {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": labels}},
            )
        await c.create("costgov.io/v1alpha1/costpolicies", json.loads(json.dumps(POLICY)))
        await c.create("costgov.io/v1alpha1/costpolicies", json.loads(json.dumps(WARN_POLICY)))
        await c.create("costgov.io/v1alpha1/costpolicies", json.loads(json.dumps(AUDIT_POLICY)))
        await c.create("costgov.io/v1alpha1/trainingjobbudgets", _budget("llama-finetune", 200))
        await c.create(
            "costgov.io/v1alpha1/trainingjobbudgets",
            _budget(
                "approved-run",
                10000,
                {"approvedBy": "alice", "amount": 5000, "expires": "2099-01-01T00:00:00Z"},
            ),
        )
        await c.create(
            "costgov.io/v1alpha1/trainingjobbudgets",
            _budget(
                "expired-run",
                10000,
                {"approvedBy": "alice", "amount": 5000, "expires": "2020-01-01T00:00:00Z"},
            ),
        )
        await c.create("batch/v1/jobs", _job("train-1", finished=True))
        await c.create("batch/v1/jobs", _job("train-2", finished=False))
        await c.create(
            "v1/pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "llama-8b-chat-0",
                    "namespace": "ml-serving",
                    "labels": {"costgov.io/inference-deployment": "llama-8b-chat"},
                },
                "spec": {
                    "nodeName": "node-c",
                    "containers": [
                        {
                            "name": "server",
                            "image": "vllm",
                            "resources": {"limits": {"nvidia.com/gpu": 1}},
                        }
                    ],
                },
                "status": {"phase": "Running"},
            },
        )
        await c.create(
            "costgov.io/v1alpha1/inferencedeployments",
            {
                "apiVersion": "costgov.io/v1alpha1",
                "kind": "InferenceDeployment",
                "metadata": {
                    "name": "llama-8b-chat",
                    "namespace": "ml-serving",
                    "generation": 1,
                    "creationTimestamp": CREATED,
                },
                "spec": {
                    "image": "vllm/vllm-openai:v0.6.3",
                    "replicas": {"min": 1, "max": 2},
                    "gpu": {"model": "L4", "count": 1},
                    "capacityType": "spot",
                    "monthlyBudget": 300,
                    "hostedAPIPricePerMillionTokens": "0.60",
                    "replacesHostedModel": "openai/gpt-4o-mini",
                },
            },
        )
        yield c


def _status(c: Cluster, resource: str, ns: str | None, name: str) -> dict[str, Any]:
    return dict(c.get(resource, ns, name).get("status") or {})


async def test_training_budget_status_from_prometheus(cluster: Cluster) -> None:
    tjb = "costgov.io/v1alpha1/trainingjobbudgets"
    await cluster.wait_for(
        lambda: caught_up(_status(cluster, tjb, "ml-research", "llama-finetune"))
    )
    status = _status(cluster, tjb, "ml-research", "llama-finetune")
    # train-1: 120 samples x 8 GPUs / 60 = 16 GPU-h x 6.88 = 110.08
    # train-2: 111 samples x 8 GPUs / 60 = 14.8 GPU-h x 6.88 = 101.824
    # spent 110.08 + 101.824 = 211.904 -> 211.90; remaining 200 - 211.904 = -11.90
    assert status["spent"] == "211.90"
    assert status["remaining"] == "-11.90"
    assert status["burnRatePerHour"] == "55.04"  # train-2 holds all 8 GPUs of node-a now
    assert status["phase"] == "Exhausted"
    lines = {j["name"]: j for j in status["jobs"]}
    assert lines["train-1"]["cost"] == "110.08" and lines["train-1"]["hours"] == "2.00"
    assert lines["train-2"]["cost"] == "101.82" and lines["train-2"]["hours"] == "1.85"
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["MetricsAvailable"]["status"] == "True"
    assert conds["BudgetExceeded"]["status"] == "True"
    assert conds["Ready"]["observedGeneration"] == 1
    # train-2 holds 8 H100s 20 % busy using 20,000 MiB each: 20,000 x 1.048576 MB x 1.2 =
    # 25.17 GB and 20 % x 989 = 197.8 TFLOPS per GPU; an A100-40GB (312) would be 63 % busy:
    # p4d.24xlarge (8 x A100-40GB) at 21.96 / 8 = 2.745 $/GPU-h, the cheapest 8-GPU type
    # that holds it; (6.88 - 2.745) x 8 GPUs x 730 h = 24,148.40 a month
    # the evidence is read in the background: its recommendation follows within cycles
    await cluster.wait_for(
        lambda: _status(cluster, tjb, "ml-research", "llama-finetune").get("recommendations")
    )
    (rec,) = _status(cluster, tjb, "ml-research", "llama-finetune")["recommendations"]
    assert rec["workload"] == "Job/train-2"
    assert rec["kind"] == "smaller-gpu" and rec["monthlySaving"] == "24148.40"
    assert "p4d.24xlarge (A100-40GB, on-demand)" in rec["message"]
    assert {"metric": "DCGM_FI_DEV_FB_USED (peak)", "window": "24h",
            "value": "20000 MiB"} in rec["evidence"]  # fmt: skip


async def test_exhausted_budget_suspends_its_running_job_under_a_suspend_policy(
    cluster: Cluster,
) -> None:
    jobs = "batch/v1/jobs"
    await cluster.wait_for(
        lambda: cluster.get(jobs, "ml-research", "train-2")["spec"].get("suspend") is True
    )
    job = cluster.get(jobs, "ml-research", "train-2")
    assert job["metadata"]["annotations"]["costgov.io/suspended-by"] == "llama-finetune"
    assert cluster.get(jobs, "ml-research", "train-1")["spec"].get("suspend") is None  # finished
    tjb = "costgov.io/v1alpha1/trainingjobbudgets"
    # the Job is patched first, the status that records it follows from kopf's own task
    await cluster.wait_for(
        lambda: (
            _status(cluster, tjb, "ml-research", "llama-finetune")["suspendedJobs"] == ["train-2"]
        )
    )
    status = _status(cluster, tjb, "ml-research", "llama-finetune")
    assert [v["rule"] for v in status["violations"]] == ["trainingJobBudget.exhausted"]


async def test_events_once_per_threshold_crossing(cluster: Cluster) -> None:
    def events() -> list[dict[str, Any]]:
        return [
            dict(o.last.raw)
            for key, o in cluster.k8s.objects.items()
            if o.last is not None and key[0].plural == "events"
        ]

    def reasons() -> list[str]:
        return [e.get("reason", "") for e in events()]

    await cluster.wait_for(lambda: "SuspendedOverBudget" in reasons())
    import asyncio

    await asyncio.sleep(3)  # several more cycles
    crossings = [
        e["message"]
        for e in events()
        if e.get("reason") == "BudgetThresholdCrossed"
        and e.get("involvedObject", {}).get("name") == "llama-finetune"
    ]
    # 211.90 of 200 crosses 50, 80, 95 and 100 %: four events, each once per crossing (a
    # budget raised and lowered again, by another test, crosses them anew, and resumed once)
    crossed = reasons().count("Resumed") + 1
    assert sorted(crossings) == sorted(
        f"spent $211.90, {t}% of $200.00" for t in (50, 80, 95, 100) for _ in range(crossed)
    )
    # one suspension event per suspension
    assert reasons().count("SuspendedOverBudget") == crossed


async def test_cost_policy_spend_and_forecast(cluster: Cluster) -> None:
    cp = "costgov.io/v1alpha1/costpolicies"
    await cluster.wait_for(lambda: caught_up(_status(cluster, cp, None, "ml-platform")))
    status = _status(cluster, cp, None, "ml-platform")
    # governed: 211.904 (budget Jobs) + llama 231 samples / 60 x 0.40 = 1.54 -> 213.444
    assert status["spent"] == "213.44"
    # forecast: spent + current burn (55.04 + 0.40 = 55.44 $/h) x hours left in the month
    _, month_end = period_bounds(NOW, "monthly")
    hours_left = Decimal((month_end - NOW).total_seconds()) / 3600
    expected = Decimal("213.444") + Decimal("55.44") * hours_left
    assert status["forecast"] == str(expected.quantize(Decimal("0.01")))
    assert status["budgetUtilizationPercent"] == 1  # 213.44 / 20,000 = 1.07 %
    assert status["matchedNamespaces"] == ["ml-research", "ml-serving"]
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    assert conds == {
        "Ready": "True",
        "MetricsAvailable": "True",
        "BudgetWarning": "False",
        "BudgetExceeded": "False",
        "Priced": "True",
        "CaughtUp": "True",  # the month to date (13.5 days) counted a chunk at a time
        "PodsFollowed": "True",
    }


async def test_the_month_to_date_is_caught_up_on_with_progress_in_status(
    cluster: Cluster,
) -> None:
    """A fresh install mid-month (END is the 14th, noon): the policy's month to date is
    counted in the background, a chunk of history after another, while status says it is
    catching up and its figures are a lower bound, until CaughtUp is True."""
    cp = "costgov.io/v1alpha1/costpolicies"
    await cluster.wait_for(lambda: caught_up(_status(cluster, cp, None, "ml-platform")))
    written = [
        r.data["status"]
        for r in list(cluster.k8s._requests)
        if r.method == "PATCH"
        and str(r.url.path).endswith("/costpolicies/ml-platform/status")
        and isinstance(r.data, dict)
    ]
    cursors = [
        datetime.fromisoformat(w["accounting"]["cursor"]) for w in written if "accounting" in w
    ]
    # the cursor only moves forward, to NOW
    assert cursors == sorted(cursors) and cursors[-1] == NOW
    progress = [c for w in written for c in w.get("conditions") or [] if c["type"] == "CaughtUp"]
    # while catching up, each write says so and how far it got (nothing yet, or the point
    # reached; on a loaded machine the whole month may even be counted by the first write:
    # the deterministic progress is in test_catching_up.py, where the past answers slowly)
    statuses = [c["status"] for c in progress]
    assert statuses == sorted(statuses)  # False until caught up, then True, never back
    for c in (c for c in progress if c["status"] == "False"):
        assert c["reason"] == "CatchingUp"
        if "counted up to" in c["message"]:
            assert "lower bound" in c["message"]
        else:
            assert "nothing counted yet" in c["message"]
    assert progress[-1]["status"] == "True"


async def test_inference_deployment_owns_a_capped_deployment(cluster: Cluster) -> None:
    idep = "costgov.io/v1alpha1/inferencedeployments"
    # unit costs come with the first snapshot taken once the InferenceDeployment is known
    # (a snapshot taken before it asks no vLLM queries): wait for them, not for any status
    await cluster.wait_for(
        lambda: "costPerMillionTokens" in _status(cluster, idep, "ml-serving", "llama-8b-chat")
    )
    status = _status(cluster, idep, "ml-serving", "llama-8b-chat")
    assert status["hourlyCost"] == "0.40"  # one replica on g6.xlarge spot
    assert status["projectedMonthlyCost"] == "292.00"  # 0.40 x 730
    # the trailing hour: cost 0.40 x 1 h = 0.40; 60 x 1,500 = 90,000 tokens, 600 requests
    # 0.40 / 90,000 x 1e6 = 4.44 $ per 1M tokens; 0.40 / 600 x 1000 = 0.67 per 1k requests
    assert status["costPerMillionTokens"] == "4.44"
    assert status["costPerThousandRequests"] == "0.67"
    assert status["gpuUtilizationPercent"] == 40
    assert status["idleGPUCost"] == "175.20"  # 292.00 x 60 % idle
    # max 2 replicas x 292 = 584 > 300 budget: capped at floor(300 / 292) = 1
    assert status["replicas"] == 1 and status["cappedReplicas"] == 1
    assert "hosted-api" in [r["kind"] for r in status["recommendations"]]
    # build versus buy against gpt-4o-mini (genai-prices 0.2.3: 0.15 input, 0.60 output per
    # 1M) at the default 75 % input: 0.75 x 0.15 + 0.25 x 0.60 = 0.2625 per 1M tokens;
    # 90,000 tokens an hour x 730 = 65,700,000 a month: hosted 65.7 x 0.2625 = 17.24625;
    # self-hosted 0.40 x 730 = 292.00, so hosted is cheaper by 274.75375; self-hosting pays
    # above 292 / 0.2625 x 1M = 1,112,380,952 tokens a month
    assert status["buildVsBuy"] == {
        "hostedModel": "openai/gpt-4o-mini",
        "priceSource": "genai-prices 0.2.3 (OpenAI)",
        "pricedAs": "openai/gpt-4o-mini",
        "hostedPerMillionTokens": "0.2625",
        "selfHostedPerMillionTokens": "4.44",
        "monthlyTokens": 65700000,
        "hostedMonthlyCost": "17.25",
        "selfHostedMonthlyCost": "292.00",
        "cheaper": "hosted",
        "monthlyDifference": "274.75",
        "crossoverMonthlyTokens": 1112380952,
    }
    dep = cluster.get("apps/v1/deployments", "ml-serving", "llama-8b-chat")
    assert dep["spec"]["replicas"] == 1
    assert dep["metadata"]["ownerReferences"][0]["kind"] == "InferenceDeployment"
    pod = dep["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {}
    # spot on any provisioner (Karpenter, EKS node groups, GKE, AKS), each with the L4 product
    # label GPU feature discovery writes; AKS's and GKE's spot taints tolerated
    l4 = {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-L4"]}
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": key, "operator": "In", "values": [value]}, l4]}
        for key, value in (
            ("karpenter.sh/capacity-type", "spot"),
            ("eks.amazonaws.com/capacityType", "SPOT"),
            ("cloud.google.com/gke-spot", "true"),
            ("cloud.google.com/gke-preemptible", "true"),
            ("kubernetes.azure.com/scalesetpriority", "spot"),
        )
    ]
    assert {(t["key"], t["value"], t["effect"]) for t in pod["tolerations"]} == {
        ("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule"),
        ("cloud.google.com/gke-spot", "true", "NoSchedule"),
    }


def _review(
    kind: str,
    resource: str,
    group: str,
    obj: dict[str, Any],
    *,
    old: dict[str, Any] | None = None,
    user: str = "bob",
    groups: list[str] | None = None,
    dry_run: bool = False,
    operation: str | None = None,
) -> dict[str, Any]:
    version = "v1alpha1" if group == "costgov.io" else "v1"
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0df28fbd-5f5f-11e8-9f6c-080027b1b4a1",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "namespace": obj["metadata"].get("namespace"),
            "operation": operation or ("UPDATE" if old else "CREATE"),
            "userInfo": {"username": user, "groups": groups or ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": dry_run,
        },
    }


def _dump_tasks() -> str:
    import asyncio
    import io

    out = io.StringIO()
    for t in asyncio.all_tasks():
        if "timer" in repr(t).lower() or "reconcile" in repr(t).lower():
            t.print_stack(file=out)
    return out.getvalue()[-6000:]


async def _await_ledger(cluster: Cluster) -> None:
    # once train-2 is suspended, nothing more is committed against the budget
    key = ("ml-research", "llama-finetune")
    ledger = cluster.runtime.ledger
    await cluster.wait_for(
        lambda: (
            ledger.commitments.get(key) == {}
            and ledger.budget_spent.get(key) == Decimal("211.904")  # 110.08 + 101.824, exact
            and cluster.get("batch/v1/jobs", "ml-research", "train-2")["spec"].get("suspend")
            is True
        ),
        timeout=40,
        describe=_dump_tasks,
    )


async def test_admission_denies_a_job_over_its_exhausted_budget(cluster: Cluster) -> None:
    await _await_ledger(cluster)
    job = _job("train-3", finished=False, deadline=3600)
    status, body = await cluster.review("jobs", _review("Job", "jobs", "batch", job))
    assert status == 200
    response = body["response"]
    assert response["allowed"] is False, response
    assert response["uid"] == "0df28fbd-5f5f-11e8-9f6c-080027b1b4a1"
    message = response["status"]["message"]
    # 1 h x 55.04 = 55.04 against 200 - 211.90 spent (train-2 suspended: nothing
    # committed) = -11.90 left
    assert "trainingJobBudget.exceeded" in message
    assert "$55.04" in message and "-$11.90 left of $200.00" in message


async def test_admission_warns_in_warn_mode(cluster: Cluster) -> None:
    job = _job("big", finished=False, labels={}, ns="sandbox")
    status, body = await cluster.review("jobs", _review("Job", "jobs", "batch", job))
    assert status == 200 and body["response"]["allowed"] is True
    (warning,) = body["response"]["warnings"]
    assert "limits.maxGPUsPerWorkload" in warning and "holds 8 GPUs" in warning


async def test_admission_passes_an_approved_job_and_refuses_an_expired_approval(
    cluster: Cluster,
) -> None:
    # 72 h x 55.04 = 3,962.88 > 1,000: needs an approval; alice approved 5,000 until 2099
    ok = _job("approved-1", finished=False, labels={"costgov.io/budget": "approved-run"})
    _, body = await cluster.review("jobs", _review("Job", "jobs", "batch", ok))
    assert body["response"]["allowed"] is True, body
    late = _job("expired-1", finished=False, labels={"costgov.io/budget": "expired-run"})
    _, body = await cluster.review("jobs", _review("Job", "jobs", "batch", late))
    assert body["response"]["allowed"] is False
    assert "approval.required" in body["response"]["status"]["message"]
    assert "expired at 2020-01-01" in body["response"]["status"]["message"]


@pytest.mark.parametrize(
    ("user", "groups", "approver", "group", "allowed", "why"),
    [
        ("eve", ["devs"], "eve", None, False, "eve may not approve $5,000.00"),
        ("eve", ["devs"], "alice", None, False, "approvers sign under their own name"),
        ("bob", ["ml-leads"], "bob", "ml-leads", False, "bob requested this and cannot approve"),
        ("dave", ["ml-leads"], "dave", None, False, "sign with group: ml-leads"),
        ("dave", ["ml-leads"], "dave", "ml-leads", True, ""),
        ("eve", ["devs"], "eve", "ml-leads", False, "not a member of it"),
        ("alice", [], "alice", None, True, ""),
    ],
)
async def test_approvals_are_authenticated(
    cluster: Cluster,
    user: str,
    groups: list[str],
    approver: str,
    group: str | None,
    allowed: bool,
    why: str,
) -> None:
    old = _budget("new-run", 10000)
    signature = {"approvedBy": approver, "amount": 5000, "expires": "2099-01-01T00:00:00Z"}
    new = _budget("new-run", 10000, {**signature, **({"group": group} if group else {})})
    _, body = await cluster.review(
        "trainingjobbudgets",
        _review(
            "TrainingJobBudget",
            "trainingjobbudgets",
            "costgov.io",
            new,
            old=old,
            user=user,
            groups=groups,
        ),
    )
    assert body["response"]["allowed"] is allowed, body
    if why:
        assert why in body["response"]["status"]["message"]


async def test_audit_mode_records_and_dry_run_does_not(cluster: Cluster) -> None:
    job = _job("lab-big", finished=False, labels={}, ns="lab")
    _, body = await cluster.review("jobs", _review("Job", "jobs", "batch", job, dry_run=True))
    assert body["response"]["allowed"] is True
    assert not [a for a in cluster.runtime.ledger.audit if a[0] == "lab-audit"]
    _, body = await cluster.review("jobs", _review("Job", "jobs", "batch", job))
    assert body["response"]["allowed"] is True
    assert [
        (p, v.name, v.rule) for p, v, _ in cluster.runtime.ledger.audit if p == "lab-audit"
    ] == [("lab-audit", "lab-big", "limits.maxGPUsPerWorkload")]
    await cluster.wait_for(
        lambda: (
            [
                v["rule"]
                for v in _status(
                    cluster, "costgov.io/v1alpha1/costpolicies", None, "lab-audit"
                ).get("violations", [])
            ]
            == ["limits.maxGPUsPerWorkload"]
        )
    )


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", 400),
        (b"[1, 2, 3]", 400),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}), 400),
        (json.dumps({"request": {"uid": 7}}), 400),  # no usable uid: a bare 400
        (b"[" * 100_000 + b"]" * 100_000, 400),  # deeper than any parser's recursion
        (b'{"request": {"uid": "' + b"1" * 5000 + b'"}}', 400),
        (b"x" * (9 * 1024 * 1024), 413),  # over 8 MiB: more than any review can be
    ],
)
async def test_malformed_bodies_get_clean_errors(
    cluster: Cluster, payload: bytes | str, code: int
) -> None:
    status, body = await cluster.review("jobs", payload)
    assert status == code, body
    assert "Traceback" not in str(body)


def _mangled(**changes: Any) -> dict[str, Any]:
    review = _review("Job", "jobs", "batch", _job("x", finished=False))
    review["request"].update(changes)
    return review


@pytest.mark.parametrize(
    ("review", "field"),
    [
        (_mangled(userInfo={}), "request.userInfo.username"),
        (_mangled(resource=[]), "request.resource"),
        (_mangled(operation="DELETE"), "request.operation"),
        (_mangled(operation="CONNECT"), "request.operation"),
        (_mangled(object=None), "request.object"),
        (_mangled(operation="UPDATE", oldObject=None), "request.oldObject"),
        (_mangled(subResource="status"), "request.subResource"),
        (
            _mangled(resource={"group": "", "version": "v1", "resource": "pods"}),
            "/jobs judges jobs.batch",
        ),
        (_mangled(dryRun="yes"), "request.dryRun"),
    ],
)
async def test_malformed_reviews_are_denied_naming_the_field(
    cluster: Cluster, review: dict[str, Any], field: str
) -> None:
    status, body = await cluster.review("jobs", review)
    assert status == 200, body
    response = body["response"]
    assert response["uid"] == "0df28fbd-5f5f-11e8-9f6c-080027b1b4a1"
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert field in response["status"]["message"]


async def test_an_unknown_path_is_not_an_allowance(cluster: Cluster) -> None:
    review = _review("Job", "jobs", "batch", _job("x", finished=False))
    status, _ = await cluster.review("jobz", review)
    assert status == 404


async def test_a_foreign_charset_is_not_a_500(cluster: Cluster) -> None:
    review = json.dumps(_review("Job", "jobs", "batch", _job("x", finished=False, ns="sandbox")))
    async with cluster.session.post(
        f"{cluster.webhook}/jobs",
        data=review.encode(),
        headers={"Content-Type": "application/json; charset=foo"},
    ) as response:
        assert response.status == 200
        assert (await response.json())["response"]["allowed"] is True


async def test_a_review_of_several_megabytes_is_judged(cluster: Cluster) -> None:
    # a 16-GPU Job (over sandbox-warn's 4) with 2.5 MiB of annotations: the apiserver
    # accepts objects up to 3 MiB, and costgov judges them
    job = _job("big-notes", finished=False, labels={}, ns="sandbox", gpus=16)
    job["metadata"]["annotations"] = {f"note-{i}": "x" * 1000 for i in range(2500)}
    status, body = await cluster.review("jobs", _review("Job", "jobs", "batch", job))
    assert status == 200, str(body)[:300]
    warnings = body["response"]["warnings"]
    assert any("limits.maxGPUsPerWorkload" in w and "holds 16 GPUs" in w for w in warnings), (
        warnings
    )


async def test_wrong_kind_is_refused_cleanly(cluster: Cluster) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ml"}}
    review = _review("ConfigMap", "configmaps", "", cm)
    review["request"]["resource"]["version"] = "v1"
    status, body = await cluster.review("jobs", review)
    assert status == 200 and body["response"]["allowed"] is False
    assert "/jobs judges jobs.batch, not configmaps.core" in body["response"]["status"]["message"]


async def test_operator_metrics(cluster: Cluster) -> None:
    from prometheus_client import generate_latest

    await _await_ledger(cluster)  # one denial (the budget is used up) and one warning
    job = _job("metrics-denied", finished=False, deadline=3600)
    await cluster.review("jobs", _review("Job", "jobs", "batch", job))
    job = _job("metrics-warned", finished=False, labels={}, ns="sandbox")
    await cluster.review("jobs", _review("Job", "jobs", "batch", job))
    text = generate_latest(cluster.runtime.metrics.registry).decode()
    assert 'costgov_admission_decisions_total{kind="Job",result="denied"}' in text
    assert 'costgov_admission_decisions_total{kind="Job",result="warned"}' in text
    assert 'costgov_admission_duration_seconds_bucket{kind="Job",le="0.005"}' in text
    # the llama pod's current cost, labelled with its namespace's team: 0.40 $/h
    assert (
        'costgov_hourly_cost_dollars{namespace="ml-serving",team="serving",'
        'workload="llama-8b-chat-0"} 0.4'
    ) in text
    assert (
        'costgov_budget_utilization_ratio{kind="TrainingJobBudget",name="llama-finetune",'
        'namespace="ml-research"} 1.0595' in text
    )  # 211.90 / 200
    # ml-platform's forecast (see test_cost_policy_spend_and_forecast) over its 20,000 budget,
    # once its month to date is caught up on (before that, the figures are a lower bound)
    cp = "costgov.io/v1alpha1/costpolicies"
    await cluster.wait_for(lambda: caught_up(_status(cluster, cp, None, "ml-platform")))
    _, month_end = period_bounds(NOW, "monthly")
    hours_left = Decimal((month_end - NOW).total_seconds()) / 3600
    forecast = (Decimal("213.444") + Decimal("55.44") * hours_left).quantize(Decimal("0.01"))
    labels = {"kind": "CostPolicy", "namespace": "", "name": "ml-platform"}
    registry = cluster.runtime.metrics.registry
    ratio = registry.get_sample_value("costgov_budget_forecast_ratio", labels)
    assert ratio == float(forecast / 20000)


async def test_webhook_error_answers_are_counted(cluster: Cluster) -> None:
    registry = cluster.runtime.metrics.registry

    def errors(webhook: str, reason: str) -> float:
        found = registry.get_sample_value(
            "costgov_webhook_errors_total", {"webhook": webhook, "reason": reason}
        )
        return found or 0.0

    before = errors("", "not_found"), errors("jobs", "invalid")
    job = _job("metrics-lost", finished=False, deadline=3600)
    status, _ = await cluster.review("no-such-webhook", _review("Job", "jobs", "batch", job))
    assert status == 404
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ml"}}
    wrong = _review("ConfigMap", "configmaps", "", cm)
    wrong["request"]["resource"]["version"] = "v1"
    status, body = await cluster.review("jobs", wrong)
    assert status == 200 and body["response"]["status"]["code"] == 400
    assert (errors("", "not_found"), errors("jobs", "invalid")) == (before[0] + 1, before[1] + 1)


async def test_raising_the_budget_resumes_the_job_costgov_suspended(cluster: Cluster) -> None:
    path = "/apis/costgov.io/v1alpha1/namespaces/ml-research/trainingjobbudgets/llama-finetune"
    jobs, tjb = "batch/v1/jobs", "costgov.io/v1alpha1/trainingjobbudgets"

    async def set_amount(amount: int) -> None:
        async with cluster.session.patch(
            cluster.api + path,
            json={"spec": {"amount": amount}},
            headers={"Content-Type": "application/merge-patch+json"},
        ) as response:
            assert response.status == 200, await response.text()

    await _await_ledger(cluster)  # exhausted, train-2 suspended
    try:
        await set_amount(1000)
        # kopf patches the Job with a resourceVersion test; under load the emulator's status
        # writes race it and kopf retries with backoff (seconds): give it time, as a real
        # cluster would (the simulated-cluster tier proves resumption on the real apiserver)
        await cluster.wait_for(
            lambda: cluster.get(jobs, "ml-research", "train-2")["spec"].get("suspend") is False,
            timeout=90,
        )
        job = cluster.get(jobs, "ml-research", "train-2")
        assert "costgov.io/suspended-by" not in (job["metadata"].get("annotations") or {})
        await cluster.wait_for(
            lambda: _status(cluster, tjb, "ml-research", "llama-finetune")["phase"] != "Exhausted"
        )
        status = _status(cluster, tjb, "ml-research", "llama-finetune")
        assert status["remaining"] == "788.10"  # 1,000 - 211.90
        assert status["suspendedJobs"] == []
    finally:  # the world as the other tests expect it: exhausted, train-2 suspended again
        await set_amount(200)
        await cluster.wait_for(
            lambda: (
                _status(cluster, tjb, "ml-research", "llama-finetune")["phase"] == "Exhausted"
                and cluster.get(jobs, "ml-research", "train-2")["spec"].get("suspend") is True
            ),
            timeout=90,  # the same resourceVersion race and kopf backoff as the resume above
        )
        await _await_ledger(cluster)


async def test_a_deleted_policy_takes_its_series_with_it(cluster: Cluster) -> None:
    # found by review: series were pruned only in a cycle, so a deleted policy (the last
    # costgov object, say) kept its exported figures, and their alerts fired forever
    cp = "costgov.io/v1alpha1/costpolicies"
    doomed = json.loads(json.dumps(POLICY))
    doomed["metadata"] = {"name": "short-lived", "generation": 1, "creationTimestamp": CREATED}
    doomed["spec"] = {"mode": "audit", "scope": POLICY["spec"]["scope"],
                      "budget": {"amount": 1000, "period": "monthly"}}  # fmt: skip
    await cluster.create(cp, doomed)
    labels = {"kind": "CostPolicy", "namespace": "", "name": "short-lived"}
    value = cluster.runtime.metrics.registry.get_sample_value
    await cluster.wait_for(lambda: value("costgov_budget_utilization_ratio", labels) is not None)
    path = "/apis/costgov.io/v1alpha1/costpolicies/short-lived"
    async with cluster.session.delete(cluster.api + path) as response:
        assert response.status < 300, await response.text()
    await cluster.wait_for(lambda: value("costgov_budget_utilization_ratio", labels) is None)
    assert value("costgov_violations", labels) is None
    # ml-platform is still there: its series stay
    other = {"kind": "CostPolicy", "namespace": "", "name": "ml-platform"}
    await cluster.wait_for(lambda: value("costgov_budget_utilization_ratio", other) is not None)
