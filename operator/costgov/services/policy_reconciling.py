"""Reconcile a CostPolicy: scope, audit of running work, spend in the budget's period,
forecast, thresholds, conditions. Pure: no I/O; the handler applies the outcome.

When the snapshot has an error, the old figures stay (with their `figuresAsOf`) and
MetricsAvailable says why: nothing is reset to $0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from costgov.api import CostPolicy
from costgov.api.common import Accounting
from costgov.api.costpolicy import Budget, CostPolicyStatus
from costgov.api.fields import Condition
from costgov.domain.budgets import forecast, highest_crossed, newly_crossed, period_bounds
from costgov.domain.budgets import utilization_percent as utilization
from costgov.domain.judging import Judgement, Situation
from costgov.domain.money import cents, usd
from costgov.domain.scoping import namespace_in_scope
from costgov.domain.selectors import matches
from costgov.domain.spend import PodCost, Totals, totals, unpriced_notes
from costgov.services.accounting import Snapshot
from costgov.services.conditions import (
    Event,
    ViolationSeen,
    condition,
    merge_conditions,
    merge_violations,
)
from costgov.services.figures import (
    caught_up_condition,
    exact,
    figures_as_of,
    metrics_condition,
    priced_condition,
    unpriced_note,
)
from costgov.services.inventory import Inventory
from costgov.services.outcomes import Announced, Outcome
from costgov.services.windows import Resume, policy_window, window_key

__all__ = ["reconcile_policy"]

WorkKey = tuple[str, str, str]


def _scope(policy: CostPolicy, inv: Inventory, excluded: frozenset[str]) -> list[str]:
    """Namespaces the policy's namespaceSelector takes in (its workloadSelector then picks
    workloads within them)."""
    return sorted(
        ns
        for ns in inv.namespaces
        if namespace_in_scope(
            policy.spec, namespace=ns, namespace_labels=inv.namespace_labels(ns), excluded=excluded
        )
    )


def _audited(
    policy: CostPolicy, judgements: Mapping[WorkKey, Judgement], audit: Iterable[ViolationSeen]
) -> list[ViolationSeen]:
    seen = list(audit)
    for (kind, ns, name), found in sorted(judgements.items()):
        for verdict in found.verdicts:
            if verdict.policy == policy.metadata.name:
                seen += [
                    ViolationSeen(kind, ns, name, v.rule, v.severity, v.message)
                    for v in verdict.violations
                ]
    return seen


def _spend(
    policy: CostPolicy,
    budget: Budget,
    inv: Inventory,
    snapshot: Snapshot,
    namespaces: list[str],
    resume: Resume,
) -> tuple[Totals, Decimal, datetime] | None:
    """(spend this period, $/h now, where it is counted to) over the governed pods, or None
    when not measured.

    The period's unpriced pods stay in the totals for as long as its spend leaves them out,
    not only in the cycle that met them."""
    window = snapshot.windows.get(window_key(resume.start))
    if window is None or snapshot.accounted_to is None:
        return None
    selector = policy.spec.scope.workload_selector
    pods = {(p.namespace, p.name): p for p in inv.pods}

    def governed(cost: PodCost) -> bool:
        pod = pods.get(cost.usage.key)
        return pod is None or matches(selector, pod.labels)

    delta = totals(c for ns in namespaces for c in window.by_namespace.get(ns, ()) if governed(c))
    burn = totals(
        c for ns in namespaces for c in snapshot.hourly_by_namespace.get(ns, ()) if governed(c)
    ).cost
    unpriced = unpriced_notes(resume.unpriced, delta.unpriced)
    return Totals(resume.spent + delta.cost, delta.gpu_hours, unpriced), burn, window.end


def _budget_conditions(
    budget: Budget, spent: Totals, projected: Decimal, gen: int, now: datetime
) -> list[Condition]:
    pct, first = utilization(spent.cost, budget.amount), budget.alert_thresholds[0]
    unpriced = f"; {unpriced_note(spent.unpriced)}" if spent.unpriced else ""
    return [
        condition(
            "BudgetWarning",
            first <= pct < 100,
            "ThresholdCrossed" if pct >= first else "UnderThreshold",
            f"{pct}% of the {budget.period} budget {usd(budget.amount)} spent; forecast "
            f"{usd(projected)} at period end",
            generation=gen,
            now=now,
        ),
        condition(
            "BudgetExceeded",
            pct >= 100,
            "BudgetSpent" if pct >= 100 else "WithinBudget",
            f"spent {usd(spent.cost)} of the {budget.period} budget {usd(budget.amount)}{unpriced}",
            generation=gen,
            now=now,
        ),
    ]


def _prior_threshold(
    old: CostPolicyStatus, announced: Announced | None, start: datetime
) -> int | None:
    """The highest threshold already announced this period (status or memory)."""
    known = (
        old.last_threshold_crossed if old.period_start == start else None,
        announced[1] if announced is not None and announced[0] == start else None,
    )
    return max((t for t in known if t is not None), default=None)


def _account(
    policy: CostPolicy,
    inv: Inventory,
    snapshot: Snapshot,
    namespaces: list[str],
    old: CostPolicyStatus,
    now: datetime,
    announced: Announced | None,
) -> tuple[dict[str, object], list[Condition], list[Event], Decimal | None]:
    """Figures for the period: status fields, conditions, threshold events, exact spend."""
    budget, gen = policy.spec.budget, policy.metadata.generation or 0
    plan = policy_window(policy, old.accounting, old.period_start, now)
    if budget is None or plan is None or snapshot.error:
        return {}, [], [], None
    measured = _spend(policy, budget, inv, snapshot, namespaces, plan)
    cursor = old.accounting.cursor if old.accounting else None
    caught_up = caught_up_condition(snapshot, window_key(plan.start), cursor, gen, now)
    progress = [caught_up] if caught_up is not None else []
    if measured is None or snapshot.accounted_to is None:
        return {}, progress, [], None
    spent, burn, counted_to = measured
    start, end = period_bounds(now, budget.period)
    projected = forecast(spent.cost, burn, now, end)
    highest = highest_crossed(spent.cost, budget.amount, budget.alert_thresholds)
    prior = _prior_threshold(old, announced, start)
    events = [
        Event(
            "CostPolicy",
            "",
            policy.metadata.name,
            "Warning" if t >= 100 else "Normal",
            "BudgetThresholdCrossed",
            f"spend {usd(spent.cost)} reached {t}% of the {budget.period} budget "
            f"{usd(budget.amount)}",
        )
        for t in newly_crossed(prior, highest, budget.alert_thresholds)
    ]
    fields: dict[str, object] = {
        "accounting": Accounting(
            cursor=counted_to, spent=exact(spent.cost), unpriced=list(spent.unpriced)
        ),
        "period": budget.period,
        "period_start": start,
        "spent": cents(spent.cost),
        "forecast": cents(projected),
        "budget_utilization_percent": utilization(spent.cost, budget.amount),
        "last_threshold_crossed": highest,
        "figures_as_of": figures_as_of(snapshot, counted_to),
        "unpriced_pods": len(spent.unpriced),
    }
    conditions = [
        *_budget_conditions(budget, spent, projected, gen, now),
        priced_condition(spent.unpriced, gen, now),
        *progress,
    ]
    return fields, conditions, events, spent.cost


def reconcile_policy(
    policy: CostPolicy,
    inv: Inventory,
    snapshot: Snapshot,
    *,
    situation: Situation,
    old: CostPolicyStatus,
    judgements: Mapping[WorkKey, Judgement],
    audit: Iterable[ViolationSeen] = (),
    announced: Announced | None = None,
) -> Outcome[CostPolicyStatus]:
    """`judgements`: running work judged by the engine this cycle; `audit`: violations
    admitted in audit mode lately, to record in status."""
    gen, now = policy.metadata.generation or 0, situation.now
    namespaces = _scope(policy, inv, situation.excluded)
    governed = {
        k: j
        for k, j in judgements.items()
        if any(v.policy == policy.metadata.name for v in j.verdicts)
    }
    violations, fresh = merge_violations(old.violations, _audited(policy, governed, audit), now)
    events = [
        Event(v.kind, v.namespace, v.name, "Warning", "CostPolicyViolation",
              f"[{policy.metadata.name}] {v.rule}: {v.message}")
        for v in fresh
    ]  # fmt: skip
    fields, budget_conditions, threshold_events, spent = _account(
        policy, inv, snapshot, namespaces, old, now, announced
    )
    conditions = [
        condition("Ready", True, "Reconciled", "policy evaluated", generation=gen, now=now),
        metrics_condition(snapshot, gen, now),
        *budget_conditions,
    ]
    status = CostPolicyStatus(
        observed_generation=gen,
        matched_namespaces=namespaces[:1000],
        matched_workloads=len(governed)
        + sum(1 for i in inv.inference if i.metadata.namespace in set(namespaces)),
        violations=violations,
        conditions=merge_conditions(old.conditions, conditions),
        **fields,
    )
    mark = (fields["period_start"], fields["last_threshold_crossed"]) if fields else announced
    return Outcome(status, events + threshold_events, spent=spent, announced=mark)  # type: ignore[arg-type]
