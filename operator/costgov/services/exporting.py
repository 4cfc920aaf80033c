"""The operator's /metrics from a cycle's snapshot: $/h and a spend counter by namespace
and team (the namespace's `team` label), unpriced GPU pods, the last hour of hosted-API
spend and its $ per 1M tokens by gateway, model and team; which budgets still exist."""

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

    unpriced, hourly = 0, dict[tuple[str, ...], float]()
    for line in snap.hourly:
        if line.cost is None:
            unpriced += 1
            continue
        ns = line.usage.namespace
        key = (ns, team(ns), line.usage.pod)
        hourly[key] = hourly.get(key, 0.0) + float(line.cost)
        metrics.spend.labels(ns, team(ns))  # at 0 before its first increment (rate() sees it)
    metrics.hourly_cost.replace(hourly)  # whole: a scrape never sees it half filled
    metrics.unpriced.set(unpriced)
    _export_api(metrics, snap)
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


API_SERIES = 500
"""The most label sets the API gauges export (the costliest first): model and team values
come from gateway traffic, and a flood of model names must not flood the metrics."""


def _export_api(metrics: OperatorMetrics, snap: Snapshot) -> None:
    """The last hour of hosted-API spend and its unit cost, by gateway, model and team (none
    while the gateways cannot be read: absent, not $0). Lines that share labels are summed
    first, dollars and tokens alike, so the unit cost is theirs together."""
    metrics.api_hourly.clear()
    metrics.api_per_million.clear()
    metrics.api_per_thousand.clear()
    if snap.api is None or snap.api.hourly is None:
        return
    sums: dict[tuple[str, ...], tuple[Decimal, Decimal, Decimal | None]] = {}
    for line in snap.api.hourly.lines:
        if line.cost is None:
            continue
        u = line.usage
        provider = u.provider or (line.price.provider if line.price else "")
        key = (u.gateway, provider, u.model, u.team, line.namespace)
        tokens = u.tokens.get("input", Decimal(0)) + u.tokens.get("output", Decimal(0))
        cost, counted, requests = sums.get(key, (Decimal(0), Decimal(0), Decimal(0)))
        more = None if requests is None or line.requests is None else requests + line.requests
        sums[key] = (cost + line.cost, counted + tokens, more)
    costliest = sorted(sums.items(), key=lambda kv: (-kv[1][0], kv[0]))[:API_SERIES]
    for labels, (cost, tokens, requests) in costliest:
        metrics.api_hourly.labels(*labels).set(float(cost))
        if tokens > 0:
            metrics.api_per_million.labels(*labels).set(float(cost * 1_000_000 / tokens))
        if requests:  # every line of the label set has its requests counted
            metrics.api_per_thousand.labels(*labels).set(float(cost * 1000 / requests))


def live_budgets(inv: Inventory) -> set[BudgetKey]:
    """The budgets that exist now: the others' gauges are dropped (no alert for a deleted
    budget)."""
    return {("CostPolicy", "", p.metadata.name) for p in inv.policies} | {
        ("TrainingJobBudget", b.metadata.namespace or "default", b.metadata.name)
        for b in inv.budgets
    }
