"""CostPolicy evaluation: scope, limits, approvals, budgets, spot rules and the three modes.

One function, `evaluate`, answers for the CLI, the reconcile loop and the admission webhook.
Each broken rule is a `Violation` carrying the numbers behind it; the policy's mode turns the
violations into an action:

    enforce: any error -> deny;   only warnings -> warn;   none -> allow
    warn:    any violation -> warn (admitted with admission warnings)
    audit:   any violation -> audit (admitted, recorded as a violation)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from costgov.api.costpolicy import CostPolicySpec
from costgov.api.trainingjobbudget import Approval
from costgov.domain.approvals import approval_covers, required_tier
from costgov.domain.capacity import CapacityType
from costgov.domain.costing import Estimate, SpotOption, affordable_replicas
from costgov.domain.gpus import normalize_gpu_model
from costgov.domain.money import HOURS_PER_MONTH, usd
from costgov.domain.selectors import matches

__all__ = [
    "ALWAYS_EXCLUDED_NAMESPACES",
    "Action",
    "BudgetView",
    "Severity",
    "Subject",
    "Verdict",
    "Violation",
    "evaluate",
    "in_scope",
    "worst_action",
]

Severity = Literal["error", "warning"]
Action = Literal["allow", "warn", "audit", "deny"]
_ACTION_ORDER: dict[Action, int] = {"allow": 0, "audit": 1, "warn": 2, "deny": 3}
ALWAYS_EXCLUDED_NAMESPACES = frozenset({"kube-system"})


@dataclass(frozen=True)
class Violation:
    """A broken rule with the figures behind it."""

    rule: str
    severity: Severity
    message: str
    figures: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BudgetView:
    """What is known of a budget: its amount, spend so far, and estimates already committed."""

    name: str
    amount: Decimal
    spent: Decimal | None
    """None when spend is unknown (offline): the whole budget is judged, and a note says so."""
    committed: Decimal = Decimal(0)
    """Estimates of other work already counted against it (e.g. other covered Jobs)."""

    @property
    def remaining(self) -> Decimal:
        return self.amount - (self.spent or Decimal(0)) - self.committed


@dataclass(frozen=True)
class Subject:
    """A priced workload and what surrounds it."""

    estimate: Estimate
    approval: Approval | None = None
    training_budget: BudgetView | None = None
    monthly_budget: Decimal | None = None
    """An InferenceDeployment's own monthly budget; the estimate is at its max replicas."""
    min_replicas: int = 0

    @property
    def judged_amount(self) -> Decimal | None:
        """The cost approvals and budgets judge: the estimate, or for an InferenceDeployment
        with a monthly budget, the month at the replicas that budget affords (the operator
        caps replicas there)."""
        amount, affordable = self.estimate.amount, self.affordable_replicas
        if amount is None or affordable is None:
            return amount
        return min(amount, amount * affordable / self.estimate.workload.pods)

    @property
    def affordable_replicas(self) -> int | None:
        """Replicas the monthly budget pays for (never below min), when there is one."""
        est = self.estimate
        if self.monthly_budget is None or est.hourly is None or est.workload.pods == 0:
            return None
        return affordable_replicas(
            self.monthly_budget,
            est.hourly / est.workload.pods,
            self.min_replicas,
            est.workload.pods,
        )


@dataclass(frozen=True)
class Verdict:
    """One policy's judgement of one workload."""

    policy: str
    mode: str
    action: Action
    violations: tuple[Violation, ...]
    spot: SpotOption | None = None
    """A spot alternative, when it saves at least the policy's threshold."""

    @property
    def denied(self) -> bool:
        return self.action == "deny"


def worst_action(verdicts: list[Verdict]) -> Action:
    """The most severe action among verdicts (deny > warn > audit > allow)."""
    return max((v.action for v in verdicts), key=_ACTION_ORDER.__getitem__, default="allow")


def in_scope(
    spec: CostPolicySpec,
    *,
    namespace: str,
    namespace_labels: Mapping[str, str],
    workload_labels: Mapping[str, str],
    excluded_namespaces: frozenset[str] = ALWAYS_EXCLUDED_NAMESPACES,
) -> bool:
    """Whether a workload in `namespace` with `workload_labels` is governed by the policy."""
    if namespace in excluded_namespaces:
        return False
    return matches(spec.scope.namespace_selector, namespace_labels) and matches(
        spec.scope.workload_selector, workload_labels
    )


def _limits(spec: CostPolicySpec, est: Estimate) -> list[Violation]:
    limits, wl, out = spec.limits, est.workload, []
    if limits.allowed_gpu_models and wl.gpus_per_pod > 0:
        allowed = {normalize_gpu_model(m) or m for m in limits.allowed_gpu_models}
        model = est.gpu_model
        if model is None:
            out.append(
                Violation(
                    "limits.allowedGPUModels",
                    "warning",
                    f"cannot tell which GPU model {wl.ref} will get; allowed: "
                    f"{', '.join(sorted(allowed))}. Pin one with a nvidia.com/gpu.product or "
                    "instance-type nodeSelector",
                )
            )
        elif model not in allowed:
            out.append(
                Violation(
                    "limits.allowedGPUModels",
                    "error",
                    f"{wl.ref} uses {model} GPUs; this policy allows {', '.join(sorted(allowed))}. "
                    "Select an allowed GPU model in the nodeSelector",
                    {"gpuModel": model, "allowed": ",".join(sorted(allowed))},
                )
            )
    instance = est.offering.instance_type if est.offering else wl.hints.instance_type
    if limits.allowed_instance_types and instance and instance not in limits.allowed_instance_types:
        out.append(
            Violation(
                "limits.allowedInstanceTypes",
                "error",
                f"{wl.ref} runs on {instance}; allowed: {', '.join(limits.allowed_instance_types)}",
                {"instanceType": instance},
            )
        )
    if limits.max_gpus_per_workload is not None and wl.total_gpus > limits.max_gpus_per_workload:
        out.append(
            Violation(
                "limits.maxGPUsPerWorkload",
                "error",
                f"{wl.ref} holds {wl.total_gpus} GPUs ({wl.pods} pod(s) x {wl.gpus_per_pod}); the "
                f"limit is {limits.max_gpus_per_workload}. Lower parallelism/replicas or GPUs per pod",
                {"gpus": str(wl.total_gpus), "limit": str(limits.max_gpus_per_workload)},
            )
        )
    if (
        limits.max_hourly_cost is not None
        and est.hourly is not None
        and (est.hourly > limits.max_hourly_cost)
    ):
        out.append(
            Violation(
                "limits.maxHourlyCost",
                "error",
                f"{wl.ref} costs {usd(est.hourly)}/h; the limit is {usd(limits.max_hourly_cost)}/h. "
                "Use fewer or cheaper GPUs, or spot capacity",
                {"hourly": usd(est.hourly), "limit": usd(limits.max_hourly_cost)},
            )
        )
    if (
        limits.require_max_runtime
        and wl.kind == "Job"
        and wl.gpus_per_pod > 0
        and (wl.max_runtime_seconds is None)
    ):
        out.append(
            Violation(
                "limits.requireMaxRuntime",
                "error",
                f"{wl.ref} declares no spec.activeDeadlineSeconds; GPU Jobs must bound their "
                "runtime. Set activeDeadlineSeconds (e.g. 259200 for 72 h)",
            )
        )
    return out


def _approval_hint(subject: Subject) -> str:
    kind = subject.estimate.workload.kind
    if kind == "InferenceDeployment":
        return "Ask an approver to set spec.approval on it"
    if subject.training_budget is not None:
        name = subject.training_budget.name
        return f"Ask an approver to set spec.approval on TrainingJobBudget {name}"
    return (
        "Cover it with a TrainingJobBudget (label costgov.io/budget) and have an approver "
        "set spec.approval there"
    )


def _approvals(spec: CostPolicySpec, subject: Subject, now: datetime) -> list[Violation]:
    amount = subject.judged_amount
    if amount is None:
        return []
    tier = required_tier(spec.approvals, amount)
    if tier is None:
        return []
    ref = subject.estimate.workload.ref
    figures = {"estimate": usd(amount), "tier": usd(tier.above)}
    if tier.deny:
        return [
            Violation(
                "approval.denied",
                "error",
                f"{ref} is estimated at {usd(amount)}, above the {usd(tier.above)} this policy "
                "denies outright. Split the work or shorten the run",
                figures,
            )
        ]
    check = approval_covers(subject.approval, amount, now)
    if check.ok:
        return []
    who = [*tier.approvers.users, *(f"group {g}" for g in tier.approvers.groups)]
    return [
        Violation(
            "approval.required",
            "error",
            f"{ref} is estimated at {usd(amount)}, above {usd(tier.above)}: it needs an approval "
            f"from {' or '.join(who)} ({check.reason}). {_approval_hint(subject)}",
            figures,
        )
    ]


def _budgets(
    spec: CostPolicySpec, subject: Subject, policy_spent: Decimal | None
) -> list[Violation]:
    amount, ref = subject.judged_amount, subject.estimate.workload.ref
    out: list[Violation] = []
    if amount is None:
        return out
    if spec.budget is not None:
        view = BudgetView("policy", spec.budget.amount, policy_spent)
        if amount > view.remaining:
            blocking = spec.budget.on_exceeded in ("block-new", "suspend")
            unknown = (
                " (spend so far unknown here: judged against the whole budget)"
                if (policy_spent is None)
                else ""
            )
            out.append(
                Violation(
                    "budget.exceeded",
                    "error" if blocking else "warning",
                    f"{ref} is estimated at {usd(amount)}; the policy's "
                    f"{spec.budget.period} budget has {usd(view.remaining)} left of {usd(view.amount)}{unknown}. "
                    + (
                        "Raise the budget or wait for the next period"
                        if blocking
                        else "onExceeded is alert: admitted, alerting"
                    ),
                    {
                        "estimate": usd(amount),
                        "remaining": usd(view.remaining),
                        "budget": usd(view.amount),
                    },
                )
            )
    tjb = subject.training_budget
    if tjb is not None and amount > tjb.remaining:
        out.append(
            Violation(
                "trainingJobBudget.exceeded",
                "error",
                f"{ref} is estimated at {usd(amount)}; TrainingJobBudget {tjb.name} has "
                f"{usd(tjb.remaining)} left of {usd(tjb.amount)}"
                + (f" after {usd(tjb.committed)} for its other Jobs" if tjb.committed else "")
                + ". Raise spec.amount or shorten the Job",
                {
                    "estimate": usd(amount),
                    "remaining": usd(tjb.remaining),
                    "budget": usd(tjb.amount),
                },
            )
        )
    affordable, full = subject.affordable_replicas, subject.estimate.amount
    if (
        subject.monthly_budget is not None
        and affordable is not None
        and full is not None
        and (full > subject.monthly_budget)
    ):
        amount, pods = full, subject.estimate.workload.pods
        out.append(
            Violation(
                "inferenceDeployment.monthlyBudget",
                "warning",
                f"{ref} at {pods} replicas projects {usd(amount)}/month "
                f"({usd(amount / pods)} per replica over {HOURS_PER_MONTH} h), over its budget of "
                f"{usd(subject.monthly_budget)}; under an enforcing policy the operator caps it at "
                f"{affordable} replica(s)",
                {
                    "monthly": usd(amount),
                    "budget": usd(subject.monthly_budget),
                    "affordableReplicas": str(affordable),
                },
            )
        )
    return out


def _spot(spec: CostPolicySpec, est: Estimate) -> tuple[list[Violation], SpotOption | None]:
    out: list[Violation] = []
    wl = est.workload
    checkpoints = est.spot is not None and "checkpoint" in est.spot.eligible_because
    if (
        spec.spot.require_for_checkpointing
        and (wl.checkpointing or checkpoints)
        and (est.capacity is not None and est.capacity != CapacityType.SPOT)
    ):
        out.append(
            Violation(
                "spot.requireForCheckpointing",
                "error",
                f"{wl.ref} checkpoints, and this policy requires spot capacity for such work. "
                "Add nodeSelector karpenter.sh/capacity-type: spot (or your provider's label)",
            )
        )
    recommended = (
        est.spot
        if (
            est.spot is not None
            and est.spot.saving_percent >= spec.spot.recommend_min_savings_percent
        )
        else None
    )
    return out, recommended


def evaluate(
    name: str,
    spec: CostPolicySpec,
    subject: Subject,
    *,
    now: datetime,
    policy_spent: Decimal | None = None,
) -> Verdict:
    """Judge one workload against one policy (the caller has checked it is in scope)."""
    est = subject.estimate
    violations: list[Violation] = []
    if est.unpriced is not None and est.workload.gpus_per_pod > 0:
        violations.append(
            Violation(
                "pricing.unpriced",
                "warning",
                f"{est.workload.ref} cannot be priced: {est.unpriced}. Budget and approval rules "
                "were not applied",
            )
        )
    violations += _limits(spec, est)
    violations += _approvals(spec, subject, now)
    violations += _budgets(spec, subject, policy_spent)
    spot_violations, recommended = _spot(spec, est)
    violations += spot_violations
    action: Action = "allow"
    if violations:
        if spec.mode == "enforce":
            action = "deny" if any(v.severity == "error" for v in violations) else "warn"
        else:
            action = "warn" if spec.mode == "warn" else "audit"
    return Verdict(name, spec.mode, action, tuple(violations), recommended)
