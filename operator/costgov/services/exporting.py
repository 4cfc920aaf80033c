"""The operator's /metrics gauges from a cycle's snapshot: $/h and spend by namespace and
team (the namespace's `team` label), and unpriced GPU pods; which budgets still exist."""

from __future__ import annotations

from decimal import Decimal

from costgov.adapters.metrics import BudgetKey, OperatorMetrics
from costgov.services.accounting import Snapshot
from costgov.services.inventory import Inventory

__all__ = ["export_snapshot", "live_budgets"]


def export_snapshot(metrics: OperatorMetrics, snap: Snapshot, inv: Inventory) -> None:
    def team(ns: str) -> str:
        return inv.namespaces.get(ns, {}).get("team", "")

    metrics.hourly_cost.clear()
    unpriced = 0
    for line in snap.hourly:
        if line.cost is None:
            unpriced += 1
            continue
        ns = line.usage.namespace
        metrics.hourly_cost.labels(ns, team(ns), line.usage.pod).inc(float(line.cost))
    metrics.unpriced.set(unpriced)
    metrics.spend.clear()
    for window, spend in snap.windows.items():
        by_ns: dict[str, Decimal] = {}
        for line in spend.pods:
            if line.cost is not None:
                by_ns[line.usage.namespace] = (
                    by_ns.get(line.usage.namespace, Decimal(0)) + line.cost
                )
        for ns, cost in by_ns.items():
            metrics.spend.labels(ns, team(ns), window).set(float(cost))


def live_budgets(inv: Inventory) -> set[BudgetKey]:
    """The budgets that exist now: the others' gauges are dropped (no alert for a deleted
    budget)."""
    return {("CostPolicy", "", p.metadata.name) for p in inv.policies} | {
        ("TrainingJobBudget", b.metadata.namespace or "default", b.metadata.name)
        for b in inv.budgets
    }
