"""CostPolicy evaluation: one policy's judgement of one priced workload.

`evaluate` applies the rules (unpriced, limits, approval tiers, budgets in their own period,
spot) and the policy's mode turns the violations into an action (`verdicts.action_for`).
Which policies govern a workload, and what surrounds it (its budget, its approvals), is
`judging.judge`'s business: this module never looks anything up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from costgov.api.costpolicy import CostPolicy, CostPolicySpec
from costgov.domain.approvals import (
    Assessment,
    Grant,
    best_assessment,
    describe_signoff,
    required_tier,
)
from costgov.domain.budgets import BudgetView, hours_in_period
from costgov.domain.costing import Estimate, affordable_replicas
from costgov.domain.money import HOURS_PER_MONTH, usd
from costgov.domain.rules import limit_rules, spot_rules, unpriced_rule
from costgov.domain.scoping import how_to_approve
from costgov.domain.verdicts import Verdict, Violation, action_for

__all__ = ["Subject", "evaluate"]

PERIOD_NAME = {"daily": "day", "monthly": "month"}


@dataclass(frozen=True)
class Subject:
    """A priced workload and what surrounds it."""

    estimate: Estimate
    grants: tuple[Grant, ...] = ()
    """Objects whose signatures may approve it (CostApprovals, its budget, itself)."""
    submitter: str | None = None
    """Who submits it (the admission request's user); None offline."""
    budget_name: str | None = None
    """The TrainingJobBudget covering it (where a Job is approved), if any."""
    training_budget: BudgetView | None = None
    monthly_budget: Decimal | None = None
    """An InferenceDeployment's own monthly budget; the estimate is at its max replicas."""
    min_replicas: int = 0
    affordable_replicas: int | None = field(init=False)
    """Replicas the monthly budget pays for (never below min), when there is one."""
    judged_hourly: Decimal | None = field(init=False)
    """$/h that budgets judge: at the replicas the monthly budget affords, if capped."""
    judged_amount: Decimal | None = field(init=False)
    """The cost approval tiers judge: a run's total, or a month of running (at the
    replicas a monthly budget affords: the operator caps replicas there)."""

    def __post_init__(self) -> None:
        est, affordable = self.estimate, None
        hourly = est.hourly
        if self.monthly_budget is not None and hourly is not None and est.workload.pods > 0:
            per_replica = hourly / est.workload.pods
            affordable = affordable_replicas(
                self.monthly_budget, per_replica, self.min_replicas, est.workload.pods
            )
            hourly = min(hourly, per_replica * affordable)
        object.__setattr__(self, "affordable_replicas", affordable)
        object.__setattr__(self, "judged_hourly", hourly)
        object.__setattr__(self, "judged_amount", None if hourly is None else hourly * est.hours)


def _approvals(
    spec: CostPolicySpec, name: str, subject: Subject, now: datetime
) -> tuple[list[Violation], Assessment | None]:
    amount = subject.judged_amount
    if amount is None:
        return [], None
    tier = required_tier(spec.approvals, amount)
    if tier is None:
        return [], None
    ref = subject.estimate.workload.ref
    if tier.deny:
        figures = {"estimate": usd(amount), "tier": usd(tier.above)}
        message = (
            f"{ref} is estimated at {usd(amount)}, above the {usd(tier.above)} this policy "
            "denies outright. Split the work or shorten the run"
        )
        return [Violation("approval.denied", "error", message, figures)], None
    found = best_assessment(
        name, tier, subject.grants, amount=amount, now=now, submitter=subject.submitter
    )
    if found.satisfied:
        return [], found
    figures = {"estimate": usd(amount), "tier": usd(tier.above)}
    how = how_to_approve(subject.estimate.workload, subject.budget_name)
    missing = "; ".join(describe_signoff(s) for s in found.missing)
    rejected = "; ".join(f"{s.approved_by}: {why}" for s, why in found.rejected)
    message = (
        f"{ref} is estimated at {usd(amount)}, above {usd(tier.above)}: it needs the sign-off "
        f"of {missing}"
        + (f" (signatures that do not count: {rejected})" if rejected else "")
        + f". {how}"
    )
    return [Violation("approval.required", "error", message, figures)], found


def _policy_budget(
    spec: CostPolicySpec, subject: Subject, spent: Decimal | None
) -> list[Violation]:
    budget, hourly, est = spec.budget, subject.judged_hourly, subject.estimate
    if budget is None or hourly is None:
        return []
    hours = hours_in_period(est.hours, budget.period, est.workload.schedule, est.run_hours)
    amount = hourly * hours
    view = BudgetView("policy", budget.amount, spent)
    if amount <= view.remaining:
        return []
    word = PERIOD_NAME[budget.period]
    blocking = budget.on_exceeded in ("block-new", "suspend")
    unknown = " (spend so far unknown: judged against the whole budget)" if spent is None else ""
    return [
        Violation(
            "budget.exceeded",
            "error" if blocking else "warning",
            f"{est.workload.ref} costs {usd(amount)} per {word} ({hours.normalize():f} h at "
            f"{usd(hourly)}/h); the policy's {budget.period} budget has {usd(view.remaining)} "
            f"left of {usd(view.amount)} this {word}{unknown}. "
            + (
                f"Raise the budget or wait for the next {word}"
                if blocking
                else "onExceeded is alert: admitted, alerting"
            ),
            {
                "periodCost": usd(amount),
                "period": budget.period,
                "remaining": usd(view.remaining),
                "budget": usd(view.amount),
            },
        )
    ]


def _own_budgets(subject: Subject) -> list[Violation]:
    out: list[Violation] = []
    amount, ref, tjb = subject.judged_amount, subject.estimate.workload.ref, subject.training_budget
    if amount is not None and tjb is not None and amount > tjb.remaining:
        others = f" after {usd(tjb.committed)} for its other Jobs" if tjb.committed else ""
        unknown = " (spend so far unknown)" if tjb.spent is None else ""
        out.append(
            Violation(
                "trainingJobBudget.exceeded",
                "error",
                f"{ref} is estimated at {usd(amount)}; TrainingJobBudget {tjb.name} has "
                f"{usd(tjb.remaining)} left of {usd(tjb.amount)}{others}{unknown}. "
                "Raise spec.amount or shorten the Job",
                {
                    "estimate": usd(amount),
                    "remaining": usd(tjb.remaining),
                    "budget": usd(tjb.amount),
                },
            )
        )
    affordable, full, budget = (
        subject.affordable_replicas,
        subject.estimate.amount,
        subject.monthly_budget,
    )
    if budget is not None and affordable is not None and full is not None and full > budget:
        pods = subject.estimate.workload.pods
        out.append(
            Violation(
                "inferenceDeployment.monthlyBudget",
                "warning",
                f"{ref} at {pods} replicas projects {usd(full)}/month ({usd(full / pods)} per "
                f"replica over {HOURS_PER_MONTH} h), over its budget of {usd(budget)}; under an "
                f"enforcing policy the operator caps it at {affordable} replica(s)",
                {
                    "monthly": usd(full),
                    "budget": usd(budget),
                    "affordableReplicas": str(affordable),
                },
            )
        )
    return out


def evaluate(
    policy: CostPolicy,
    subject: Subject,
    *,
    now: datetime,
    policy_spent: Decimal | None = None,
    judge_budget: bool = True,
) -> Verdict:
    """Judge one workload against one policy (the caller has checked it governs it).

    `judge_budget=False` leaves the policy's own budget out (the periodic audit of running
    work: the budget is judged as a whole there, not against work already admitted)."""
    spec, est = policy.spec, subject.estimate
    violations = [*unpriced_rule(spec, est), *limit_rules(spec, est)]
    approval_violations, assessment = _approvals(spec, policy.metadata.name, subject, now)
    violations += approval_violations
    if judge_budget:
        violations += _policy_budget(spec, subject, policy_spent)
    violations += _own_budgets(subject)
    spot_violations, recommended = spot_rules(spec, est)
    violations += spot_violations
    return Verdict(
        policy.metadata.name,
        spec.mode,
        action_for(spec.mode, violations),
        tuple(violations),
        recommended,
        assessment,
    )
