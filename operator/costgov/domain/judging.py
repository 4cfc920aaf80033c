"""The one question every entry point asks: how do the policies judge this workload now?

`judge` answers it for the CLI (`costgov estimate`), the admission webhook and the periodic
audit alike, from a `Situation` (what is known: prices, policies, namespaces, budgets,
approvals, spend, nodes, the time) and a `Submission` (the workload, who submits it).
It finds the governing policies (with the workload's own labels), the budget covering a
Job, the estimate with that budget's hints, the objects whose signatures may approve the
work, and each policy's verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from costgov.api.costapproval import CostApproval
from costgov.api.costpolicy import CostPolicy
from costgov.api.inferencedeployment import InferenceDeployment
from costgov.api.trainingjobbudget import TrainingJobBudget
from costgov.domain.budgets import BudgetView
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.costing import Estimate, estimate_workload
from costgov.domain.placement import NodeInfo
from costgov.domain.policies import Subject, evaluate
from costgov.domain.resources import budget_hints
from costgov.domain.scoping import (
    ALWAYS_EXCLUDED_NAMESPACES,
    Bindings,
    covering_budget,
    governing,
    grants_for,
)
from costgov.domain.verdicts import Action, Verdict, worst_action
from costgov.domain.workloads import Workload

__all__ = [
    "BudgetKey",
    "Judgement",
    "Situation",
    "Spend",
    "Submission",
    "estimate_for",
    "judge",
]

BudgetKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Spend:
    """What the reconcile loop measured, for judging budgets; empty offline (unknown)."""

    policy_spent: Mapping[str, Decimal] = field(default_factory=dict)
    """Spend this period, by policy name."""
    budget_spent: Mapping[BudgetKey, Decimal] = field(default_factory=dict)
    commitments: Mapping[BudgetKey, Mapping[str, Decimal]] = field(default_factory=dict)
    """Per budget, what each covered Job (by name) is still expected to cost."""
    bound: Bindings = field(default_factory=dict)
    """Selector-target CostApprovals already used for a workload, not yet in their status."""


@dataclass(frozen=True, slots=True)
class Situation:
    """Everything known when judging: what `costgov estimate` reads from files, what the
    operator holds in memory."""

    catalog: PriceCatalog
    now: datetime
    policies: Sequence[CostPolicy] = ()
    namespaces: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    budgets: Sequence[TrainingJobBudget] = ()
    approvals: Sequence[CostApproval] = ()
    spend: Spend = field(default_factory=Spend)
    nodes: tuple[NodeInfo, ...] | None = None
    """The cluster's GPU nodes (the operator), to price work with no hints; None offline."""
    assume_instance_type: str | None = None
    excluded: frozenset[str] = ALWAYS_EXCLUDED_NAMESPACES

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        # Kubernetes labels every namespace with its own name.
        return {**self.namespaces.get(namespace, {}), "kubernetes.io/metadata.name": namespace}


@dataclass(frozen=True, slots=True)
class Submission:
    """A workload to judge, and who submits it."""

    workload: Workload
    submitter: str | None = None
    inference: InferenceDeployment | None = None
    """When the workload is an InferenceDeployment: the object (its budget, its signatures)."""
    approvals_at: datetime | None = None
    """When its approval is used; default now (the audit judges running work at creation)."""
    audit: bool = False
    """Judging work already running: the policy budget is judged as a whole elsewhere."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdicts of every governing policy on one workload."""

    submission: Submission
    estimate: Estimate
    budget: TrainingJobBudget | None
    verdicts: tuple[Verdict, ...]
    subject: Subject

    @property
    def action(self) -> Action:
        return worst_action(self.verdicts)

    @property
    def denied(self) -> bool:
        return self.action == "deny"


def estimate_for(
    workload: Workload,
    situation: Situation,
    budget: TrainingJobBudget | None,
    assume_instance_type: str | None = None,
) -> Estimate:
    """A workload's estimate: with its budget's hints, duration and checkpointing."""
    return estimate_workload(
        workload,
        situation.catalog,
        budget_hints=budget_hints(budget.spec.hints) if budget else None,
        max_duration=budget.spec.max_duration if budget else None,
        checkpointing=budget.spec.checkpointing if budget else False,
        nodes=situation.nodes,
        assume_instance_type=assume_instance_type or situation.assume_instance_type,
    )


def _budget_view(budget: TrainingJobBudget, workload: Workload, spend: Spend) -> BudgetView:
    key = (budget.metadata.namespace or "default", budget.metadata.name)
    others = {k: v for k, v in spend.commitments.get(key, {}).items() if k != workload.name}
    return BudgetView(
        budget.metadata.name,
        budget.spec.amount,
        spend.budget_spent.get(key),
        sum(others.values(), Decimal(0)),
    )


def _subject(
    sub: Submission, sit: Situation, est: Estimate, budget: TrainingJobBudget | None
) -> Subject:
    wl, idep = sub.workload, sub.inference
    return Subject(
        estimate=est,
        grants=grants_for(wl, sit.approvals, budget, idep, sit.spend.bound),
        submitter=sub.submitter,
        budget_name=budget.metadata.name if budget else None,
        training_budget=_budget_view(budget, wl, sit.spend) if budget else None,
        monthly_budget=idep.spec.monthly_budget if idep else None,
        min_replicas=idep.spec.replicas.min if idep else 0,
    )


def judge(sub: Submission, sit: Situation) -> Judgement:
    """Every governing policy's verdict on the submitted workload."""
    wl = sub.workload
    policies = governing(sit.policies, wl, sit.namespace_labels(wl.namespace), sit.excluded)
    budget = covering_budget(sit.budgets, wl) if wl.kind == "Job" else None
    est = estimate_for(wl, sit, budget)
    subject = _subject(sub, sit, est, budget)
    at = sub.approvals_at or sit.now
    verdicts = []
    for policy in policies:
        own = subject
        fallback = policy.spec.assume_instance_type
        if est.unpriced is not None and fallback and not sit.assume_instance_type:
            own = _subject(sub, sit, estimate_for(wl, sit, budget, fallback), budget)
        verdicts.append(
            evaluate(
                policy,
                own,
                now=at,
                policy_spent=sit.spend.policy_spent.get(policy.metadata.name),
                judge_budget=not sub.audit,
            )
        )
    return Judgement(sub, est, budget, tuple(verdicts), subject)
