"""A used-up TrainingJobBudget's enforcement, as patches, events and violations: the domain
decides (`enforcing.plan_suspensions`), this turns the plan into what the handler applies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from costgov.api import CostPolicy, TrainingJobBudget
from costgov.api.fields import Condition
from costgov.domain.enforcing import SUSPENDED_BY, JobState, plan_suspensions
from costgov.domain.money import usd
from costgov.services.conditions import Event, ViolationSeen, condition
from costgov.services.inventory import JobRecord
from costgov.services.outcomes import JobPatch

__all__ = ["Enforcement", "enforce"]


@dataclass
class Enforcement:
    exhausted: bool | None
    message: str
    suspended: list[str] = field(default_factory=list)
    patches: list[JobPatch] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    seen: list[ViolationSeen] = field(default_factory=list)

    def condition(self, generation: int, now: datetime) -> Condition:
        return condition(
            "BudgetExceeded",
            self.exhausted,
            "BudgetSpent" if self.exhausted else "WithinBudget",
            self.message,
            generation=generation,
            now=now,
        )


def enforce(
    budget: TrainingJobBudget,
    spent: Decimal | None,
    governed: Sequence[tuple[JobRecord, list[CostPolicy]]],
) -> Enforcement:
    """Suspend covered Jobs when the budget is used up under a `suspend` policy (judged with
    each Job's labels); resume those costgov suspended once it is not."""
    ns, name, amount = (
        budget.metadata.namespace or "default",
        budget.metadata.name,
        budget.spec.amount,
    )
    if spent is None:
        return Enforcement(None, "spend not known yet")
    exhausted = spent >= amount
    out = Enforcement(exhausted, f"spent {usd(spent)} of {usd(amount)}")
    plan = plan_suspensions(
        name,
        exhausted,
        [
            JobState(j.name, j.finished, j.workload.suspended, j.suspended_by, tuple(policies))
            for j, policies in governed
        ],
    )
    for job, policy in (*plan.suspend, *plan.held):
        out.suspended.append(job)
        out.seen.append(
            ViolationSeen(
                "Job",
                ns,
                job,
                "trainingJobBudget.exhausted",
                "error",
                f"TrainingJobBudget {name} spent {usd(spent)} of {usd(amount)}; Job suspended "
                f"by policy {policy}. Raise spec.amount to resume",
            )
        )
    for job, _ in plan.suspend:
        patch = {"spec": {"suspend": True}, "metadata": {"annotations": {SUSPENDED_BY: name}}}
        out.patches.append((ns, job, patch))
        message = f"TrainingJobBudget {name} is exhausted ({usd(spent)} of {usd(amount)})"
        out.events.append(Event("Job", ns, job, "Warning", "SuspendedOverBudget", message))
    for job in plan.resume:
        patch = {"spec": {"suspend": False}, "metadata": {"annotations": {SUSPENDED_BY: None}}}
        out.patches.append((ns, job, patch))
        message = f"TrainingJobBudget {name} has budget left again"
        out.events.append(Event("Job", ns, job, "Normal", "Resumed", message))
    return out
