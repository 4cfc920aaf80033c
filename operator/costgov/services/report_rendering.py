"""`costgov report`'s outputs: a table, CSV and JSON (FOCUS is services/focus.py).

GPU spend is one line per group. When gateways counted hosted-API spend, the table adds a
line per group, gateway and model, the CSV and JSON lines gain GPU_USD and API_USD (COST_USD
is then their sum), and TOTAL says how it splits. `--recommendations` adds a section to the
table and JSON; with CSV it writes the recommendations instead of the spend lines (one table
per file).
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

from costgov.domain.money import cents
from costgov.services.api_units import per_million, per_thousand, tokens_of
from costgov.services.reporting import ApiLine, SpendReport

__all__ = ["render"]

_Q = Decimal("0.01")


def _money(value: Decimal | None) -> str:
    return "" if value is None else format(cents(value), "f")


def _tokens(line: ApiLine, kind: str) -> str:
    value = line.cost.usage.tokens.get(kind)  # type: ignore[call-overload]
    return "" if value is None else format(value.quantize(Decimal(1)), "f")


def _group_rows(report: SpendReport) -> list[list[str]]:
    """One row per group; with hosted-API spend, GPU_USD and API_USD at the end."""
    api: dict[str, Decimal] = {}
    for a in report.api:
        api[a.group] = api.get(a.group, Decimal(0)) + (a.cost.cost or Decimal(0))
    gpu = {line.group: line for line in report.lines}
    rows = []
    for group in sorted(set(gpu) | set(api), key=lambda g: (-(_cost(gpu, api, g)), g)):
        line = gpu.get(group)
        row = [
            group,
            _money(_cost(gpu, api, group)),
            format((line.gpu_hours if line else Decimal(0)).quantize(_Q), "f"),
            _money(line.idle_cost if line else Decimal(0)),
            str(line.unpriced_pods if line else 0),
        ]
        if report.api:
            row += [_money(line.cost if line else Decimal(0)), _money(api.get(group, Decimal(0)))]
        rows.append(row)
    return rows


def _cost(gpu: dict[str, Any], api: dict[str, Decimal], group: str) -> Decimal:
    line = gpu.get(group)
    return (line.cost if line else Decimal(0)) + api.get(group, Decimal(0))


def _header(report: SpendReport) -> list[str]:
    header = [report.by.upper(), "COST_USD", "GPU_HOURS", "IDLE_GPU_USD", "UNPRICED_PODS"]
    return header + (["GPU_USD", "API_USD"] if report.api else [])


_API_HEADER = ["GROUP", "GATEWAY", "PROVIDER", "MODEL", "INPUT_TOKENS", "OUTPUT_TOKENS",
               "CACHED_INPUT_TOKENS", "COST_USD", "GATEWAY_USD", "LIST_USD",
               "USD_PER_1M_TOKENS", "REQUESTS", "USD_PER_1K_REQUESTS"]  # fmt: skip
_UNIT_HEADER = ["GROUP", "GATEWAY", "COST_USD", "TOKENS", "REQUESTS", "USD_PER_1M_TOKENS",
                "USD_PER_1K_REQUESTS"]  # fmt: skip


def _plain(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


def _count(value: Decimal | None) -> str:
    return "" if value is None else format(value.quantize(Decimal(1)), "f")


def _api_rows(report: SpendReport) -> list[list[str]]:
    """Unit costs per line: dollars per 1M tokens (input, cached included, plus output) and
    per 1k requests (where the gateway's request counter names this model and team)."""
    return [
        [a.group, a.cost.usage.gateway, _provider(a), a.cost.usage.model or "-",
         _tokens(a, "input"), _tokens(a, "output"), _tokens(a, "cached_input"),
         _money(a.cost.cost) or "unpriced", _money(a.cost.usage.reported_usd),
         _money(a.cost.list_usd), _plain(per_million(a.cost.cost, tokens_of(a.cost))),
         _count(a.cost.requests), _plain(per_thousand(a.cost.cost, a.cost.requests))]
        for a in report.api
    ]  # fmt: skip


def _unit_rows(report: SpendReport) -> list[list[str]]:
    return [
        [u.group, u.gateway, _money(u.cost) + (" (unpriced lines)" if u.unpriced else ""),
         _count(u.tokens), _count(u.requests), _plain(u.per_million_tokens),
         _plain(u.per_thousand_requests)]
        for u in report.api_units
    ]  # fmt: skip


def _provider(line: ApiLine) -> str:
    """The gateway's provider label, else the price list's provider for the model."""
    price = line.cost.price
    return line.cost.usage.provider or (price.provider if price else "") or "-"


def _json(report: SpendReport) -> str:
    keys = ["group", "cost", "gpuHours", "idleCost", "unpricedPods", "gpuCost", "apiCost"]
    api_keys = ["group", "gateway", "provider", "model", "inputTokens", "outputTokens",
                "cachedInputTokens", "cost", "gatewayCost", "listCost",
                "usdPerMillionTokens", "requests", "usdPerThousandRequests"]  # fmt: skip
    unit_keys = ["group", "gateway", "cost", "tokens", "requests", "usdPerMillionTokens",
                 "usdPerThousandRequests"]  # fmt: skip
    doc: dict[str, Any] = {
        "by": report.by,
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "total": _money(report.total),
        "gpuTotal": _money(report.gpu_total),
        "apiTotal": _money(report.api_total),
        "totalCaveat": report.caveat,
        "unpricedPods": len(report.unpriced),
        "unpriced": list(report.unpriced) + list(report.api_unpriced),
        "lines": [dict(zip(keys, r, strict=False)) for r in _group_rows(report)],
        "api": [
            {**dict(zip(api_keys, r, strict=True)), "price": _price(a)}
            for r, a in zip(_api_rows(report), report.api, strict=True)
        ],
        "apiUnitCosts": [
            {
                **dict(zip(unit_keys, r, strict=True)),
                "cost": _money(u.cost),
                "unpricedLines": u.unpriced,
            }
            for r, u in zip(_unit_rows(report), report.api_units, strict=True)
        ],
        "warnings": list(report.warnings),
    }
    if report.advice is not None:
        doc["recommendationsWindow"] = report.advice_window
        doc["recommendations"] = [
            {"namespace": w.namespace, "workload": w.workload, "hourlyCost": _money(w.hourly),
             "recommendations": [r.model_dump(mode="json", by_alias=True, exclude_none=True)
                                 for r in w.recommendations]}
            for w in report.advice
        ]  # fmt: skip
    return json.dumps(doc, indent=2) + "\n"


_ADVICE_HEADER = ["NAMESPACE", "WORKLOAD", "HOURLY_COST_USD", "KIND", "MONTHLY_SAVING_USD",
                  "RECOMMENDATION", "EVIDENCE"]  # fmt: skip


def _advice_rows(report: SpendReport) -> list[list[str]]:
    return [
        [w.namespace, w.workload, _money(w.hourly), r.kind, _money(r.monthly_saving), r.message,
         "; ".join(f"{e.metric} over {e.window} = {e.value}" for e in r.evidence)]
        for w in report.advice or ()
        for r in w.recommendations
    ]  # fmt: skip


def _advice_text(report: SpendReport) -> list[str]:
    if report.advice is None:
        return []
    out = ["", f"Recommendations (evidence over {report.advice_window}; dollars per month at "
           "the current rate; one workload's savings do not add up)"]  # fmt: skip
    unread = any(w.startswith("no recommendations") for w in report.warnings)
    if not report.advice:
        out.append("none: see the warning below" if unread else
                   "none: no running GPU workload meets a rule (docs/recommendations.md)")  # fmt: skip
    for ns, workload, hourly, kind, saving, message, evidence in _advice_rows(report):
        shown = f"saves ${Decimal(saving):,.2f}/month" if saving else "saving not estimable"
        out += [f"{ns} {workload} (${hourly}/h)  {kind}  {shown}", f"  {message}"]
        out += [f"  evidence: {evidence}"] if evidence else []
    return out


def _price(line: ApiLine) -> dict[str, str | None] | None:
    price = line.cost.price
    if price is None:
        return None
    rates = {
        "inputPerMTokens": price.input, "outputPerMTokens": price.output,
        "cachedInputPerMTokens": price.cached_input, "cacheWritePerMTokens": price.cache_write,
    }  # fmt: skip
    return {
        **{k: None if v is None else format(v, "f") for k, v in rates.items()},
        "model": price.model,
        "source": price.source,
        "effectiveDate": price.effective.isoformat() if price.effective else None,
    }


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    return out + [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


def _text(report: SpendReport) -> str:
    out = [
        f"Spend {report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M} UTC, by {report.by}"
    ]
    out += _table(_group_rows(report), _header(report))
    if report.api:
        out += ["", "Hosted API spend (LLM gateways)", *_table(_api_rows(report), _API_HEADER)]
        out += [
            "",
            f"Hosted API unit costs by {report.by} and gateway (requests of every "
            "model of the group's teams)",
            *_table(_unit_rows(report), _UNIT_HEADER),
        ]
    caveat = f" ({report.caveat})" if report.caveat else ""
    split = ""
    if report.api:
        split = f": GPU ${cents(report.gpu_total):,.2f} + API ${cents(report.api_total):,.2f}"
    out.append(f"TOTAL ${cents(report.total):,.2f}{split}{caveat}")
    out += [f"unpriced: {note}" for note in report.unpriced[:20]]
    if len(report.unpriced) > 20:
        out.append(f"unpriced: ... and {len(report.unpriced) - 20} more (-o json lists all)")
    out += [f"unpriced: {note}" for note in report.api_unpriced]
    out += _advice_text(report)
    out += [f"warning: {w}" for w in report.warnings]
    return "\n".join(out) + "\n"


def render(report: SpendReport, output: str) -> str:
    if output == "json":
        return _json(report)
    if output == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        if report.advice is not None:
            writer.writerow(_ADVICE_HEADER)
            writer.writerows(_advice_rows(report))
            return buf.getvalue()
        writer.writerow(_header(report))
        writer.writerows(_group_rows(report))
        return buf.getvalue()
    if output == "focus":
        from costgov.services.focus import focus_csv

        return focus_csv([report])
    return _text(report)
