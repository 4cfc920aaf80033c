"""Enforcement decisions: which Jobs to suspend or resume, how many replicas a model server
keeps, and who may undo a suspension (only costgov).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from costgov.api.costpolicy import CostPolicy
from costgov.domain.verdicts import Violation
from costgov.domain.workloads import Workload

__all__ = [
    "SUSPENDED_BY",
    "JobState",
    "SuspensionPlan",
    "guard_suspension",
    "plan_suspensions",
    "replica_cap",
    "suspends",
]

SUSPENDED_BY = "costgov.io/suspended-by"
"""Annotation costgov puts on Jobs it suspends (value: the TrainingJobBudget's name)."""


@dataclass(frozen=True)
class JobState:
    """A covered Job as enforcement sees it."""

    name: str
    finished: bool
    suspended: bool
    suspended_by: str | None
    policies: tuple[CostPolicy, ...]
    """The policies governing the Job (judged with its own labels)."""


@dataclass(frozen=True)
class SuspensionPlan:
    suspend: tuple[tuple[str, str], ...] = ()
    """(Job, policy) pairs to suspend now."""
    held: tuple[tuple[str, str], ...] = ()
    """(Job, policy) pairs already suspended by costgov for this budget, staying so."""
    resume: tuple[str, ...] = ()


def suspends(policy: CostPolicy) -> bool:
    """Whether a policy suspends running Jobs when a budget is used up."""
    spec = policy.spec
    return (
        spec.mode == "enforce" and spec.budget is not None and spec.budget.on_exceeded == "suspend"
    )


def plan_suspensions(budget: str, exhausted: bool, jobs: Iterable[JobState]) -> SuspensionPlan:
    """Suspend running covered Jobs when the budget is exhausted under a policy that says
    `suspend`; resume those costgov suspended for this budget once it is not."""
    suspend: list[tuple[str, str]] = []
    held: list[tuple[str, str]] = []
    resume: list[str] = []
    for job in jobs:
        policy = next((p.metadata.name for p in job.policies if suspends(p)), None)
        if exhausted and policy is not None and not job.finished:
            target = held if job.suspended and job.suspended_by == budget else suspend
            target.append((job.name, policy))
        elif not exhausted and job.suspended and job.suspended_by == budget:
            resume.append(job.name)
    return SuspensionPlan(tuple(suspend), tuple(held), tuple(resume))


def guard_suspension(old: Workload, new: Workload, *, by_costgov: bool) -> Violation | None:
    """Only costgov resumes a Job it suspended, and only costgov writes its annotation."""
    if by_costgov:
        return None
    before, after = old.annotations.get(SUSPENDED_BY), new.annotations.get(SUSPENDED_BY)
    if before and old.suspended and not new.suspended:
        return Violation(
            "suspension.resumeByCostgov",
            "error",
            f"costgov suspended {new.ref} because TrainingJobBudget {before} is used up; "
            "costgov resumes it when the budget allows again (raise the budget's spec.amount, "
            "with its approval): it cannot be resumed by hand",
        )
    if before != after:
        return Violation(
            "suspension.annotation",
            "error",
            f"the {SUSPENDED_BY} annotation on {new.ref} is costgov's own; only costgov sets "
            "or removes it",
        )
    return None


def replica_cap(
    affordable: int | None, maximum: int, policies: Sequence[CostPolicy]
) -> tuple[int, str | None]:
    """(replicas to run, the enforcing policy that caps them) for a model server whose
    monthly budget affords `affordable` replicas of `maximum`."""
    enforcing = next((p.metadata.name for p in policies if p.spec.mode == "enforce"), None)
    if affordable is None or affordable >= maximum or enforcing is None:
        return maximum, None
    return affordable, enforcing
