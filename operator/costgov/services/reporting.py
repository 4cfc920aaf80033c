"""`costgov report`: spend and chargeback by namespace or by a namespace label, from Prometheus."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from costgov.adapters.prometheus import PrometheusSource
from costgov.adapters.promql import ksm_label_name
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.money import cents
from costgov.services.accounting import collect

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

    @property
    def total(self) -> Decimal:
        return sum((line.cost for line in self.lines), Decimal(0))


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
    )
    if snap.error:
        raise RuntimeError(snap.error)
    groups: dict[str, str] = {}
    warnings = list(snap.warnings)
    if by != "namespace":
        label = ksm_label_name(by)
        span = int((end - start).total_seconds())
        result = await source.query(
            f"max by (namespace, {label}) (last_over_time(kube_namespace_labels[{span}s]))", end
        )
        warnings += result.warnings
        groups = {s.labels.get("namespace", ""): s.labels.get(label, "") for s in result.samples}
    window = snap.windows["report"]
    acc: dict[str, list[Decimal | int]] = {}
    for line in window.pods:
        ns = line.usage.namespace
        group = ns if by == "namespace" else (groups.get(ns) or f"(no {by} label)")
        row = acc.setdefault(group, [Decimal(0), Decimal(0), Decimal(0), 0])
        row[1] = Decimal(row[1]) + line.usage.gpu_hours
        if line.cost is None:
            row[3] = int(row[3]) + 1
            continue
        row[0] = Decimal(row[0]) + line.cost
        util = window.utilization.get(line.usage.key)
        if util is not None:
            row[2] = (
                Decimal(row[2])
                + line.cost * (100 - Decimal(repr(min(max(util, 0.0), 100.0)))) / 100
            )
    lines = tuple(
        sorted(
            (
                ReportLine(g, Decimal(r[0]), Decimal(r[1]), Decimal(r[2]), int(r[3]))
                for g, r in acc.items()
            ),
            key=lambda x: (-x.cost, x.group),
        )
    )
    return SpendReport(by, start, end, lines, tuple(warnings))


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
    out.append(f"TOTAL ${cents(report.total):,.2f}")
    out += [f"warning: {w}" for w in report.warnings]
    return "\n".join(out) + "\n"
