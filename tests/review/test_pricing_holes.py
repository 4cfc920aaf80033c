"""Review (attack) findings: work priced below what it may cost, so limits, approval tiers
and budgets let it through. Each test states the crafted input, what happens, what should."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from costgov.domain.placement import NodeInfo

from . import kit

AFFINITY = "affinity"


def _affinity(key: str, *values: str) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]}
                ]
            }
        }
    }


def test_affinity_allowing_a_cheap_and_a_dear_instance_is_priced_at_the_cheap_one() -> None:
    """Crafted: a Job of 8 GPUs for 72 h whose required node affinity allows
    instance-type In [g6.48xlarge, p5.48xlarge] (the scheduler may well pick the p5).
    Policy: allowedGPUModels [L4], maxHourlyCost $20, approval above $1,000.

    What happens: priced as the *first* value, g6.48xlarge (8 x L4, $13.35/h, $961.23):
    allowed, no approval asked, the L4-only rule passes, though the pods may land on a
    p5.48xlarge (8 x H100, $55.04/h, 72 h = $3,962.88).
    Should: price at the dearest value the affinity allows (never guess low, as
    domain/placement.py does for nodes), and so deny here (H100 not allowed, $55.04/h > $20,
    $3,962.88 > $1,000 without approval).
    At fault: domain/podspecs.py `_hints` (takes `req.values[0]`)."""
    pol = kit.policy(
        approvals=[{"above": 1000, "approvers": {"users": ["alice"]}}],
        limits={"allowedGPUModels": ["L4"], "maxHourlyCost": 20},
    )
    obj = kit.job(
        "aff",
        deadline=259200,
        nodeSelector={},
        affinity=_affinity("node.kubernetes.io/instance-type", "g6.48xlarge", "p5.48xlarge"),
    )
    decision = kit.decide(kit.review_of("Job", obj), kit.situation(pol))
    assert not decision.allowed, "8 GPUs that may land on a p5.48xlarge were admitted as L4s"


def test_affinity_allowing_spot_or_on_demand_is_priced_on_demand() -> None:
    """Crafted: karpenter.sh/capacity-type In [spot, on-demand] (Karpenter falls back to
    on-demand when spot is short). Priced as spot (the first value): 72 h x $21.70 =
    $1,562.40 instead of 72 h x $55.04 = $3,962.88; the $2,000 tier is never asked.
    Should: priced on demand, the dearer capacity it may get."""
    pol = kit.policy(approvals=[{"above": 2000, "approvers": {"users": ["alice"]}}])
    obj = kit.job(
        "cap",
        deadline=259200,
        affinity=_affinity("karpenter.sh/capacity-type", "spot", "on-demand"),
    )
    decision = kit.decide(kit.review_of("Job", obj), kit.situation(pol))
    assert not decision.allowed, "a run that may go on demand ($3,962.88) was priced as spot"


def test_sidecar_init_container_gpus_add_to_the_main_containers() -> None:
    """Crafted: a Job whose pod has a native sidecar (initContainers[].restartPolicy: Always,
    GA since Kubernetes 1.33) holding 8 GPUs next to a main container holding 8.
    The pod holds 16 GPUs for its whole life (sidecars run alongside the containers; the
    scheduler sums them). Policy: maxGPUsPerWorkload 8.

    What happens: counted as 8 GPUs (init containers are taken as max, not sum), allowed,
    priced at half.  Should: 16 GPUs, denied by limits.maxGPUsPerWorkload.
    At fault: domain/podspecs.py `_pod_gpus`."""
    pol = kit.policy(limits={"maxGPUsPerWorkload": 8})
    sidecar = kit.container(8, "side", restartPolicy="Always")
    obj = kit.job("sidecar", initContainers=[sidecar])
    decision = kit.decide(kit.review_of("Job", obj), kit.situation(pol))
    assert not decision.allowed, "16 GPUs (8 in a sidecar) admitted under an 8-GPU limit"


def test_budget_hint_does_not_underprice_a_job_that_may_land_on_dearer_nodes() -> None:
    """Crafted: a TrainingJobBudget (written by the requester, no approval needed) with hint
    gpuModel L4, and a covered Job of 8 GPUs with no nodeSelector at all. The cluster's only
    GPU nodes are p5.48xlarge (8 x H100). The hint does not constrain scheduling: the pods
    land on the H100s.

    What happens: priced as L4 (g6.48xlarge, $13.35/h x 72 h = $961.23): no approval asked,
    allowedGPUModels [L4] satisfied.  Should: priced at the dearest node it may land on
    (p5.48xlarge, $3,962.88), as hint-less pods are, or the hint enforced.
    At fault: domain/costing.py `_place` (budget hints beat the cluster's nodes)."""
    pol = kit.policy(
        approvals=[{"above": 1000, "approvers": {"users": ["alice"]}}],
        limits={"allowedGPUModels": ["L4"]},
    )
    budget = {
        "apiVersion": "costgov.io/v1alpha1", "kind": "TrainingJobBudget",
        "metadata": {"name": "b", "namespace": "ml"},
        "spec": {"amount": 100000, "requestedBy": "bob", "hints": {"gpuModel": "L4"},
                 "selector": {"matchLabels": {"costgov.io/budget": "b"}}},
    }  # fmt: skip
    nodes = (
        NodeInfo(
            "h100-a",
            {"node.kubernetes.io/instance-type": "p5.48xlarge",
             "topology.kubernetes.io/region": "us-east-1"},
            8,
        ),
    )  # fmt: skip
    obj = kit.job("hinted", deadline=259200, nodeSelector={}, labels={"costgov.io/budget": "b"})
    decision = kit.decide(kit.review_of("Job", obj), kit.situation(pol, budget, nodes=nodes))
    assert not decision.allowed, "a Job that can only run on H100s was priced and admitted as L4"


@pytest.mark.parametrize(
    ("what", "pod"),
    [
        (
            "DRA resource claim",
            {"resourceClaims": [{"name": "gpus", "resourceClaimTemplateName": "eight-h100"}],
             "containers": [{"name": "main", "image": "x",
                             "resources": {"claims": [{"name": "gpus"}]}}]},
        ),
        (
            "time-sliced nvidia.com/gpu.shared",
            {"containers": [kit.container(64) | {"resources": {"limits": {"nvidia.com/gpu.shared": 64}}}]},
        ),
    ],
)  # fmt: skip
def test_gpu_work_by_other_means_is_not_silently_allowed(what: str, pod: dict[str, Any]) -> None:
    """Crafted: a Pod that gets its GPUs through a DRA ResourceClaim (resource.k8s.io, GA in
    1.34, the NVIDIA DRA driver's way), or through NVIDIA time-slicing with renameByDefault
    (`nvidia.com/gpu.shared`). Policy: enforce, unpriced: deny (the default).

    What happens: read as "no GPUs": allowed with no verdict at all (CLI: skipped as
    "Pod (no GPUs)").  Should: at least unpriced (fail closed in enforce mode), or a
    warning that costgov cannot see the devices.
    At fault: domain/podspecs.py `_container_gpus` / `_pod_gpus`."""
    pol = kit.policy(limits={"maxGPUsPerWorkload": 8})
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ml"},
           "spec": {"activeDeadlineSeconds": 3600,
                    "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"}, **pod}}  # fmt: skip
    decision = kit.decide(kit.review_of("Pod", obj), kit.situation(pol))
    assert not decision.allowed or decision.warnings, f"{what}: GPU pod admitted unjudged"


def test_cli_affinity_hole_passes_the_ci_gate_too(tmp_path: Path, capsys: Any) -> None:
    """The affinity hole through `costgov estimate`: exit 0, the PR passes CI."""
    pol = kit.policy(
        approvals=[{"above": 1000, "approvers": {"users": ["alice"]}}],
        limits={"allowedGPUModels": ["L4"], "maxGPUsPerWorkload": 8, "maxHourlyCost": 20},
    )
    aff = kit.job("aff", deadline=259200, nodeSelector={},
                  affinity=_affinity("node.kubernetes.io/instance-type", "g6.48xlarge", "p5.48xlarge"))  # fmt: skip
    path = kit.write(tmp_path, "w.yaml", kit.NAMESPACE, pol, aff)
    code, out, _ = kit.estimate(capsys, "-f", str(path))
    assert code == 1, out
