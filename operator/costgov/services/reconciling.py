"""Reconcile the three resources: figures, conditions, violations, events, enforcement.

Each function takes the resource, the inventory, the latest snapshot and the old status, and
returns an `Outcome`: the status to write, events to emit, and objects to patch. No I/O here;
the kopf handlers apply the outcome. When the snapshot has an error, the old figures stay
(with their `figuresAsOf`) and MetricsAvailable says why: nothing is reset to $0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from costgov.api import CostPolicy, InferenceDeployment, TrainingJobBudget
from costgov.api.common import Accounting
from costgov.domain.approvals import approval_covers
from costgov.domain.budgets import (
    forecast,
    highest_crossed,
    newly_crossed,
    period_bounds,
    utilization_percent,
)
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.costing import estimate_workload
from costgov.domain.money import HOURS_PER_MONTH, SECONDS_PER_HOUR, cents, usd
from costgov.domain.offerings import Offering
from costgov.domain.policies import Subject, evaluate, in_scope
from costgov.domain.resources import budget_hints, covers, inference_workload
from costgov.domain.selectors import matches
from costgov.domain.spend import PodCost, Totals, idle_cost, totals
from costgov.services.accounting import Snapshot
from costgov.services.conditions import (
    Event,
    ViolationSeen,
    condition,
    merge_conditions,
    merge_violations,
)
from costgov.services.inventory import SUSPENDED_BY, Inventory, JobRecord

__all__ = [
    "INFERENCE_LABEL",
    "Outcome",
    "budget_window",
    "deployment_manifest",
    "policy_window",
    "reconcile_budget",
    "reconcile_inference",
    "reconcile_policy",
    "window_key",
]

INFERENCE_LABEL = "costgov.io/inference-deployment"
DEFAULT_THRESHOLDS = (50, 80, 95, 100)


@dataclass
class Outcome:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    job_patches: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    deployment: dict[str, Any] | None = None


def _m(value: Decimal) -> str:
    return format(cents(value), "f")


def _exact(value: Decimal) -> str:
    """A Decimal as plain digits, never exponent notation (accounting totals stay exact)."""
    return format(value.normalize() if value else Decimal(0), "f")


def _label(offering: Offering | None) -> str:
    return "" if offering is None else offering.label


def _ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _metrics_condition(snapshot: Snapshot, generation: int, now: datetime) -> dict[str, Any]:
    if snapshot.error:
        return condition(
            "MetricsAvailable",
            False,
            "PrometheusUnavailable",
            f"{snapshot.error}; figures kept from the last good cycle",
            generation=generation,
            now=now,
        )
    message = "; ".join(snapshot.warnings) if snapshot.warnings else "Prometheus answered"
    reason = "PrometheusWarnings" if snapshot.warnings else "Queried"
    return condition(
        "MetricsAvailable", True, reason, message[:2000], generation=generation, now=now
    )


def _enforcing(
    policies: tuple[CostPolicy, ...], namespace: str, inv: Inventory, labels: Mapping[str, str]
) -> list[CostPolicy]:
    return [
        p
        for p in policies
        if in_scope(
            p.spec,
            namespace=namespace,
            namespace_labels=inv.namespace_labels(namespace),
            workload_labels=labels,
        )
    ]


# ------------------------------------------------------------------------------- windows

MAX_LOOKBACK = timedelta(days=92)


def window_key(start: datetime) -> str:
    """The name of the snapshot window that starts at `start`."""
    return _ts(start)


def _accounting(old: Mapping[str, Any]) -> Accounting | None:
    raw = old.get("accounting")
    if not raw:
        return None
    try:
        return Accounting.model_validate(raw)
    except ValidationError:
        return None


def policy_window(
    policy: CostPolicy, old: Mapping[str, Any], now: datetime
) -> tuple[datetime, Decimal] | None:
    """(start, spend already counted) for a policy's budget period, or None without budget.

    Resumes at the accounting cursor within the same period; a new period starts from zero.
    """
    if policy.spec.budget is None:
        return None
    start, _ = period_bounds(now, policy.spec.budget.period)
    acct = _accounting(old)
    if acct is not None and acct.cursor >= start and old.get("periodStart") == _ts(start):
        return acct.cursor, Decimal(acct.spent)
    return start, Decimal(0)


def _created(meta_extra: Mapping[str, Any] | None, now: datetime) -> datetime:
    stamp = (meta_extra or {}).get("creationTimestamp")
    if isinstance(stamp, str):
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return now


def budget_window(
    budget: TrainingJobBudget, old: Mapping[str, Any], jobs: Iterable[JobRecord], now: datetime
) -> tuple[datetime, Accounting | None]:
    """(start, totals already counted) for a budget: its cursor, or else from when the budget
    or the first of its Jobs started (at most 92 days back)."""
    acct = _accounting(old)
    if acct is not None:
        return acct.cursor, acct
    starts = [j.started for j in jobs if j.started is not None]
    first = min([_created(budget.metadata.model_extra, now), *starts])
    return max(first, now - MAX_LOOKBACK), None


# ---------------------------------------------------------------------------------- policy


def reconcile_policy(
    policy: CostPolicy,
    inv: Inventory,
    snapshot: Snapshot,
    *,
    now: datetime,
    catalog: PriceCatalog,
    old: Mapping[str, Any],
    audit: Iterable[ViolationSeen] = (),
) -> Outcome:
    """`audit`: violations admitted in audit mode in the last day, to record in status."""
    spec, gen = policy.spec, policy.metadata.generation or 0
    namespaces = sorted(
        ns
        for ns in inv.namespaces
        if in_scope(
            spec, namespace=ns, namespace_labels=inv.namespace_labels(ns), workload_labels={}
        )
    )
    scoped = set(namespaces)
    jobs = [
        j
        for j in inv.jobs
        if j.namespace in scoped and matches(spec.scope.workload_selector, j.workload.labels)
    ]
    pods_by_key = {(p.namespace, p.name): p for p in inv.pods}

    def governed(cost: PodCost) -> bool:
        if cost.usage.namespace not in scoped:
            return False
        pod = pods_by_key.get(cost.usage.key)
        return pod is None or matches(spec.scope.workload_selector, pod.labels)

    # Audit: what runs in scope is judged by the same engine as admission (budget apart: the
    # budget is judged as a whole below, not against work already admitted).
    audit_spec = spec.model_copy(update={"budget": None})
    seen = list(audit)
    for job in jobs:
        if job.finished:
            continue
        est = estimate_workload(job.workload, catalog)
        verdict = evaluate(policy.metadata.name, audit_spec, Subject(estimate=est), now=now)
        seen += [
            ViolationSeen("Job", job.namespace, job.name, v.rule, v.severity, v.message)
            for v in verdict.violations
        ]
    violations, fresh = merge_violations(old.get("violations") or [], seen, now)
    events = [
        Event(
            v.kind,
            v.namespace,
            v.name,
            "Warning",
            "CostPolicyViolation",
            f"[{policy.metadata.name}] {v.rule}: {v.message}",
        )
        for v in fresh
    ]
    status: dict[str, Any] = {
        "observedGeneration": gen,
        "matchedNamespaces": namespaces[:1000],
        "matchedWorkloads": len(jobs)
        + sum(1 for i in inv.inference if i.metadata.namespace in scoped),
        "violations": violations,
    }
    conds = [
        condition("Ready", True, "Reconciled", "policy evaluated", generation=gen, now=now),
        _metrics_condition(snapshot, gen, now),
    ]
    window_plan = policy_window(policy, old, now)
    if spec.budget is not None and window_plan is not None and not snapshot.error:
        budget = spec.budget
        start, end = period_bounds(now, budget.period)
        window = snapshot.windows.get(window_key(window_plan[0]))
        if window is not None and snapshot.accounted_to is not None:
            before = window_plan[1]
            delta = totals(
                c for ns in namespaces for c in window.by_namespace.get(ns, ()) if governed(c)
            )
            spent = Totals(before + delta.cost, delta.gpu_hours, delta.unpriced)
            burn = totals(
                c
                for ns in namespaces
                for c in snapshot.hourly_by_namespace.get(ns, ())
                if governed(c)
            ).cost
            projected = forecast(spent.cost, burn, now, end)
            pct = utilization_percent(spent.cost, budget.amount)
            highest = highest_crossed(spent.cost, budget.amount, budget.alert_thresholds)
            status["accounting"] = {
                "cursor": _ts(snapshot.accounted_to),
                "spent": _exact(spent.cost),
            }
            # Once per crossing: thresholds above the last one recorded this period.
            prior = (
                old.get("lastThresholdCrossed") if old.get("periodStart") == _ts(start) else None
            )
            for t in newly_crossed(prior, highest, budget.alert_thresholds):
                events.append(
                    Event(
                        "CostPolicy",
                        "",
                        policy.metadata.name,
                        "Warning" if t >= 100 else "Normal",
                        "BudgetThresholdCrossed",
                        f"spend {usd(spent.cost)} reached {t}% of the "
                        f"{budget.period} budget {usd(budget.amount)}",
                    )
                )
            status.update(
                {
                    "periodStart": _ts(start),
                    "spent": _m(spent.cost),
                    "forecast": _m(projected),
                    "budgetUtilizationPercent": pct,
                    "lastThresholdCrossed": highest,
                    "figuresAsOf": _ts(snapshot.at),
                }
            )
            first = budget.alert_thresholds[0]
            conds.append(
                condition(
                    "BudgetWarning",
                    first <= pct < 100,
                    "ThresholdCrossed" if pct >= first else "UnderThreshold",
                    f"{pct}% of {usd(budget.amount)} spent; forecast {usd(projected)} at period end",
                    generation=gen,
                    now=now,
                )
            )
            conds.append(
                condition(
                    "BudgetExceeded",
                    pct >= 100,
                    "BudgetSpent" if pct >= 100 else "WithinBudget",
                    f"spent {usd(spent.cost)} of {usd(budget.amount)}"
                    + (f"; {len(spent.unpriced)} pod(s) unpriced" if spent.unpriced else ""),
                    generation=gen,
                    now=now,
                )
            )
    status["conditions"] = merge_conditions(old.get("conditions") or [], conds)
    return Outcome(status, events)


# ---------------------------------------------------------------------------------- budget


def _phase(spent: Decimal, amount: Decimal, jobs: list[JobRecord], approved: bool) -> str:
    if spent >= amount and amount > 0:
        return "Exhausted"
    if jobs and all(j.finished for j in jobs):
        return "Completed"
    if any(j.active or j.started for j in jobs if not j.finished):
        return "Active"
    return "Approved" if approved else "Pending"


def reconcile_budget(
    budget: TrainingJobBudget,
    inv: Inventory,
    snapshot: Snapshot,
    *,
    now: datetime,
    catalog: PriceCatalog,
    old: Mapping[str, Any],
) -> Outcome:
    spec, gen = budget.spec, budget.metadata.generation or 0
    ns, name = budget.metadata.namespace or "default", budget.metadata.name
    jobs = [j for j in inv.jobs_in(ns) if covers(budget, j.workload)]
    hints = budget_hints(spec.hints)
    estimates = {
        j.name: estimate_workload(
            j.workload,
            catalog,
            budget_hints=hints,
            max_duration=spec.max_duration,
            checkpointing=spec.checkpointing,
        )
        for j in jobs
    }
    estimated = [e.amount for e in estimates.values()]
    status: dict[str, Any] = {"observedGeneration": gen}
    if None not in estimated:
        status["estimated"] = _m(sum((a for a in estimated if a is not None), Decimal(0)))
    approved = approval_covers(spec.approval, Decimal(status.get("estimated", 0)), now).ok
    conds = [
        condition(
            "Ready", True, "Reconciled", f"{len(jobs)} Job(s) covered", generation=gen, now=now
        ),
        _metrics_condition(snapshot, gen, now),
    ]
    events: list[Event] = []
    patches: list[tuple[str, str, dict[str, Any]]] = []
    seen: list[ViolationSeen] = []
    spent_value = Decimal(str(old["spent"])) if old.get("spent") is not None else None
    start, acct = budget_window(budget, old, jobs, now)
    window = snapshot.windows.get(window_key(start))
    if not snapshot.error and window is not None and snapshot.accounted_to is not None:
        names = {j.name for j in jobs}

        def owned(c: PodCost) -> bool:
            return c.usage.namespace == ns and snapshot.owners.get(c.usage.key) in names

        mine = [c for c in window.by_namespace.get(ns, ()) if owned(c)]
        delta = totals(mine)
        base = Decimal(acct.spent) if acct else Decimal(0)
        spent = Totals(base + delta.cost, delta.gpu_hours, delta.unpriced)
        burn = totals(c for c in snapshot.hourly_by_namespace.get(ns, ()) if owned(c)).cost
        spent_value = spent.cost
        remaining = spec.amount - spent.cost
        more = Decimal(0)
        projected_known = True
        for j in jobs:
            e = estimates[j.name]
            if j.finished or j.workload.suspended:
                continue  # done, or not burning while suspended
            if e.hourly is None:
                projected_known = False
                continue
            elapsed = (
                Decimal((now - j.started).total_seconds()) / SECONDS_PER_HOUR
                if (j.started)
                else Decimal(0)
            )
            more += e.hourly * max(Decimal(0), e.hours - elapsed)
        idle = (Decimal(acct.idle) if acct else Decimal(0)) + sum(
            (
                idle_cost(c.cost, window.utilization[c.usage.key])
                for c in mine
                if c.cost is not None and c.usage.key in window.utilization
            ),
            Decimal(0),
        )
        # Exact per-Job totals: what was counted before plus this window.
        accounts = {
            a.name: (Decimal(a.cost), Decimal(a.gpu_hours)) for a in (acct.jobs if acct else [])
        }
        for j in jobs:
            job_delta = totals(c for c in mine if snapshot.owners.get(c.usage.key) == j.name)
            cost, hours = accounts.get(j.name, (Decimal(0), Decimal(0)))
            accounts[j.name] = (cost + job_delta.cost, hours + job_delta.gpu_hours)
        by_name = {j.name: j for j in jobs}
        lines = []
        for job_name, (cost, gpu_hours) in accounts.items():
            job = by_name.get(job_name)
            gpus = job.workload.total_gpus if job else 0
            lines.append(
                {
                    "name": job_name,
                    "gpus": gpus,
                    "hours": format((gpu_hours / (gpus or 1)).quantize(Decimal("0.01")), "f"),
                    "cost": _m(cost),
                    "pricedAs": _label(estimates[job_name].offering)
                    if job_name in estimates
                    else "",
                }
            )
        status["accounting"] = {
            "cursor": _ts(snapshot.accounted_to),
            "spent": _exact(spent.cost),
            "idle": _exact(idle),
            "jobs": [
                {"name": n, "cost": _exact(c), "gpuHours": _exact(h)}
                for n, (c, h) in list(accounts.items())[:200]
            ],
        }
        status.update(
            {
                "spent": _m(spent.cost),
                "remaining": _m(remaining),
                "burnRatePerHour": _m(burn),
                "idleGPUCost": _m(idle),
                "jobs": lines[:200],
                "figuresAsOf": _ts(snapshot.at),
            }
        )
        if projected_known:
            status["projectedTotal"] = _m(spent.cost + more)
        if burn > 0:
            hours = max(remaining, Decimal(0)) / burn
            status["projectedExhaustion"] = _ts(now + timedelta(seconds=float(hours * 3600)))
        highest = highest_crossed(spent.cost, spec.amount, DEFAULT_THRESHOLDS)
        status["lastThresholdCrossed"] = highest
        for t in newly_crossed(old.get("lastThresholdCrossed"), highest, DEFAULT_THRESHOLDS):
            events.append(
                Event(
                    "TrainingJobBudget",
                    ns,
                    name,
                    "Warning" if t >= 100 else "Normal",
                    "BudgetThresholdCrossed",
                    f"spent {usd(spent.cost)}, {t}% of {usd(spec.amount)}",
                )
            )
        if spent.unpriced:
            conds.append(
                condition(
                    "Priced",
                    False,
                    "UnpricedPods",
                    "; ".join(spent.unpriced)[:2000],
                    generation=gen,
                    now=now,
                )
            )
    exhausted = spent_value is not None and spent_value >= spec.amount
    conds.append(
        condition(
            "BudgetExceeded",
            exhausted if spent_value is not None else None,
            "BudgetSpent" if exhausted else "WithinBudget",
            f"spent {usd(spent_value)} of {usd(spec.amount)}"
            if spent_value is not None
            else "spend not known yet",
            generation=gen,
            now=now,
        )
    )
    # Enforcement: suspend covered Jobs when exhausted under an enforcing `suspend` policy;
    # resume the ones we suspended when the budget allows it again.
    suspending = [
        p
        for p in _enforcing(inv.policies, ns, inv, budget.metadata.labels)
        if p.spec.mode == "enforce"
        and p.spec.budget is not None
        and p.spec.budget.on_exceeded == "suspend"
    ]
    suspended = []
    for j in jobs:
        if exhausted and suspending and not j.finished:
            suspended.append(j.name)
            seen.append(
                ViolationSeen(
                    "Job",
                    ns,
                    j.name,
                    "trainingJobBudget.exhausted",
                    "error",
                    f"TrainingJobBudget {name} spent {usd(spent_value or Decimal(0))} of "
                    f"{usd(spec.amount)}; Job suspended by policy "
                    f"{suspending[0].metadata.name}. Raise spec.amount to resume",
                )
            )
            if not j.workload.suspended:
                patches.append(
                    (
                        ns,
                        j.name,
                        {
                            "spec": {"suspend": True},
                            "metadata": {"annotations": {SUSPENDED_BY: name}},
                        },
                    )
                )
                events.append(
                    Event(
                        "Job",
                        ns,
                        j.name,
                        "Warning",
                        "SuspendedOverBudget",
                        f"TrainingJobBudget {name} is exhausted "
                        f"({usd(spent_value or Decimal(0))} of {usd(spec.amount)})",
                    )
                )
        elif j.suspended_by == name and j.workload.suspended and not exhausted:
            patches.append(
                (
                    ns,
                    j.name,
                    {"spec": {"suspend": False}, "metadata": {"annotations": {SUSPENDED_BY: None}}},
                )
            )
            events.append(
                Event(
                    "Job",
                    ns,
                    j.name,
                    "Normal",
                    "Resumed",
                    f"TrainingJobBudget {name} has budget left again",
                )
            )
    violations, fresh = merge_violations(old.get("violations") or [], seen, now)
    events += [
        Event("TrainingJobBudget", ns, name, "Warning", "BudgetViolation", f"{v.rule}: {v.message}")
        for v in fresh
    ]
    status.update(
        {
            "phase": _phase(spent_value or Decimal(0), spec.amount, jobs, approved),
            "suspendedJobs": suspended,
            "violations": violations,
            "conditions": merge_conditions(old.get("conditions") or [], conds),
        }
    )
    return Outcome(status, events, patches)


# ------------------------------------------------------------------------------- inference

_GPU_PRODUCTS = {
    "H100": ["NVIDIA-H100-80GB-HBM3"],
    "A100-80GB": ["NVIDIA-A100-SXM4-80GB"],
    "A100-40GB": ["NVIDIA-A100-SXM4-40GB"],
    "L4": ["NVIDIA-L4"],
    "L40S": ["NVIDIA-L40S"],
    "A10G": ["NVIDIA-A10G"],
    "T4": ["Tesla-T4"],
}


def deployment_manifest(idep: InferenceDeployment, replicas: int) -> dict[str, Any]:
    """The Deployment the operator owns for an InferenceDeployment."""
    spec, name = idep.spec, idep.metadata.name
    selector: dict[str, str] = {}
    if spec.gpu.instance_type:
        selector["node.kubernetes.io/instance-type"] = spec.gpu.instance_type
    if spec.capacity_type != "any":
        selector["karpenter.sh/capacity-type"] = spec.capacity_type
    pod_spec: dict[str, Any] = {
        "containers": [
            {
                "name": "server",
                "image": spec.image,
                "args": list(spec.args),
                "ports": [{"name": "http", "containerPort": spec.port}],
                "resources": {"limits": {"nvidia.com/gpu": str(spec.gpu.count)}},
            }
        ],
        "nodeSelector": selector,
    }
    products = _GPU_PRODUCTS.get(spec.gpu.model)
    if products and not spec.gpu.instance_type:
        pod_spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "nvidia.com/gpu.product",
                                    "operator": "In",
                                    "values": products,
                                }
                            ]
                        }
                    ]
                }
            }
        }
    labels = {INFERENCE_LABEL: name, "app.kubernetes.io/managed-by": "costgov"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": idep.metadata.namespace or "default",
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": idep.api_version,
                    "kind": "InferenceDeployment",
                    "name": name,
                    "uid": idep.metadata.uid or "",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {INFERENCE_LABEL: name}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def reconcile_inference(
    idep: InferenceDeployment,
    inv: Inventory,
    snapshot: Snapshot,
    *,
    now: datetime,
    catalog: PriceCatalog,
    old: Mapping[str, Any],
    ready_replicas: int,
) -> Outcome:
    spec, gen = idep.spec, idep.metadata.generation or 0
    ns, name = idep.metadata.namespace or "default", idep.metadata.name
    est = estimate_workload(inference_workload(idep), catalog)
    subject = Subject(
        estimate=est, monthly_budget=spec.monthly_budget, min_replicas=spec.replicas.min
    )
    enforcing = [
        p
        for p in _enforcing(inv.policies, ns, inv, idep.metadata.labels)
        if p.spec.mode == "enforce"
    ]
    replicas, capped = spec.replicas.max, None
    affordable = subject.affordable_replicas
    conds = [_metrics_condition(snapshot, gen, now)]
    if affordable is not None and affordable < spec.replicas.max:
        if enforcing:
            replicas = capped = affordable
            message = (
                f"{spec.replicas.max} replicas would cost {usd(est.amount or Decimal(0))}/month, "
                f"over the {usd(spec.monthly_budget or Decimal(0))} budget; capped at {affordable} "
                f"by policy {enforcing[0].metadata.name}"
            )
        else:
            message = (
                f"{spec.replicas.max} replicas would exceed the monthly budget; no "
                "enforcing policy, so not capped"
            )
        conds.append(
            condition(
                "BudgetCapped", bool(enforcing), "OverBudget", message, generation=gen, now=now
            )
        )
    else:
        conds.append(
            condition(
                "BudgetCapped",
                False,
                "WithinBudget",
                "the budget affords the maximum replicas",
                generation=gen,
                now=now,
            )
        )
    status: dict[str, Any] = {
        "observedGeneration": gen,
        "replicas": replicas,
        "cappedReplicas": capped,
        "readyReplicas": ready_replicas,
    }
    recs: list[dict[str, Any]] = []
    if not snapshot.error:
        pods = {
            (p.namespace, p.name)
            for p in inv.pods
            if p.namespace == ns and p.labels.get(INFERENCE_LABEL) == name
        }
        mine = [c for c in snapshot.hourly_by_namespace.get(ns, ()) if c.usage.key in pods]
        hourly = totals(mine)
        monthly = hourly.cost * HOURS_PER_MONTH
        interval_cost = hourly.cost * snapshot.interval_seconds / SECONDS_PER_HOUR
        tokens = sum(snapshot.tokens.get(k, 0.0) for k in pods)
        reqs = sum(snapshot.requests.get(k, 0.0) for k in pods)
        utils = [snapshot.utilization[k] for k in pods if k in snapshot.utilization]
        status.update(
            {
                "hourlyCost": _m(hourly.cost),
                "projectedMonthlyCost": _m(monthly),
                "figuresAsOf": _ts(snapshot.at),
            }
        )
        if tokens > 0:
            status["costPerMillionTokens"] = _m(
                interval_cost * Decimal(1_000_000) / Decimal(repr(tokens))
            )
        if reqs > 0:
            status["costPerThousandRequests"] = _m(interval_cost * 1000 / Decimal(repr(reqs)))
        if utils:
            util = sum(utils) / len(utils)
            status["gpuUtilizationPercent"] = int(util)
            status["idleGPUCost"] = _m(idle_cost(monthly, util))
            if util < 30 and replicas > spec.replicas.min:
                recs.append(
                    {
                        "kind": "fewer-replicas",
                        "message": f"GPUs are {util:.0f}% busy: {spec.replicas.min} replica(s) may do",
                        "monthlySaving": _m(monthly * (replicas - spec.replicas.min) / replicas),
                    }
                )
        hosted = spec.hosted_api_price_per_million_tokens
        measured = status.get("costPerMillionTokens")
        if hosted is not None and measured is not None and Decimal(measured) > hosted:
            recs.append(
                {
                    "kind": "hosted-api",
                    "message": f"serving costs ${measured} per 1M tokens; the hosted API charges "
                    f"{usd(hosted)}",
                }
            )
    if est.spot is not None:
        recs.append(
            {
                "kind": "spot",
                "message": f"{est.spot.label} would save {est.spot.saving_percent}% "
                f"({est.spot.eligible_because})",
                "monthlySaving": _m(est.spot.saving),
            }
        )
    status["recommendations"] = recs[:10]
    conds.insert(
        0,
        condition(
            "Ready",
            ready_replicas >= min(replicas, 1),
            "DeploymentReady" if ready_replicas else "Waiting",
            f"{ready_replicas}/{replicas} replicas ready",
            generation=gen,
            now=now,
        ),
    )
    status["conditions"] = merge_conditions(old.get("conditions") or [], conds)
    events = []
    if capped is not None and old.get("cappedReplicas") != capped:
        events.append(
            Event(
                "InferenceDeployment", ns, name, "Warning", "ReplicasCapped", conds[-1]["message"]
            )
        )
    return Outcome(status, events, deployment=deployment_manifest(idep, replicas))
