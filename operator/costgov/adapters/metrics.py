"""The operator's own /metrics (prometheus-client), in a registry of its own.

Names follow Prometheus' conventions: base units in the name (`_dollars`, `_seconds`,
`_ratio`), `_total` on counters only, `_info` for the constant build series. Every metric is
listed, with its labels and meaning, in docs/operator.md ("/metrics"); the chart's alerts
(charts/costgov/files/prometheus-rules.yaml) read them by these names.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from contextlib import suppress
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from costgov import __version__
from costgov.adapters.exposition import ReplacedGauge
from costgov.domain.anomalies import Anomaly

__all__ = [
    "ADMISSION_RESULTS",
    "REREAD_OUTCOMES",
    "WEBHOOK_ERROR_REASONS",
    "BudgetKey",
    "OperatorMetrics",
    "RereadOutcome",
]

BudgetKey = tuple[str, str, str]
"""(kind, namespace, name) of a CostPolicy (namespace "") or TrainingJobBudget."""

WEBHOOK_ERROR_REASONS = ("not_found", "too_large", "invalid", "exception", "internal")
"""Why a webhook request ended in an error answer (docs/operator.md, "/metrics")."""
ADMISSION_RESULTS = ("allowed", "warned", "audited", "denied")
"""costgov_admission_decisions_total's `result` values."""
RereadOutcome = Literal["unchanged", "changed", "failed"]
REREAD_OUTCOMES: tuple[RereadOutcome, ...] = ("unchanged", "changed", "failed")
"""costgov_admission_rereads_total's `outcome` values: judged again on a fresh read, the
answer (allowed or denied, or its message) stayed the same or changed; or no read could be
made within the deadline (the cached answer stands)."""


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
        self.build_info = Info("costgov_build", "costgov's version", registry=r)
        self.build_info.info({"version": __version__})
        self.hourly_cost = ReplacedGauge(  # a series per pod, replaced once per cycle
            "costgov_hourly_cost_dollars",
            "Current USD per hour",
            ["namespace", "team", "workload"],
            registry=r,
        )
        self.spend = Counter(
            "costgov_spend_dollars",
            "USD spent, added cycle by cycle (each cycle's interval once) since the start",
            ["namespace", "team"],
            registry=r,
        )
        self.budget_utilization = Gauge(
            "costgov_budget_utilization_ratio",
            "Spent over budget (1 = used up)",
            ["kind", "namespace", "name"],
            registry=r,
        )
        self.budget_forecast = Gauge(
            "costgov_budget_forecast_ratio",
            "Forecast over budget: a CostPolicy's spend at period end at the current rate, "
            "a TrainingJobBudget's projected total (1 = the budget exactly)",
            ["kind", "namespace", "name"],
            registry=r,
        )
        self.violations = Gauge(
            "costgov_violations", "Violations in status", ["kind", "namespace", "name"], registry=r
        )
        self._admission_metrics(r)
        self._accounting_metrics(r)
        self._decisions: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._budgets: set[BudgetKey] = set()

    def _admission_metrics(self, r: CollectorRegistry) -> None:
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
        self.rereads = Counter(
            "costgov_admission_rereads_total",
            "Admission answers checked against a fresh read of policies, budgets and approvals",
            ["outcome"],
            registry=r,
        )
        for outcome in REREAD_OUTCOMES:
            self.rereads.labels(outcome)
        self.webhook_errors = Counter(
            "costgov_webhook_errors_total",
            "Webhook requests answered with an error (HTTP 4xx, a 400 review, or kopf's 5xx)",
            ["webhook", "reason"],
            registry=r,
        )

    def _accounting_metrics(self, r: CollectorRegistry) -> None:
        self.webhook_latency = Histogram(
            "costgov_webhook_request_duration_seconds",
            "Time from a webhook request's arrival to its answer (reading, parsing, judging)",
            ["webhook"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
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
        self.windows_behind = Gauge(
            "costgov_accounting_windows_behind",
            "Accounting windows still catching up on past spend, counted in the background "
            "(a fresh install, a long Prometheus outage): 0 once every figure is current",
            registry=r,
        )
        self.pod_follow_failing = Gauge(
            "costgov_pod_follow_failing",
            "Scopes (the cluster, or each watched namespace) whose GPU pods cannot be listed "
            "or watched now: figures and decisions rest on the pods as last seen",
            registry=r,
        )
        self.unpriced = Gauge(
            "costgov_unpriced_pods", "GPU pods that could not be priced", registry=r
        )
        self.leader, self.leader_transitions = _leadership(r)
        self._api_metrics(r)
        self.anomaly = Gauge(
            "costgov_spend_anomaly_ratio",
            "The last full hour's spend over its anomaly threshold (>1: anomalous), by "
            "subject (namespace/, team/ or model/) and what drove it",
            ["subject", "source", "driver"],
            registry=r,
        )

    def _api_metrics(self, r: CollectorRegistry) -> None:
        api = ["gateway", "provider", "model", "team", "namespace"]
        self.api_hourly = Gauge(
            "costgov_api_hourly_cost_dollars",
            "Hosted LLM API spend over the last hour, by gateway, model and team (the gateway's "
            "own dollars where it reports them, else the price list's)",
            api,
            registry=r,
        )
        self.api_per_million = Gauge(
            "costgov_api_cost_per_million_tokens_dollars",
            "USD per 1M tokens (input plus output) over the last hour, by gateway, model and team",
            api,
            registry=r,
        )
        self.api_per_thousand = Gauge(
            "costgov_api_cost_per_thousand_requests_dollars",
            "USD per 1k requests over the last hour, by gateway, model and team (where the "
            "gateway's request counter names the model the tokens were counted under)",
            api,
            registry=r,
        )

    def zero_series(self, webhooks: Iterable[str], kinds: Iterable[str]) -> None:
        """Every error and decision series costgov can report, at 0 from the start:
        Prometheus' rate() and increase() cannot see the first increment of a series that
        appears with it (prometheus-client creates a labelled series at its first inc)."""
        for webhook in ("", *webhooks):
            known = (r for r in WEBHOOK_ERROR_REASONS if r != "not_found")
            for reason in ("not_found",) if webhook == "" else known:
                self.webhook_errors.labels(webhook, reason)
        for kind in kinds:
            for result in ADMISSION_RESULTS:
                self.admissions.labels(kind, result)

    def admission(self, kind: str, result: str, seconds: float) -> None:
        """One admission decision and its latency (label children kept: this is per request)."""
        children = self._decisions.get((kind, result))
        if children is None:
            children = (self.admissions.labels(kind, result), self.admission_latency.labels(kind))
            self._decisions[(kind, result)] = children
        children[0].inc()
        children[1].observe(seconds)

    def webhook_error(self, webhook: str, reason: str) -> None:
        """A webhook request that ended in an error answer. `webhook` must be a path costgov
        serves (or ""): never a client's arbitrary path, which would grow series unbounded."""
        self.webhook_errors.labels(webhook, reason).inc()

    def budget(
        self,
        key: BudgetKey,
        utilization: float | None,
        forecast: float | None,
        violations: int,
        *,
        measured: bool,
    ) -> None:
        """A budget's gauges after a reconcile. Not `measured` (no spend figure this cycle):
        the last figures stay. Measured: a figure that no longer applies (None: no
        projection, no amount) is dropped, never left at a value status no longer shows."""
        self._budgets.add(key)
        for gauge, value in ((self.budget_utilization, utilization),
                             (self.budget_forecast, forecast)):  # fmt: skip
            if value is not None:
                gauge.labels(*key).set(value)
            elif measured:
                with suppress(KeyError):
                    gauge.remove(*key)
        self.violations.labels(*key).set(violations)

    def drop_figures(self, key: BudgetKey) -> None:
        """Stop exporting a budget's utilisation and forecast (its budget was removed)."""
        for gauge in (self.budget_utilization, self.budget_forecast):
            with suppress(KeyError):  # older prometheus-client raise it when absent
                gauge.remove(*key)

    def prune(self, live: Set[BudgetKey]) -> None:
        """Drop the series of budgets that no longer exist, so no alert fires for them."""
        for key in self._budgets - set(live):
            self.forget(key)

    def forget(self, key: BudgetKey) -> None:
        """Drop every series of one budget (it was deleted)."""
        self.drop_figures(key)
        with suppress(KeyError):
            self.violations.remove(*key)
        self._budgets.discard(key)

    def show_anomalies(self, anomalies: Iterable[Anomaly]) -> None:
        """The current anomalies, and only them."""
        self.anomaly.clear()
        for a in anomalies:
            ratio = float(a.spent / a.threshold) if a.threshold > 0 else float("inf")
            self.anomaly.labels(a.subject, a.source, a.driver[:200]).set(ratio)

    def clear_figures(self) -> None:
        """Forget what reconciling exported: a replica that stops leading must not go on
        exporting figures next to the leader's (dashboards would count them twice)."""
        self.hourly_cost.clear()
        for gauge in (self.budget_utilization, self.budget_forecast,
                      self.violations, self.anomaly, self.api_hourly,
                      self.api_per_million, self.api_per_thousand):  # fmt: skip
            gauge.clear()
        self._budgets.clear()
        self.unpriced.set(0)
