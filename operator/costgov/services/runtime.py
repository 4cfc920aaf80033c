"""The operator's process-wide state: settings, prices, clients, the ledger, the last snapshot.

Built once at start and handed to the handlers (kopf's `memo`); nothing here is a module
global, so tests run several operators side by side.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from costgov.adapters.kubernetes import KubeClient
from costgov.adapters.metrics import OperatorMetrics
from costgov.adapters.prometheus import PrometheusSource
from costgov.api import CostPolicy, TrainingJobBudget
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.money import cents
from costgov.domain.resources import covers
from costgov.services.accounting import Snapshot, collect
from costgov.services.admitting import Ledger
from costgov.services.inventory import Inventory
from costgov.services.reconciling import budget_window, policy_window, window_key
from costgov.settings import Settings

__all__ = ["MAX_WINDOWS", "Runtime"]

MAX_WINDOWS = 5


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
        """The windows this cycle queries: one per distinct accounting start, at most
        MAX_WINDOWS, the most shared first (in steady state every resource's cursor is the
        last cycle, so there is one). Resources left out keep their figures a cycle longer."""
        starts: Counter[datetime] = Counter()
        for p in inv.policies:
            plan = policy_window(p, inv.status_of("CostPolicy", "", p.metadata.name), now)
            if plan is not None:
                starts[plan[0]] += 1
        for b in inv.budgets:
            ns = b.metadata.namespace or "default"
            jobs = [j for j in inv.jobs_in(ns) if covers(b, j.workload)]
            start, _ = budget_window(
                b, inv.status_of("TrainingJobBudget", ns, b.metadata.name), jobs, now
            )
            starts[start] += 1
        ranked = sorted(starts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_WINDOWS]
        return {window_key(start): start for start, _ in ranked}

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

    def record_policy(self, policy: CostPolicy, status: Mapping[str, Any]) -> None:
        """Keep what admission needs (spend this period) and export the policy's gauges."""
        name = policy.metadata.name
        if "spent" in status:
            spent = Decimal(status["spent"])
            self.ledger.policy_spent[name] = spent
            if policy.spec.budget is not None and policy.spec.budget.amount > 0:
                self.metrics.budget_utilization.labels("CostPolicy", "", name).set(
                    float(spent / policy.spec.budget.amount)
                )
        self.metrics.violations.labels("CostPolicy", "", name).set(
            len(status.get("violations", []))
        )

    def record_budget(self, budget: TrainingJobBudget, status: Mapping[str, Any]) -> None:
        """Keep a budget's spend and what its running Jobs are still expected to cost."""
        key = (budget.metadata.namespace or "default", budget.metadata.name)
        if "spent" not in status:
            return
        spent = Decimal(status["spent"])
        self.ledger.budget_spent[key] = spent
        if budget.spec.amount > 0:
            self.metrics.budget_utilization.labels("TrainingJobBudget", *key).set(
                float(spent / budget.spec.amount)
            )
        if "projectedTotal" in status:
            self.ledger.budget_committed[key] = cents(Decimal(status["projectedTotal"]) - spent)
        self.metrics.violations.labels("TrainingJobBudget", *key).set(
            len(status.get("violations", []))
        )

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
