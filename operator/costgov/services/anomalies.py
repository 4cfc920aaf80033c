"""Spend anomalies, once an hour: the last full hour of spend of every namespace, gateway
team and hosted model against its own baseline (domain/anomalies.py).

History comes from Prometheus, two range queries over `days` at one point an hour:
- hosted-API spend: the LLM gateways' counters (services/api_spend.py), priced per hour;
- GPU spend by namespace and workload: costgov's own `costgov_hourly_cost_dollars`, which
  Prometheus holds when it scrapes the operator (the chart's ServiceMonitor), averaged over
  each hour. Without it, namespaces are judged on their API spend only, and the scan says so.
An hour in which a subject that had spent before spent nothing counts as $0 (a runaway job
at night is judged against the quiet nights).
The subject's driver is the team, model or workload whose hour rose most over its own mean.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from costgov.adapters import promql
from costgov.adapters.prometheus import MetricsError, PrometheusSource, RangeSeries
from costgov.api import CostPolicy, CostPolicyStatus
from costgov.api.fields import Condition
from costgov.catalog.hosted import HostedPrices
from costgov.domain.anomalies import Anomaly, anomalies_of
from costgov.domain.gateways import usage_from_series
from costgov.domain.scoping import api_spend_in_scope, namespace_in_scope
from costgov.services.api_spend import ApiCost, price_api_usage
from costgov.services.conditions import Event, condition, merge_conditions
from costgov.services.inventory import Inventory
from costgov.services.outcomes import Outcome

__all__ = ["GPU_HISTORY", "AnomalyScan", "scan", "with_anomalies"]

GPU_HISTORY = "sum by (namespace, workload) (avg_over_time(costgov_hourly_cost_dollars[1h]))"
"""Each hour's GPU dollars by workload: the mean of costgov's own $/h gauge over the hour
(not its spend counter, which moves when accounting counts, so a catch-up would land hours
of spend in one)."""
HOUR = 3600
HOUR_DELTA = timedelta(hours=1)
Source = Literal["gpu", "api", "gpu+api"]


@dataclass(frozen=True)
class AnomalyScan:
    hour_end: datetime
    anomalies: tuple[Anomaly, ...] = ()
    namespaces: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """The namespaces each team/ and model/ subject's spend is attributed to ("" none)."""
    subjects: int = 0
    gpu_history: bool = False
    error: str | None = None


@dataclass
class _Series:
    hourly: dict[str, dict[datetime, Decimal]] = field(default_factory=lambda: defaultdict(dict))
    parts: dict[str, dict[str, dict[datetime, Decimal]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(dict))
    )
    sources: dict[str, Source] = field(default_factory=dict)
    namespaces: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, subject: str, at: datetime, dollars: Decimal, part: str, source: Source) -> None:
        self.hourly[subject][at] = self.hourly[subject].get(at, Decimal(0)) + dollars
        mine = self.parts[subject][part]
        mine[at] = mine.get(at, Decimal(0)) + dollars
        known = self.sources.get(subject)
        self.sources[subject] = source if known in (None, source) else "gpu+api"

    def fill(self, first: datetime, last: datetime) -> None:
        """Hours with nothing counted, from a subject's first spend on, are $0 hours."""
        for subject, points in self.hourly.items():
            at = max(min(points), first)
            while at <= last:
                points.setdefault(at, Decimal(0))
                for part in self.parts[subject].values():
                    part.setdefault(at, Decimal(0))
                at += timedelta(seconds=HOUR)

    def driver(self, subject: str, hour_end: datetime) -> str:
        """The part whose hour rose most over its own mean before it."""

        def rise(points: dict[datetime, Decimal]) -> Decimal:
            before = [v for t, v in points.items() if t < hour_end]
            mean = sum(before, Decimal(0)) / len(before) if before else Decimal(0)
            return points.get(hour_end, Decimal(0)) - mean

        parts = self.parts[subject]
        return max(parts, key=lambda p: (rise(parts[p]), p)) if parts else "unknown"


def _points(found: Sequence[RangeSeries]) -> dict[datetime, list[tuple[dict[str, str], float]]]:
    by_time: dict[datetime, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for series in found:
        for ts, value in series.points:
            by_time[datetime.fromtimestamp(ts, UTC)].append((dict(series.labels), value))
    return by_time


def _add_api(out: _Series, at: datetime, lines: Sequence[ApiCost]) -> None:
    for line in lines:
        if line.cost is None or line.cost <= 0:
            continue
        u = line.usage
        provider = u.provider or (line.price.provider if line.price else "-")
        model = f"{provider}/{u.model or '-'}"
        team = u.team or "(no team)"
        out.add(f"team/{team}", at, line.cost, f"model {model}", "api")
        out.add(f"model/{model}", at, line.cost, f"team {team}", "api")
        out.namespaces[f"team/{team}"].add(line.namespace)
        out.namespaces[f"model/{model}"].add(line.namespace)
        if line.namespace:
            why = f"{u.gateway} team {team}, model {model}"
            out.add(f"namespace/{line.namespace}", at, line.cost, why, "api")


async def scan(
    source: PrometheusSource,
    prices: HostedPrices,
    *,
    at: datetime,
    days: int,
    sigma: Decimal,
    minimum: Decimal,
    team_labels: Sequence[str] = (),
    namespaces: Mapping[str, str] | None = None,
) -> AnomalyScan:
    """The anomalies of the last full hour before `at`."""
    hour_end = at.replace(minute=0, second=0, microsecond=0)
    start = hour_end - timedelta(days=days)
    out = _Series()
    try:
        api, _ = await source.query_range(
            promql.gateway_increase(HOUR, team_labels), start, hour_end, HOUR
        )
        gpu, _ = await source.query_range(GPU_HISTORY, start, hour_end, HOUR)
    except MetricsError as exc:
        return AnomalyScan(hour_end, error=str(exc))
    for ts, series in _points(api).items():
        usage = usage_from_series(series, team_labels)
        _add_api(out, ts, price_api_usage(usage, prices, ts, namespaces))
    for ts, series in _points(gpu).items():
        for labels, value in series:
            ns = labels.get("namespace", "")
            if ns and value == value and value > 0:
                why = f"workload {ns}/{labels.get('workload') or '-'}"
                out.add(f"namespace/{ns}", ts, Decimal(repr(value)), why, "gpu")
    out.fill(start + timedelta(seconds=HOUR), hour_end)
    drivers = {s: out.driver(s, hour_end) for s in out.hourly}
    found = anomalies_of(out.hourly, hour_end, drivers, out.sources, sigma=sigma, minimum=minimum)
    return AnomalyScan(
        hour_end, tuple(found), {s: frozenset(n) for s, n in out.namespaces.items()},
        len(out.hourly), bool(gpu),
    )  # fmt: skip


def _in_scope(
    policy: CostPolicy, subject: str, scan: AnomalyScan, inv: Inventory, excluded: frozenset[str]
) -> bool:
    """A namespace: in the policy's scope. A team: all of its spend is the policy's (as
    budgets count API spend). A model, which teams share: policies over the whole cluster."""
    kind, _, name = subject.partition("/")
    spec = policy.spec
    if kind == "namespace":
        labels = inv.namespace_labels(name)
        return namespace_in_scope(spec, namespace=name, namespace_labels=labels, excluded=excluded)
    if kind == "model":
        return api_spend_in_scope(spec, namespace=None, namespace_labels={}, excluded=excluded)
    spent_in = scan.namespaces.get(subject, frozenset())

    def mine(ns: str) -> bool:
        known = ns if ns in inv.namespaces else None
        labels = inv.namespace_labels(known) if known else {}
        return api_spend_in_scope(spec, namespace=known, namespace_labels=labels, excluded=excluded)

    return bool(spent_in) and all(mine(ns) for ns in spent_in)


def _condition(found: AnomalyScan, mine: Sequence[Anomaly], gen: int, now: datetime) -> Condition:
    if found.error:
        return condition("SpendAnomaly", None, "NoHistory",
                         f"spend history could not be read: {found.error}", generation=gen,
                         now=now)  # fmt: skip
    if mine:
        return condition("SpendAnomaly", True, "SpendSpike",
                         "; ".join(a.message for a in mine), generation=gen, now=now)  # fmt: skip
    note = "" if found.gpu_history else " (no GPU spend history in Prometheus)"
    return condition("SpendAnomaly", False, "WithinBaseline",
                     f"the hour to {found.hour_end:%Y-%m-%d %H:%M} UTC within its baselines{note}",
                     generation=gen, now=now)  # fmt: skip


def with_anomalies(
    policy: CostPolicy,
    outcome: Outcome[CostPolicyStatus],
    found: AnomalyScan | None,
    inv: Inventory,
    *,
    excluded: frozenset[str],
    now: datetime,
    announced: set[tuple[str, str, datetime]],
) -> Outcome[CostPolicyStatus]:
    """The policy's outcome with an Event for each anomaly in its scope whose episode starts
    this hour (an anomaly the hour before was announced already: `announced` remembers them)
    and a SpendAnomaly condition: set while one is in scope, kept (False, or Unknown when
    the history cannot be read) once it was, absent before."""
    if found is None:
        return outcome
    gen, name = policy.metadata.generation or 0, policy.metadata.name
    mine = [a for a in found.anomalies if _in_scope(policy, a.subject, found, inv, excluded)]
    had = any(c.type == "SpendAnomaly" for c in outcome.status.conditions)
    if not mine and not had:
        return outcome
    events = []
    for a in mine:  # an Event when an episode starts, not every hour it goes on
        key, before = (name, a.subject, a.hour_end), (name, a.subject, a.hour_end - HOUR_DELTA)
        if key not in announced and before not in announced:
            events.append(Event("CostPolicy", "", name, "Warning", "SpendAnomaly", a.message))
        announced.add(key)
    cond = _condition(found, mine, gen, now)
    status = outcome.status.model_copy(
        update={"conditions": merge_conditions(outcome.status.conditions, [cond])}
    )
    return replace(outcome, status=status, events=[*outcome.events, *events])
