"""The per-workload rules of a CostPolicy that need no budget or approval: unpriced work,
limits (GPU models, instance types, GPUs, $/h, a runtime bound) and spot capacity.

Each returns the violations it finds, with the figures behind them.
"""

from __future__ import annotations

from costgov.api.costpolicy import CostPolicySpec
from costgov.api.gpus import normalize_gpu_model
from costgov.domain.capacity import CapacityType
from costgov.domain.costing import Estimate, SpotOption
from costgov.domain.money import usd
from costgov.domain.pricing import DRA_CLAIMS
from costgov.domain.verdicts import Severity, Violation
from costgov.domain.workloads import (
    KUBEFLOW_REPLICA_SPECS,
    TRAINING_KINDS,
    Workload,
    gpu_figure,
)

__all__ = ["limit_rules", "spot_rules", "unpriced_rule"]

_UNPRICED_SEVERITY: dict[str, Severity | None] = {"deny": "error", "warn": "warning", "allow": None}


def _how_to_price(est: Estimate) -> str:
    reason = est.unpriced or ""
    if "not in the price catalog" in reason or "no spot price" in reason:
        return "add the instance type to a pricing file (--pricing, or the chart's pricing.catalog)"
    if DRA_CLAIMS in reason:
        return (
            "request GPUs as extended resources (resources.limits nvidia.com/gpu) instead of a "
            "ResourceClaim, or set the policy's unpriced to warn"
        )
    if "unknown GPU product" in reason:
        return "use a GPU product costgov knows in nvidia.com/gpu.product, or an instance type"
    return (
        "add a nodeSelector (node.kubernetes.io/instance-type or nvidia.com/gpu.product), "
        "a TrainingJobBudget hint (spec.hints.instanceType), or set the policy's "
        "assumeInstanceType"
    )


def unpriced_rule(spec: CostPolicySpec, est: Estimate) -> list[Violation]:
    """GPU work that cannot be priced: an error by default (fail closed), as `unpriced` says."""
    severity = _UNPRICED_SEVERITY[spec.unpriced]
    if est.unpriced is None or not est.workload.uses_gpus or severity is None:
        return []
    return [
        Violation(
            "pricing.unpriced",
            severity,
            f"{est.workload.ref} cannot be priced: {est.unpriced}. Budget and approval rules "
            f"cannot be applied without a price; to price it, {_how_to_price(est)}",
            {"unpriced": spec.unpriced},
        )
    ]


def _models(est: Estimate) -> list[str | None]:
    """The GPU model of every GPU pod group (None where it cannot be told)."""
    if not est.parts:
        return [est.gpu_model]
    return [
        p.offering.gpu_model if p.offering and p.offering.gpu_model else p.group.hints.gpu_model
        for p in est.parts
    ]


def _gpu_models(spec: CostPolicySpec, est: Estimate) -> list[Violation]:
    limits, wl = spec.limits, est.workload
    if not limits.allowed_gpu_models or not wl.uses_gpus:
        return []
    allowed = sorted({normalize_gpu_model(m) or m for m in limits.allowed_gpu_models})
    models = _models(est)
    if None in models:
        return [
            Violation(
                "limits.allowedGPUModels",
                "warning",
                f"cannot tell which GPU model {wl.ref} will get; allowed: {', '.join(allowed)}. "
                "Pin one with a nvidia.com/gpu.product or instance-type nodeSelector",
            )
        ]
    banned = sorted({m for m in models if m is not None and m not in allowed})
    if not banned:
        return []
    return [
        Violation(
            "limits.allowedGPUModels",
            "error",
            f"{wl.ref} uses {', '.join(banned)} GPUs; this policy allows {', '.join(allowed)}. "
            "Select an allowed GPU model in the nodeSelector",
            {"gpuModel": ",".join(banned), "allowed": ",".join(allowed)},
        )
    ]


def _instance_types(spec: CostPolicySpec, est: Estimate) -> list[Violation]:
    allowed, wl = spec.limits.allowed_instance_types, est.workload
    if not allowed:
        return []
    found = [
        p.offering.instance_type if p.offering else p.group.hints.instance_type for p in est.parts
    ]
    if not est.parts:
        found = [est.offering.instance_type if est.offering else wl.hints.instance_type]
    banned = sorted({i for i in found if i and i not in allowed})
    if not banned:
        return []
    return [
        Violation(
            "limits.allowedInstanceTypes",
            "error",
            f"{wl.ref} runs on {', '.join(banned)}; allowed: {', '.join(allowed)}",
            {"instanceType": ",".join(banned)},
        )
    ]


def _held(wl: Workload) -> str:
    """How a workload's GPUs are held, for messages: "4 pod(s) x 8" or per group."""
    return " + ".join(
        f"{g.name} {g.pods} x {gpu_figure(g.gpu_equivalents)}" if wl.groups else
        f"{g.pods} pod(s) x {gpu_figure(g.gpu_equivalents)}"
        for g in wl.parts
    )  # fmt: skip


def _gpus_and_rate(spec: CostPolicySpec, est: Estimate) -> list[Violation]:
    limits, wl, out = spec.limits, est.workload, []
    if limits.max_gpus_per_workload is not None and wl.total_gpus > limits.max_gpus_per_workload:
        out.append(
            Violation(
                "limits.maxGPUsPerWorkload",
                "error",
                f"{wl.ref} holds {gpu_figure(wl.total_gpus)} GPUs ({_held(wl)}); the "
                f"limit is {limits.max_gpus_per_workload}. Lower parallelism/replicas or GPUs per pod",
                {
                    "gpus": str(gpu_figure(wl.total_gpus)),
                    "limit": str(limits.max_gpus_per_workload),
                },
            )
        )
    cap = limits.max_hourly_cost
    if cap is not None and est.hourly is not None and est.hourly > cap:
        out.append(
            Violation(
                "limits.maxHourlyCost",
                "error",
                f"{wl.ref} costs {usd(est.hourly)}/h; the limit is {usd(cap)}/h. "
                "Use fewer or cheaper GPUs, or spot capacity",
                {"hourly": usd(est.hourly), "limit": usd(cap)},
            )
        )
    return out


_DEADLINE_FIELD = {
    "CronJob": "spec.jobTemplate.spec.activeDeadlineSeconds",
    "JobSet": "spec.replicatedJobs[].template.spec.activeDeadlineSeconds",
    **dict.fromkeys(KUBEFLOW_REPLICA_SPECS, "spec.runPolicy.activeDeadlineSeconds"),
}


def _runtime_bound(spec: CostPolicySpec, est: Estimate) -> list[Violation]:
    wl = est.workload
    if not spec.limits.require_max_runtime or wl.kind not in TRAINING_KINDS or not wl.uses_gpus:
        return []
    if wl.max_runtime_seconds is not None:
        return []
    return [
        Violation(
            "limits.requireMaxRuntime",
            "error",
            f"{wl.ref} declares no {_DEADLINE_FIELD.get(wl.kind, 'spec.activeDeadlineSeconds')}; "
            "GPU training must bound its runtime. Set it (e.g. 259200 for 72 h)",
        )
    ]


def limit_rules(spec: CostPolicySpec, est: Estimate) -> list[Violation]:
    """Every limit the workload breaks."""
    return [
        *_gpu_models(spec, est),
        *_instance_types(spec, est),
        *_gpus_and_rate(spec, est),
        *_runtime_bound(spec, est),
    ]


def spot_rules(spec: CostPolicySpec, est: Estimate) -> tuple[list[Violation], SpotOption | None]:
    """spot.requireForCheckpointing, and the spot alternative worth recommending (if any)."""
    out: list[Violation] = []
    wl = est.workload
    checkpoints = wl.checkpointing or (
        est.spot is not None and "checkpoint" in est.spot.eligible_because
    )
    if (
        spec.spot.require_for_checkpointing
        and checkpoints
        and est.capacity is not None
        and est.capacity != CapacityType.SPOT
    ):
        out.append(
            Violation(
                "spot.requireForCheckpointing",
                "error",
                f"{wl.ref} checkpoints, and this policy requires spot capacity for such work. "
                "Add nodeSelector karpenter.sh/capacity-type: spot (or your provider's label)",
            )
        )
    spot = est.spot
    if spot is not None and spot.saving_percent < spec.spot.recommend_min_savings_percent:
        spot = None
    return out, spot
