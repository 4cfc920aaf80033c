"""`costgov report`: spend and chargeback by namespace or by a namespace label, from Prometheus:
GPU time priced from the node catalog, and hosted-API spend from LLM gateways' counters.

A gateway's spend is grouped by its team (the first of the team labels a series carries),
shown as `team:<name>`; `namespaces` maps teams to namespaces, and then the spend joins the
namespace's group (a team it does not map stays `team:<name>`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from costgov.adapters import promql
from costgov.adapters.prometheus import PrometheusSource
from costgov.catalog.hosted import HostedPrices
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.spend import idle_cost, unpriced_caveat
from costgov.services.accounting import WindowSpend, collect
from costgov.services.api_spend import ApiCost, ApiSpend, api_spend
from costgov.services.api_units import ApiUnit, api_units
from costgov.services.evidence import window_label
from costgov.services.report_advice import WorkloadAdvice, report_advice

__all__ = ["ApiLine", "ReportLine", "SpendReport", "WorkloadAdvice", "build_report"]

PodKey = tuple[str, str]


@dataclass(frozen=True)
class ReportLine:
    group: str
    cost: Decimal
    gpu_hours: Decimal
    idle_cost: Decimal
    unpriced_pods: int


@dataclass(frozen=True)
class SpendReport:
    by: str
    start: datetime
    end: datetime
    lines: tuple[ReportLine, ...]
    warnings: tuple[str, ...]
    unpriced: tuple[str, ...] = ()
    """One note per pod left out of the figures because it could not be priced."""
    window: WindowSpend | None = None
    """The pods behind the lines (for the FOCUS export)."""
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    api: tuple[ApiLine, ...] = ()
    """Hosted-API spend by group, gateway and model."""
    advice: tuple[WorkloadAdvice, ...] | None = None
    """Recommendations for the workloads running at the end (None: not asked for)."""
    advice_window: str = ""
    api_units: tuple[ApiUnit, ...] = ()
    """Hosted-API $ per 1M tokens and per 1k requests by group and gateway."""

    @property
    def gpu_total(self) -> Decimal:
        return sum((line.cost for line in self.lines), Decimal(0))

    @property
    def api_total(self) -> Decimal:
        return sum((a.cost.cost for a in self.api if a.cost.cost is not None), Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.gpu_total + self.api_total

    @property
    def api_unpriced(self) -> tuple[str, ...]:
        return tuple(a.cost.unpriced for a in self.api if a.cost.unpriced)

    @property
    def caveat(self) -> str | None:
        """What the total leaves out, or None when everything was priced."""
        parts = [unpriced_caveat(len(self.unpriced))] if self.unpriced else []
        if self.api_unpriced:
            n = len(self.api_unpriced)
            parts.append(f"{n} hosted-API line{'s' if n > 1 else ''} unpriced, not included")
        return "; ".join(parts) or None


@dataclass(frozen=True)
class ApiLine:
    group: str
    cost: ApiCost
    namespace: str = ""
    """The namespace `--api-namespace` maps the team to ("" when none does)."""


async def _groups(
    source: PrometheusSource, by: str, start: datetime, end: datetime
) -> tuple[dict[str, str], list[str]]:
    """Each namespace's value of the namespace label `by` (kube_namespace_labels)."""
    label = promql.ksm_label_name(by)
    span = int((end - start).total_seconds())
    result = await source.query(
        f"max by (namespace, {label}) (last_over_time(kube_namespace_labels[{span}s]))", end
    )
    groups = {s.labels.get("namespace", ""): s.labels.get(label, "") for s in result.samples}
    return groups, list(result.warnings)


def _lines(window: WindowSpend, group_of: Callable[[str], str]) -> tuple[ReportLine, ...]:
    cost: dict[str, Decimal] = {}
    hours: dict[str, Decimal] = {}
    idle: dict[str, Decimal] = {}
    unpriced: dict[str, set[tuple[str, str]]] = {}
    for line in window.pods:
        group = group_of(line.usage.namespace)
        hours[group] = hours.get(group, Decimal(0)) + line.usage.gpu_hours
        cost.setdefault(group, Decimal(0))
        idle.setdefault(group, Decimal(0))
        if line.cost is None:
            unpriced.setdefault(group, set()).add(line.usage.key)
            continue
        cost[group] += line.cost
        util = window.utilization.get(line.usage.key)
        if util is not None:
            idle[group] += idle_cost(line.cost, util)
    rows = (ReportLine(g, cost[g], hours[g], idle[g], len(unpriced.get(g, ()))) for g in hours)
    return tuple(sorted(rows, key=lambda x: (-x.cost, x.group)))


def _team_grouping(
    by: str, groups: Mapping[str, str], namespaces: Mapping[str, str] | None
) -> Callable[[str], str]:
    """The report group of a gateway team: its namespace's (when `namespaces` maps it),
    else `team:<name>`."""

    def group_of(team: str) -> str:
        namespace = "" if namespaces is None else namespaces.get(team, "")
        if namespace:
            return namespace if by == "namespace" else (groups.get(namespace) or f"(no {by} label)")
        return f"team:{team}" if team else "(no team)"

    return group_of


def _api_lines(
    spend: ApiSpend, group_of: Callable[[str], str], mapped: bool
) -> tuple[ApiLine, ...]:
    lines = (ApiLine(group_of(c.usage.team), c, c.namespace if mapped else "") for c in spend.lines)
    return tuple(sorted(lines, key=lambda a: (-(a.cost.cost or 0), a.group, a.cost.usage.model)))


async def build_report(
    source: PrometheusSource,
    catalog: PriceCatalog,
    *,
    start: datetime,
    end: datetime,
    by: str,
    step_seconds: int = 60,
    team_labels: Sequence[str] = (),
    namespaces: Mapping[str, str] | None = None,
    advise: bool = False,
) -> SpendReport:
    """Spend between start and end, grouped by namespace or by the namespace label `by`:
    GPU time, and hosted-API spend by gateway team (`team_labels` override each gateway's;
    `namespaces` maps teams to namespaces)."""
    snap = await collect(
        source,
        catalog,
        at=end,
        windows={"report": start},
        interval_seconds=int((end - start).total_seconds()),
        step_seconds=step_seconds,
        live_node_labels={},
        unit_costs=False,
    )
    if snap.error:
        raise RuntimeError(snap.error)
    api = await api_spend(source, HostedPrices(catalog), start=start, end=end,
                          team_labels=team_labels, namespaces=namespaces)  # fmt: skip
    warnings = [*snap.warnings, *api.warnings]
    groups: dict[str, str] = {}
    if by != "namespace":
        groups, more = await _groups(source, by, start, end)
        warnings += more
    window = snap.windows["report"]

    def group_of(ns: str) -> str:
        return ns if by == "namespace" else (groups.get(ns) or f"(no {by} label)")

    unpriced = {
        c.usage.key: f"{c.usage.namespace}/{c.usage.pod}: {c.unpriced}"
        for c in reversed(window.pods)
        if c.cost is None
    }
    notes = tuple(sorted(unpriced.values()))
    team_group = _team_grouping(by, groups, namespaces)
    lines = _api_lines(api, team_group, namespaces is not None)
    advice, span = None, int((end - start).total_seconds())
    if advise:
        advice, more = await report_advice(source, snap, catalog, end=end, span=span)
        warnings += more
    return SpendReport(
        by, start, end, _lines(window, group_of), tuple(warnings), notes, window,
        dict(snap.owners), lines, advice, window_label(span) if advise else "",
        api_units(((a.group, a.cost) for a in lines), api.requests, team_group),
    )  # fmt: skip
