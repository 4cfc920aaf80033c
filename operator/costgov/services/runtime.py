"""The operator's process-wide state: settings, prices, clients, the ledger, the last snapshot.

Built once at start and handed to the handlers (kopf's `memo`); nothing here is a module
global, so tests run several operators side by side.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from costgov.adapters.kubernetes import KubeClient
from costgov.adapters.metrics import OperatorMetrics
from costgov.adapters.prometheus import PrometheusSource
from costgov.api import TrainingJobBudget
from costgov.domain.budgets import period_bounds
from costgov.domain.pricing import PriceCatalog
from costgov.services.accounting import Snapshot, collect
from costgov.services.admitting import Ledger
from costgov.services.inventory import Inventory
from costgov.services.reconciling import budget_window_start
from costgov.settings import Settings

__all__ = ["Runtime"]


@dataclass
class Runtime:
    settings: Settings
    catalog: PriceCatalog
    source: PrometheusSource
    kube: KubeClient | None
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    ledger: Ledger = field(default_factory=Ledger)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """The operator's only clock; tests pin it."""
    last_good: Snapshot | None = None
    _snapshot: Snapshot | None = None
    _taken: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def windows(self, inv: Inventory, now: datetime) -> dict[str, datetime]:
        """The spend windows this cycle needs: month (always), day and budget lifetime if used."""
        out = {"monthly": period_bounds(now, "monthly")[0]}
        if any(p.spec.budget and p.spec.budget.period == "daily" for p in inv.policies):
            out["daily"] = period_bounds(now, "daily")[0]
        budgets: tuple[TrainingJobBudget, ...] = inv.budgets
        if budgets:
            out["lifetime"] = budget_window_start(budgets, now)
        return out

    async def snapshot(self, inv: Inventory, now: datetime | None = None) -> Snapshot:
        """The cycle's snapshot: computed once per half interval, shared by every handler."""
        async with self._lock:
            fresh = time.monotonic() - self._taken < self.settings.reconcile_interval_seconds / 2
            if self._snapshot is not None and fresh and now is None:
                return self._snapshot
            at = now or self.clock()
            snap = await collect(
                self.source,
                self.catalog,
                at=at,
                windows=self.windows(inv, at),
                interval_seconds=max(int(self.settings.reconcile_interval_seconds), 300),
                step_seconds=self.settings.sample_step_seconds,
                live_node_labels=inv.nodes,
            )
            self.metrics.cycles.inc()
            if snap.error:
                self.metrics.query_errors.inc()
            else:
                self.last_good = snap
                self._export(snap, inv)
            self._snapshot, self._taken = snap, time.monotonic()
            return snap

    def _export(self, snap: Snapshot, inv: Inventory) -> None:
        m = self.metrics

        def team(ns: str) -> str:
            return inv.namespaces.get(ns, {}).get("team", "")

        m.hourly_cost.clear()
        unpriced = 0
        for line in snap.hourly:
            if line.cost is None:
                unpriced += 1
                continue
            ns = line.usage.namespace
            m.hourly_cost.labels(ns, team(ns), line.usage.pod).inc(float(line.cost))
        m.unpriced.set(unpriced)
        m.spend.clear()
        for window, spend in snap.windows.items():
            by_ns: dict[str, Decimal] = {}
            for line in spend.pods:
                if line.cost is not None:
                    by_ns[line.usage.namespace] = (
                        by_ns.get(line.usage.namespace, Decimal(0)) + line.cost
                    )
            for ns, cost in by_ns.items():
                m.spend.labels(ns, team(ns), window).set(float(cost))
