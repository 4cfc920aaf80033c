"""The operator's /metrics from a cycle's snapshot: $/h and a spend counter by namespace
and team (the namespace's `team` label), and unpriced GPU pods; which budgets still exist."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from costgov.adapters.metrics import BudgetKey, OperatorMetrics
from costgov.services.accounting import Snapshot
from costgov.services.inventory import Inventory
from costgov.services.windows import window_key

__all__ = ["export_snapshot", "live_budgets"]


def export_snapshot(
    metrics: OperatorMetrics, snap: Snapshot, inv: Inventory, counted_to: datetime | None
) -> datetime | None:
    """Set the gauges from `snap`; add to the spend counter what was spent since
    `counted_to` (the previous snapshot's end), when `snap` measured a window starting
    exactly there, so no interval is counted twice or skipped silently. Returns where the
    counter now stands: that window's end (sooner than the snapshot's while it catches up a
    chunk at a time), or `counted_to` when its window lags."""

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
        metrics.spend.labels(ns, team(ns))  # at 0 before its first increment (rate() sees it)
    metrics.unpriced.set(unpriced)
    since = next((w for w in snap.windows.values() if w.start == counted_to), None)
    if since is None and counted_to is not None and window_key(counted_to) in snap.lagging:
        return counted_to  # its chunk failed or waits: counted next time, not skipped
    if since is not None:
        by_ns: dict[str, Decimal] = {}
        for line in since.pods:
            if line.cost is not None:
                ns = line.usage.namespace
                by_ns[ns] = by_ns.get(ns, Decimal(0)) + line.cost
        for ns, cost in by_ns.items():
            metrics.spend.labels(ns, team(ns)).inc(float(cost))
        return since.end
    return snap.accounted_to or counted_to


def live_budgets(inv: Inventory) -> set[BudgetKey]:
    """The budgets that exist now: the others' gauges are dropped (no alert for a deleted
    budget)."""
    return {("CostPolicy", "", p.metadata.name) for p in inv.policies} | {
        ("TrainingJobBudget", b.metadata.namespace or "default", b.metadata.name)
        for b in inv.budgets
    }
