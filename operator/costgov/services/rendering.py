"""Render an estimate `Report` as a table for people or as JSON for machines.

The JSON shape is documented in docs/cli.md; `schema` says which version of it this is.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from costgov.domain.costing import Estimate, GroupPrice
from costgov.domain.money import cents, usd
from costgov.domain.verdicts import Verdict
from costgov.domain.workloads import gpu_figure
from costgov.services.estimating import BudgetLine, PolicyLine, Report, WorkloadLine

__all__ = ["JSON_SCHEMA_VERSION", "render_json", "render_table", "report_dict"]

JSON_SCHEMA_VERSION = "costgov.io/estimate/v1"


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(cents(value), "f")


def _hours(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")).normalize(), "f")


def _verdict(v: Verdict) -> dict[str, Any]:
    return {
        "policy": v.policy,
        "mode": v.mode,
        "action": v.action,
        "violations": [
            {
                "rule": x.rule,
                "severity": x.severity,
                "message": x.message,
                "figures": dict(x.figures),
            }
            for x in v.violations
        ],
        "spotRecommended": v.spot is not None,
    }


def _group(p: GroupPrice) -> dict[str, Any]:
    return {
        "name": p.group.name,
        "pods": p.group.pods,
        "gpusPerPod": gpu_figure(p.group.gpu_equivalents),
        "pricedAs": p.offering.label if p.offering else None,
        "hourly": _money(p.hourly),
        "unpriced": p.unpriced,
    }


def _estimate(e: Estimate) -> dict[str, Any]:
    o, w = e.offering, e.workload
    return {
        "kind": w.kind,
        "namespace": w.namespace,
        "name": w.name,
        "pods": w.pods,
        "gpusPerPod": w.gpus_per_pod,
        "gpus": gpu_figure(w.total_gpus),
        "gpuModel": e.gpu_model,
        "pricedAs": o.label if o else None,
        "provider": o.provider if o else None,
        "region": o.region if o else None,
        "capacityType": o.capacity.value if o else None,
        "priceSource": o.source if o else None,
        "hourly": _money(e.hourly),
        "hours": _hours(e.hours),
        "hoursSource": e.hours_source.value,
        "estimate": _money(e.amount),
        "unpriced": e.unpriced,
        "notes": list(e.notes),
        "groups": [_group(p) for p in e.parts] if w.groups else None,
        "schedule": None
        if w.schedule is None
        else {
            "expression": w.schedule.expression,
            "runsPerMonth": format(w.schedule.runs_per_month.quantize(Decimal("0.01")), "f"),
            "hoursPerRun": _hours(e.run_hours) if e.run_hours is not None else None,
            "perRun": _money(e.per_run),
        },
        "spot": None
        if e.spot is None
        else {
            "pricedAs": e.spot.label,
            "onDemandCost": _money(e.spot.on_demand_cost),
            "spotCost": _money(e.spot.spot_cost),
            "saving": _money(e.spot.saving),
            "savingPercent": str(e.spot.saving_percent),
            "eligibleBecause": e.spot.eligible_because,
            "assumption": e.spot.assumption,
        },
    }


def _workload(line: WorkloadLine) -> dict[str, Any]:
    return {
        "source": line.source,
        **_estimate(line.estimate),
        "trainingJobBudget": line.budget,
        "affordableReplicas": line.affordable_replicas,
        "action": line.action,
        "verdicts": [_verdict(v) for v in line.verdicts],
    }


def _budget(line: BudgetLine) -> dict[str, Any]:
    b = line.budget
    return {
        "source": line.source,
        "namespace": b.metadata.namespace or "default",
        "name": b.metadata.name,
        "amount": _money(b.spec.amount),
        "estimated": _money(line.estimated),
        "remaining": _money(line.remaining),
        "jobs": [
            {
                "name": e.workload.name,
                "gpus": gpu_figure(e.workload.total_gpus),
                "hours": _hours(e.hours),
                "estimate": _money(e.amount),
            }
            for e in line.jobs
        ],
        "approval": None
        if b.spec.approval is None
        else b.spec.approval.model_dump(mode="json", by_alias=True),
    }


def _policy(line: PolicyLine) -> dict[str, Any]:
    budget = line.policy.spec.budget
    return {
        "source": line.source,
        "name": line.policy.metadata.name,
        "mode": line.policy.spec.mode,
        "budget": None
        if budget is None
        else {
            "amount": _money(budget.amount),
            "period": budget.period,
            "onExceeded": budget.on_exceeded,
        },
        "workloads": line.workloads,
        "inScopeEstimate": _money(line.in_scope_estimate),
        "unpriced": line.unpriced,
        "utilizationPercent": line.utilization,
        "thresholdCrossed": line.threshold,
        "denied": line.denied,
    }


def report_dict(report: Report) -> dict[str, Any]:
    """The JSON document, as plain data."""
    actions = [w.action for w in report.workloads]
    return {
        "schema": JSON_SCHEMA_VERSION,
        "generatedAt": report.generated_at.isoformat(),
        "catalogVersion": report.catalog_version,
        "workloads": [_workload(w) for w in report.workloads],
        "trainingJobBudgets": [_budget(b) for b in report.budgets],
        "policies": [_policy(p) for p in report.policies],
        "skippedKinds": dict(report.skipped),
        "unreadable": list(report.unreadable),
        "summary": {
            "workloads": len(report.workloads),
            "unpriced": sum(1 for w in report.workloads if w.estimate.unpriced),
            "denied": actions.count("deny"),
            "warned": actions.count("warn"),
            "audited": actions.count("audit"),
            "exitCode": report.exit_code,
        },
    }


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2) + "\n"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*headers).rstrip(), *(fmt.format(*r).rstrip() for r in rows)]


def _approval(line: BudgetLine) -> str:
    approval = line.budget.spec.approval
    return "-" if approval is None else f"{usd(approval.amount)} by {approval.approved_by}"


def _workload_rows(report: Report) -> list[str]:
    rows = []
    for w in report.workloads:
        e = w.estimate
        rows.append(
            [
                f"{e.workload.kind}/{e.workload.namespace}/{e.workload.name}",
                str(gpu_figure(e.workload.total_gpus)),
                e.offering.label if e.offering else "UNPRICED",
                usd(e.hourly) if e.hourly is not None else "-",
                _hours(e.hours) + ("" if e.hours_source.value == "activeDeadlineSeconds" else "*"),
                usd(e.amount) if e.amount is not None else "-",
                f"{usd(e.spot.spot_cost)} (-{e.spot.saving_percent}%)" if e.spot else "-",
                w.action.upper(),
            ]
        )
    header = ["WORKLOAD", "GPUS", "PRICED AS", "$/HOUR", "HOURS", "ESTIMATE", "SPOT ALTERNATIVE"]
    out = _table([*header, "VERDICT"], rows)
    if any(w.estimate.hours_source.value != "activeDeadlineSeconds" for w in report.workloads):
        out.append(
            "* hours from a budget's maxDuration, a CronJob's month of scheduled runs, or one "
            "month (730 h) for long-running or unbounded workloads"
        )
    return out


def _budget_rows(report: Report) -> list[str]:
    if not report.budgets:
        return []
    rows = [
        [
            f"{b.budget.metadata.namespace or 'default'}/{b.budget.metadata.name}",
            usd(b.budget.spec.amount),
            usd(b.estimated) if b.estimated is not None else "UNPRICED",
            usd(b.remaining) if b.remaining is not None else "-",
            str(len(b.jobs)),
            _approval(b),
        ]
        for b in report.budgets
    ]
    header = ["BUDGET", "AMOUNT", "ESTIMATED", "REMAINING", "JOBS", "APPROVAL"]
    return ["", "TrainingJobBudgets:", *_table(header, rows)]


def _policy_rows(report: Report) -> list[str]:
    if not report.policies:
        return []
    rows = []
    for p in report.policies:
        budget = p.policy.spec.budget
        rows.append(
            [
                p.policy.metadata.name,
                p.policy.spec.mode,
                f"{usd(budget.amount)}/{budget.period}" if budget else "-",
                str(p.workloads),
                usd(p.in_scope_estimate) + (f"/{budget.period}" if budget else ""),
                f"{p.utilization}%" if p.utilization is not None else "-",
                str(p.denied),
            ]
        )
    header = ["POLICY", "MODE", "BUDGET", "IN SCOPE", "ESTIMATED", "OF BUDGET", "DENIED"]
    return ["", "CostPolicies:", *_table(header, rows)]


def _details(report: Report) -> list[str]:
    details = []
    for w in report.workloads:
        e = w.estimate
        ref = f"{e.workload.kind}/{e.workload.namespace}/{e.workload.name}"
        if e.unpriced:
            details.append(f"  {ref}: UNPRICED: {e.unpriced}")
        for v in w.verdicts:
            for x in v.violations:
                details.append(f"  {ref}: [{v.policy} {v.mode}] {x.severity} {x.rule}: {x.message}")
            if v.spot is not None and e.spot is not None:
                details.append(
                    f"  {ref}: [{v.policy}] spot recommended: {e.spot.label} costs "
                    f"{usd(e.spot.spot_cost)} instead of {usd(e.spot.on_demand_cost)}, saving "
                    f"{usd(e.spot.saving)} ({e.spot.saving_percent}%), because "
                    f"{e.spot.eligible_because}; assumes {e.spot.assumption}"
                )
        details.extend(f"  {ref}: note: {n}" for n in e.notes)
    return ["", "Details:", *details] if details else []


def render_table(report: Report) -> str:
    """The human view: workloads, then budgets, policies, and every violation in full."""
    out: list[str] = [f"Price catalog {report.catalog_version}. Estimates in USD.", ""]
    out += _workload_rows(report) + _budget_rows(report) + _policy_rows(report)
    out += _details(report)
    if report.skipped:
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(report.skipped.items()))
        out += ["", f"Skipped (nothing to price): {kinds}"]
    if report.unreadable:
        out += ["", "Skipped (not Kubernetes YAML; render Helm charts first, e.g.", "  "
                "`helm template . | costgov estimate -f -`):"]  # fmt: skip
        out += [f"  {line}" for line in report.unreadable]
    verdict = "DENIED" if report.exit_code else "OK"
    out += ["", f"Result: {verdict}: {report.denied} workload(s) denied by an enforce-mode policy."]
    return "\n".join(out) + "\n"
