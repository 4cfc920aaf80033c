"""Reconcile a CostPolicy: scope, audit of running work, spend in the budget's period,
forecast, thresholds, conditions. Pure: no I/O; the handler applies the outcome.

When the snapshot has an error, the old figures stay (with their `figuresAsOf`) and
MetricsAvailable says why: nothing is reset to $0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from costgov.api import CostPolicy
from costgov.api.advice import ApiUnitCost
from costgov.api.common import Accounting
from costgov.api.costpolicy import Budget, CostPolicyStatus
from costgov.api.fields import Condition
from costgov.domain.budgets import forecast, highest_crossed, newly_crossed, period_bounds
from costgov.domain.budgets import utilization_percent as utilization
from costgov.domain.gateways import RequestKey
from costgov.domain.judging import Judgement, Situation
from costgov.domain.money import cents, usd
from costgov.domain.scoping import api_spend_in_scope, namespace_in_scope
from costgov.domain.selectors import matches
from costgov.domain.spend import PodCost, Totals, totals, unpriced_notes
from costgov.services.accounting import Snapshot
from costgov.services.api_spend import ApiCost, ApiSpend
from costgov.services.api_units import ApiUnit, api_units
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
    pods_condition,
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


@dataclass(frozen=True)
class _Measured:
    """A period's figures so far: GPU time and hosted-API spend in scope, and their rates."""

    gpu: Totals
    api: Decimal
    api_unpriced: tuple[str, ...]
    gpu_burn: Decimal
    api_burn: Decimal
    counted_to: datetime
    api_units: tuple[ApiUnit, ...] = ()
    """The last hour's gateway lines in scope, by team and gateway."""


def _api_lines(
    policy: CostPolicy, spend: ApiSpend | None, inv: Inventory, excluded: frozenset[str]
) -> list[ApiCost]:
    """The gateway lines the policy governs: attributed to a namespace in its scope, or to
    none of the cluster's when it governs the whole cluster."""
    if spend is None:
        return []
    out = []
    for line in spend.lines:
        ns = line.namespace if line.namespace in inv.namespaces else None
        labels = inv.namespace_labels(ns) if ns else {}
        if api_spend_in_scope(
            policy.spec, namespace=ns, namespace_labels=labels, excluded=excluded
        ):
            out.append(line)
    return out


API_NOTE = "API "
"""How an unpriced gateway line's note starts (a pod's starts with its namespace, which
cannot hold a capital or a space)."""


def _api_note(line: ApiCost) -> str:
    u = line.usage
    return f"{API_NOTE}{u.gateway}/{u.model or '-'}/{u.team or '-'}: {line.unpriced}"


def _spend(
    policy: CostPolicy,
    inv: Inventory,
    snapshot: Snapshot,
    namespaces: list[str],
    resume: Resume,
    excluded: frozenset[str],
) -> _Measured | None:
    """This period's spend over the governed pods and gateway lines, or None when not
    measured. The period's unpriced pods stay in the totals for as long as its spend leaves
    them out, not only in the cycle that met them."""
    key = window_key(resume.start)
    window = snapshot.windows.get(key)
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
    pods_before = [n for n in resume.unpriced if not n.startswith(API_NOTE)]
    api_before = [n for n in resume.unpriced if n.startswith(API_NOTE)]
    unpriced = unpriced_notes(pods_before, delta.unpriced)
    api = snapshot.api
    lines = _api_lines(policy, api.windows.get(key) if api else None, inv, excluded)
    hourly = _api_lines(policy, api.hourly if api else None, inv, excluded)
    missed = (
        [f"{API_NOTE}gateways unread: from {key} on ({api.error})"] if api and api.error else []
    )
    return _Measured(
        Totals(resume.spent + delta.cost, delta.gpu_hours, unpriced),
        resume.api_spent + sum((c.cost for c in lines if c.cost is not None), Decimal(0)),
        unpriced_notes(api_before, (_api_note(c) for c in lines if c.cost is None), missed),
        burn,
        sum((c.cost for c in hourly if c.cost is not None), Decimal(0)),
        window.end,
        _units(hourly, api.hourly.requests if api and api.hourly else None),
    )


def _units(
    lines: list[ApiCost], requests: Mapping[RequestKey, Decimal] | None
) -> tuple[ApiUnit, ...]:
    """Unit costs by gateway team of the lines in scope (requests of those teams only)."""
    teams = {c.usage.team for c in lines}
    mine = None if requests is None else {k: n for k, n in requests.items() if k[2] in teams}
    return api_units(((c.usage.team, c) for c in lines), mine, lambda team: team)


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


def _counted(budget: Budget, m: _Measured) -> tuple[Totals, Decimal]:
    """(what the budget counts this period, its $/h now): GPU time, plus hosted-API spend
    when the budget's sources have api (its unpriced lines then noted with the pods')."""
    if "api" not in budget.sources:
        return m.gpu, m.gpu_burn
    cost = (m.gpu.cost if "gpu" in budget.sources else Decimal(0)) + m.api
    gpu_hours = m.gpu.gpu_hours if "gpu" in budget.sources else Decimal(0)
    unpriced = unpriced_notes(m.gpu.unpriced if "gpu" in budget.sources else (), m.api_unpriced)
    burn = (m.gpu_burn if "gpu" in budget.sources else Decimal(0)) + m.api_burn
    return Totals(cost, gpu_hours, unpriced), burn


def _account(
    policy: CostPolicy,
    inv: Inventory,
    snapshot: Snapshot,
    namespaces: list[str],
    old: CostPolicyStatus,
    situation: Situation,
    announced: Announced | None,
) -> tuple[dict[str, object], list[Condition], list[Event], Decimal | None]:
    """Figures for the period: status fields, conditions, threshold events, exact spend."""
    budget, gen, now = policy.spec.budget, policy.metadata.generation or 0, situation.now
    plan = policy_window(policy, old.accounting, old.period_start, now)
    if budget is None or plan is None or snapshot.error:
        return {}, [], [], None
    measured = _spend(policy, inv, snapshot, namespaces, plan, situation.excluded)
    cursor = old.accounting.cursor if old.accounting else None
    caught_up = caught_up_condition(snapshot, window_key(plan.start), cursor, gen, now)
    progress = [caught_up] if caught_up is not None else []
    if measured is None or snapshot.accounted_to is None:
        return {}, progress, [], None
    spent, burn = _counted(budget, measured)
    start, end = period_bounds(now, budget.period)
    projected = forecast(spent.cost, burn, now, end)
    highest = highest_crossed(spent.cost, budget.amount, budget.alert_thresholds)
    prior = _prior_threshold(old, announced, start)
    events = [
        Event("CostPolicy", "", policy.metadata.name, "Warning" if t >= 100 else "Normal",
              "BudgetThresholdCrossed",
              f"spend {usd(spent.cost)} reached {t}% of the {budget.period} budget "
              f"{usd(budget.amount)}")
        for t in newly_crossed(prior, highest, budget.alert_thresholds)
    ]  # fmt: skip
    accounting = Accounting(
        cursor=measured.counted_to, spent=exact(measured.gpu.cost),
        unpriced=list(unpriced_notes(measured.gpu.unpriced, measured.api_unpriced)),
        api_spent=exact(measured.api),
    )  # fmt: skip
    fields: dict[str, object] = {
        "accounting": accounting, "period": budget.period, "period_start": start,
        "spent": cents(spent.cost), "gpu_spent": cents(measured.gpu.cost),
        "api_spent": cents(measured.api), "forecast": cents(projected),
        "budget_utilization_percent": utilization(spent.cost, budget.amount),
        "last_threshold_crossed": highest,
        "figures_as_of": figures_as_of(snapshot, measured.counted_to),
        "unpriced_pods": len(spent.unpriced),
        "api_unit_costs": [_unit_status(u) for u in measured.api_units[:20]],
    }  # fmt: skip
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
    budget = policy.spec.budget
    if budget is not None and "api" in budget.sources and snapshot.api and snapshot.api.error:
        # figures held, as for any failed query: GPU time alone would understate the budget
        snapshot = replace(snapshot, error=snapshot.api.error)
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
        policy, inv, snapshot, namespaces, old, situation, announced
    )
    conditions = [
        condition("Ready", True, "Reconciled", "policy evaluated", generation=gen, now=now),
        metrics_condition(snapshot, gen, now),
        pods_condition(inv.pods_problem(namespaces), gen, now),
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


def _unit_status(u: ApiUnit) -> ApiUnitCost:
    def places(v: Decimal | None) -> str | None:
        return None if v is None else format(v, "f")

    return ApiUnitCost(
        team=u.group, gateway=u.gateway, hourly_cost=cents(u.cost), tokens=int(u.tokens),
        requests=None if u.requests is None else int(u.requests),
        cost_per_million_tokens=places(u.per_million_tokens),
        cost_per_thousand_requests=places(u.per_thousand_requests),
    )  # fmt: skip
