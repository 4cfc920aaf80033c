"""Reconcile a TrainingJobBudget: its Jobs' estimates, spend to date, burn rate, projection,
per-Job lines, idle dollars, approvals, phase, and suspension when it is used up.

Pure: no I/O; the handler applies the outcome. When the snapshot has an error, the old
figures stay and MetricsAvailable says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from costgov.api import TrainingJobBudget
from costgov.api.approvals import ApprovalState
from costgov.api.common import Accounting, JobAccount
from costgov.api.fields import Condition
from costgov.api.trainingjobbudget import JobLine, TrainingJobBudgetStatus
from costgov.domain.attribution import unattributed
from costgov.domain.budgets import highest_crossed, newly_crossed, still_to_spend
from costgov.domain.costing import Estimate
from costgov.domain.judging import Situation, Submission, estimate_for, judge
from costgov.domain.money import cents, usd
from costgov.domain.scoping import covers, governing
from costgov.domain.spend import PodCost, idle_cost, totals, unpriced_notes
from costgov.services.accounting import Snapshot
from costgov.services.approval_states import approval_states
from costgov.services.budget_enforcing import Enforcement, enforce
from costgov.services.conditions import Event, condition, merge_conditions, merge_violations
from costgov.services.figures import (
    caught_up_condition,
    exact,
    figures_as_of,
    metrics_condition,
    pods_condition,
    priced_condition,
)
from costgov.services.inventory import Inventory, JobRecord
from costgov.services.outcomes import Outcome
from costgov.services.windows import budget_window, window_key

__all__ = ["DEFAULT_THRESHOLDS", "commitments", "reconcile_budget"]

DEFAULT_THRESHOLDS = (50, 80, 95, 100)


@dataclass
class _Spend:
    """What this cycle measured for the budget."""

    spent: Decimal
    burn: Decimal
    idle: Decimal
    accounts: dict[str, tuple[Decimal, Decimal]]
    unpriced: tuple[str, ...]
    end: datetime
    """Where this cycle's window ends: the next cursor."""
    fields: dict[str, object] = field(default_factory=dict)


def _measure(
    jobs: list[JobRecord],
    ns: str,
    snapshot: Snapshot,
    accounting: Accounting | None,
    start: datetime,
) -> _Spend | None:
    window = snapshot.windows.get(window_key(start))
    if snapshot.error or window is None or snapshot.accounted_to is None:
        return None
    names = {j.name for j in jobs}

    def owned(c: PodCost) -> bool:
        return c.usage.namespace == ns and snapshot.owners.get(c.usage.key) in names

    mine = [c for c in window.by_namespace.get(ns, ()) if owned(c)]
    delta = totals(mine)
    idle = (Decimal(accounting.idle) if accounting else Decimal(0)) + sum(
        (
            idle_cost(c.cost, window.utilization[c.usage.key])
            for c in mine
            if c.cost is not None and c.usage.key in window.utilization
        ),
        Decimal(0),
    )
    accounts = {
        a.name: (Decimal(a.cost), Decimal(a.gpu_hours))
        for a in (accounting.jobs if accounting else [])
    }
    for j in jobs:
        job_delta = totals(c for c in mine if snapshot.owners.get(c.usage.key) == j.name)
        cost, hours = accounts.get(j.name, (Decimal(0), Decimal(0)))
        accounts[j.name] = (cost + job_delta.cost, hours + job_delta.gpu_hours)
    base = Decimal(accounting.spent) if accounting else Decimal(0)
    burn = totals(c for c in snapshot.hourly_by_namespace.get(ns, ()) if owned(c)).cost
    # pods left out stay noted for as long as the budget's spend leaves them out
    unpriced = unpriced_notes(accounting.unpriced if accounting else (), delta.unpriced)
    return _Spend(base + delta.cost, burn, idle, accounts, unpriced, window.end)


def _commitments(
    jobs: list[JobRecord], estimates: Mapping[str, Estimate], now: datetime
) -> tuple[dict[str, Decimal], bool]:
    """What each running (or waiting) Job still costs; False when one cannot be priced."""
    out, known = {}, True
    for j in jobs:
        if j.finished or j.workload.suspended:
            continue  # done, or not burning while suspended
        e = estimates[j.name]
        left = still_to_spend(e.hourly, e.hours, j.started, now)
        if left is None:
            known = False
        else:
            out[j.name] = left
    return out, known


def _lines(
    measured: _Spend, jobs: list[JobRecord], estimates: Mapping[str, Estimate]
) -> list[JobLine]:
    by_name = {j.name: j for j in jobs}
    lines = []
    for name, (cost, gpu_hours) in measured.accounts.items():
        job = by_name.get(name)
        gpus = math.ceil(job.workload.total_gpus) if job else 0
        offering = estimates[name].offering if name in estimates else None
        lines.append(
            JobLine(
                name=name,
                gpus=gpus,
                hours=format((gpu_hours / (gpus or 1)).quantize(Decimal("0.01")), "f"),
                cost=cents(cost),
                priced_as=offering.label if offering is not None else "",
            )
        )
    return lines[:200]


def _figures(
    budget: TrainingJobBudget,
    measured: _Spend,
    commitments: Mapping[str, Decimal],
    known: bool,
    snapshot: Snapshot,
    now: datetime,
) -> dict[str, object]:
    remaining = budget.spec.amount - measured.spent
    fields: dict[str, object] = {
        "accounting": Accounting(
            cursor=measured.end,
            spent=exact(measured.spent),
            idle=exact(measured.idle),
            jobs=[
                JobAccount(name=n, cost=exact(c), gpu_hours=exact(h))
                for n, (c, h) in list(measured.accounts.items())[:200]
            ],
            unpriced=list(measured.unpriced),
        ),
        "spent": cents(measured.spent),
        "remaining": cents(remaining),
        "burn_rate_per_hour": cents(measured.burn),
        "idle_gpu_cost": cents(measured.idle),
        "figures_as_of": figures_as_of(snapshot, measured.end),
        "projected_total": cents(measured.spent + sum(commitments.values(), Decimal(0)))
        if known
        else None,
        "projected_exhaustion": now
        + timedelta(seconds=float(max(remaining, Decimal(0)) / measured.burn * 3600))
        if measured.burn > 0
        else None,
    }
    return fields


def _phase(
    spent: Decimal | None, budget: TrainingJobBudget, jobs: list[JobRecord], approved: bool
) -> str:
    if spent is not None and spent >= budget.spec.amount and budget.spec.amount > 0:
        return "Exhausted"
    if jobs and all(j.finished for j in jobs):
        return "Completed"
    if any(j.active or j.started for j in jobs if not j.finished):
        return "Active"
    return "Approved" if approved else "Pending"


@dataclass
class _Figures:
    """What a measured cycle adds to the status."""

    fields: dict[str, object] = field(default_factory=dict)
    conditions: list[Condition] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    highest: int | None = None


def _measured_figures(
    budget: TrainingJobBudget,
    measured: _Spend,
    jobs: list[JobRecord],
    estimates: Mapping[str, Estimate],
    snapshot: Snapshot,
    announced: int | None,
    gen: int,
    now: datetime,
) -> _Figures:
    ns, name, amount = (
        budget.metadata.namespace or "default",
        budget.metadata.name,
        budget.spec.amount,
    )
    commitments, known = _commitments(jobs, estimates, now)
    out = _Figures(_figures(budget, measured, commitments, known, snapshot, now))
    out.fields["jobs"] = _lines(measured, jobs, estimates)
    out.highest = highest_crossed(measured.spent, amount, DEFAULT_THRESHOLDS)
    out.fields["last_threshold_crossed"] = out.highest
    out.events = [
        Event("TrainingJobBudget", ns, name, "Warning" if t >= 100 else "Normal",
              "BudgetThresholdCrossed", f"spent {usd(measured.spent)}, {t}% of {usd(amount)}")
        for t in newly_crossed(announced, out.highest, DEFAULT_THRESHOLDS)
    ]  # fmt: skip
    priced = priced_condition(measured.unpriced, gen, now)
    out.conditions += [priced, _attribution(jobs, ns, snapshot, gen, now)]
    return out


def _attribution(
    jobs: list[JobRecord], ns: str, snapshot: Snapshot, gen: int, now: datetime
) -> Condition:
    """Attributed=False when a covered Job runs and GPU pods of unknown owner run beside it:
    their spend cannot be counted, and $0 must not pass for the truth."""
    running = [j.name for j in jobs if j.active > 0 and not j.finished and not j.workload.suspended]
    pods = [c.usage.key for c in snapshot.hourly_by_namespace.get(ns, ())]
    found = unattributed(running, pods, snapshot.attribution)
    if found.found:
        return condition(
            "Attributed", False, "OwnerUnknown", found.message(), generation=gen, now=now
        )
    message = "every running GPU pod of the covered Jobs is attributed to its Job"
    return condition("Attributed", True, "OwnersKnown", message, generation=gen, now=now)


@dataclass(frozen=True)
class _Covered:
    """The budget's Jobs, their estimates with its hints, and the approvals they need."""

    jobs: list[JobRecord]
    estimates: dict[str, Estimate]
    approvals: list[ApprovalState]

    @property
    def estimated(self) -> Decimal | None:
        amounts = [e.amount for e in self.estimates.values()]
        if None in amounts:
            return None  # a sum would be understated
        return cents(sum((a for a in amounts if a is not None), Decimal(0)))


def _covered(budget: TrainingJobBudget, inv: Inventory, situation: Situation) -> _Covered:
    ns = budget.metadata.namespace or "default"
    jobs = [j for j in inv.jobs_in(ns) if covers(budget, j.workload)]
    estimates = {j.name: estimate_for(j.workload, situation, budget) for j in jobs}
    dearest = max(jobs, key=lambda j: estimates[j.name].amount or Decimal(0), default=None)
    approvals = approval_states(judge(Submission(dearest.workload), situation)) if dearest else []
    return _Covered(jobs, estimates, approvals)


def commitments(
    budget: TrainingJobBudget, inv: Inventory, situation: Situation
) -> tuple[dict[str, Decimal], frozenset[str]]:
    """What the budget's running (or waiting) Jobs are still expected to cost, as
    admission counts it (the leader's reconcile and every follower keep it alike), and the
    names of all its covered Jobs the cache holds."""
    covered = _covered(budget, inv, situation)
    found = _commitments(covered.jobs, covered.estimates, situation.now)[0]
    return found, frozenset(j.name for j in covered.jobs)


def _enforce(
    budget: TrainingJobBudget, spent: Decimal | None, covered: _Covered, situation: Situation
) -> Enforcement:
    labels = situation.namespace_labels(budget.metadata.namespace or "default")
    governed = [
        (j, governing(situation.policies, j.workload, labels, situation.excluded))
        for j in covered.jobs
    ]
    return enforce(budget, spent, governed)


def reconcile_budget(
    budget: TrainingJobBudget,
    inv: Inventory,
    snapshot: Snapshot,
    *,
    situation: Situation,
    old: TrainingJobBudgetStatus,
    announced: int | None = None,
) -> Outcome[TrainingJobBudgetStatus]:
    gen, now = budget.metadata.generation or 0, situation.now
    ns, name = budget.metadata.namespace or "default", budget.metadata.name
    covered = _covered(budget, inv, situation)
    start = budget_window(budget, old.accounting, covered.jobs, now)
    measured = _measure(covered.jobs, ns, snapshot, old.accounting, start)
    prior = max((t for t in (old.last_threshold_crossed, announced) if t is not None), default=None)
    figures = _Figures()
    if measured is not None:
        args = (covered.jobs, covered.estimates, snapshot, prior, gen, now)
        figures = _measured_figures(budget, measured, *args)
    spent = measured.spent if measured is not None else old.spent
    enforced = _enforce(budget, spent, covered, situation)
    violations, fresh = merge_violations(old.violations, enforced.seen, now)
    jobs = len(covered.jobs)
    ready = condition(
        "Ready", True, "Reconciled", f"{jobs} Job(s) covered", generation=gen, now=now
    )
    conditions = [ready, metrics_condition(snapshot, gen, now), *figures.conditions]
    conditions.append(pods_condition(inv.pods_problem([ns]), gen, now))
    cursor = old.accounting.cursor if old.accounting else None
    caught_up = caught_up_condition(snapshot, window_key(start), cursor, gen, now)
    conditions += [caught_up] if caught_up is not None else []
    approved = all(a.satisfied for a in covered.approvals) and bool(covered.approvals or jobs)
    status = TrainingJobBudgetStatus(
        observed_generation=gen,
        phase=_phase(spent, budget, covered.jobs, approved),
        estimated=covered.estimated,
        approvals=covered.approvals,
        suspended_jobs=enforced.suspended,
        violations=violations,
        conditions=merge_conditions(old.conditions, [*conditions, enforced.condition(gen, now)]),
        **figures.fields,
    )
    events = [*figures.events, *enforced.events] + [
        Event("TrainingJobBudget", ns, name, "Warning", "BudgetViolation", f"{v.rule}: {v.message}")
        for v in fresh
    ]
    return Outcome(
        status,
        events,
        enforced.patches,
        spent=measured.spent if measured else None,
        commitments=_commitments(covered.jobs, covered.estimates, now)[0],
        covered=frozenset(j.name for j in covered.jobs),
        announced=(None, figures.highest) if measured is not None else None,
    )
