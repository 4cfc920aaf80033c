"""`costgov report`: spend and chargeback by namespace or by a namespace label, from Prometheus."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from costgov.adapters.prometheus import PrometheusSource
from costgov.adapters.promql import ksm_label_name
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.money import cents
from costgov.domain.spend import idle_cost, unpriced_caveat
from costgov.services.accounting import WindowSpend, collect

__all__ = ["ReportLine", "SpendReport", "build_report", "render"]


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

    @property
    def total(self) -> Decimal:
        return sum((line.cost for line in self.lines), Decimal(0))

    @property
    def caveat(self) -> str | None:
        """What the total leaves out, or None when every pod was priced."""
        return unpriced_caveat(len(self.unpriced)) if self.unpriced else None


async def _groups(
    source: PrometheusSource, by: str, start: datetime, end: datetime
) -> tuple[dict[str, str], list[str]]:
    """Each namespace's value of the namespace label `by` (kube_namespace_labels)."""
    label = ksm_label_name(by)
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


async def build_report(
    source: PrometheusSource,
    catalog: PriceCatalog,
    *,
    start: datetime,
    end: datetime,
    by: str,
    step_seconds: int = 60,
) -> SpendReport:
    """Spend between start and end, grouped by namespace or by the namespace label `by`."""
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
    warnings = list(snap.warnings)
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
    return SpendReport(by, start, end, _lines(window, group_of), tuple(warnings), notes)


def render(report: SpendReport, output: str) -> str:
    rows = [
        [
            line.group,
            format(cents(line.cost), "f"),
            format(line.gpu_hours.quantize(Decimal("0.01")), "f"),
            format(cents(line.idle_cost), "f"),
            str(line.unpriced_pods),
        ]
        for line in report.lines
    ]
    header = [report.by.upper(), "COST_USD", "GPU_HOURS", "IDLE_GPU_USD", "UNPRICED_PODS"]
    if output == "json":
        return (
            json.dumps(
                {
                    "by": report.by,
                    "start": report.start.isoformat(),
                    "end": report.end.isoformat(),
                    "total": format(cents(report.total), "f"),
                    "totalCaveat": report.caveat,
                    "unpricedPods": len(report.unpriced),
                    "unpriced": list(report.unpriced),
                    "lines": [
                        dict(
                            zip(
                                ["group", "cost", "gpuHours", "idleCost", "unpricedPods"],
                                r,
                                strict=True,
                            )
                        )
                        for r in rows
                    ],
                    "warnings": list(report.warnings),
                },
                indent=2,
            )
            + "\n"
        )
    if output == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(header)
        writer.writerows(rows)
        return buf.getvalue()
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    out = [
        f"Spend {report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M} UTC, by {report.by}"
    ]
    out.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    caveat = f" ({report.caveat})" if report.caveat else ""
    out.append(f"TOTAL ${cents(report.total):,.2f}{caveat}")
    out += [f"unpriced: {note}" for note in report.unpriced[:20]]
    if len(report.unpriced) > 20:
        out.append(f"unpriced: ... and {len(report.unpriced) - 20} more (-o json lists all)")
    out += [f"warning: {w}" for w in report.warnings]
    return "\n".join(out) + "\n"
