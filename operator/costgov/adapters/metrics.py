"""The operator's own /metrics (prometheus-client), in a registry of its own."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["OperatorMetrics"]


def _leadership(r: CollectorRegistry) -> tuple[Gauge, Counter]:
    leader = Gauge(
        "costgov_leader",
        "1 while this replica holds the leader Lease and reconciles, else 0",
        registry=r,
    )
    transitions = Counter(
        "costgov_leader_transitions_total",
        "Times this replica gained or lost the leader Lease",
        ["change"],
        registry=r,
    )
    return leader, transitions


class OperatorMetrics:
    """Every metric costgov exports. One instance per operator (tests make their own)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.hourly_cost = Gauge(
            "costgov_hourly_cost_dollars",
            "Current USD per hour",
            ["namespace", "team", "workload"],
            registry=r,
        )
        self.spend = Gauge(
            "costgov_spend_dollars",
            "USD spent in the window",
            ["namespace", "team", "window"],
            registry=r,
        )
        self.budget_utilization = Gauge(
            "costgov_budget_utilization_ratio",
            "Spent over budget (1 = used up)",
            ["kind", "namespace", "name"],
            registry=r,
        )
        self.violations = Gauge(
            "costgov_violations", "Violations in status", ["kind", "namespace", "name"], registry=r
        )
        self.admissions = Counter(
            "costgov_admission_decisions_total",
            "Admission decisions",
            ["kind", "result"],
            registry=r,
        )
        self.admission_latency = Histogram(
            "costgov_admission_duration_seconds",
            "Time to decide an admission request",
            ["kind"],
            registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.query_errors = Counter(
            "costgov_prometheus_query_errors_total",
            "Accounting cycles with a failed Prometheus query",
            registry=r,
        )
        self.cycles = Counter(
            "costgov_accounting_cycles_total", "Accounting cycles run", registry=r
        )
        self.cycle_duration = Histogram(
            "costgov_accounting_cycle_duration_seconds",
            "Time to take an accounting snapshot (every query, priced)",
            registry=r,
            buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
        )
        self.cycle_queries = Gauge(
            "costgov_accounting_cycle_queries",
            "PromQL queries the last accounting snapshot made",
            registry=r,
        )
        self.unpriced = Gauge(
            "costgov_unpriced_pods", "GPU pods that could not be priced", registry=r
        )
        self.leader, self.leader_transitions = _leadership(r)
        self._decisions: dict[tuple[str, str], tuple[Any, Any]] = {}

    def admission(self, kind: str, result: str, seconds: float) -> None:
        """One admission decision and its latency (label children kept: this is per request)."""
        children = self._decisions.get((kind, result))
        if children is None:
            children = (self.admissions.labels(kind, result), self.admission_latency.labels(kind))
            self._decisions[(kind, result)] = children
        children[0].inc()
        children[1].observe(seconds)

    def clear_figures(self) -> None:
        """Forget what reconciling exported: a replica that stops leading must not go on
        exporting figures next to the leader's (dashboards would count them twice)."""
        for gauge in (self.hourly_cost, self.spend, self.budget_utilization, self.violations):
            gauge.clear()
        self.unpriced.set(0)
