"""`costgov report -o focus`: FinOps FOCUS 1.2 rows, one per workload per charge period.

The charge period is the report's window, cut at month ends (`charge_periods`; daily on
request): the CLI builds one report per period. Every FOCUS 1.2 mandatory column is written
(the spec's columns/*.md at tag v1.2), plus ResourceId, ResourceName, ResourceType,
SubAccountId/Name (the namespace, or the gateway team), Tags, ConsumedQuantity/Unit, and
`x_`-prefixed costgov columns. Conditional columns that do not apply (commitment discounts,
unit prices of a mix of rates, region, SKU) are present and null, as FOCUS allows. GPU rows: a Job's pods (or a pod without a Job) priced from
the node catalog; API rows: one gateway, model and team. BilledCost = EffectiveCost =
ContractedCost = the cost costgov counts (a gateway's own dollars where it reports them);
ListCost is the price list's figure where there is one. Work that could not be priced has
no row (FOCUS costs cannot be null) and is named in `x_Unpriced` notes on stderr by the CLI.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costgov.domain.tokens import MILLION
from costgov.services.reporting import ApiLine, SpendReport

__all__ = ["COLUMNS", "MANDATORY", "focus_csv", "focus_rows"]

MANDATORY = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
    "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit",
    "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
)  # fmt: skip
COLUMNS = (
    *MANDATORY, "ChargeFrequency", "ServiceSubcategory", "ConsumedQuantity", "ConsumedUnit",
    "ResourceId", "ResourceName", "ResourceType", "SubAccountId", "SubAccountName", "Tags",
    "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
    "CommitmentDiscountStatus", "CommitmentDiscountType", "ContractedUnitPrice",
    "ListUnitPrice", "PricingCategory", "RegionId", "RegionName", "SkuId", "SkuPriceId",
    "x_CostgovSource", "x_Gateway", "x_ModelProvider", "x_Model", "x_InputTokens",
    "x_OutputTokens", "x_CachedInputTokens", "x_GatewayReportedCost", "x_PriceSource",
    "x_GpuHours",
)  # fmt: skip
_PLACES = Decimal("0.0000000001")
ACCOUNT = "kubernetes"


def _dec(value: Decimal) -> str:
    text = format(value.quantize(_PLACES), "f").rstrip("0")
    return text + "0" if text.endswith(".") else text


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(at: datetime, after: bool) -> datetime:
    at = at.astimezone(UTC)
    first = datetime(at.year, at.month, 1, tzinfo=UTC)
    if not after or at == first:
        return first
    return datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)


def _common(report: SpendReport, account: str) -> dict[str, str]:
    return {
        "BillingAccountId": account, "BillingAccountName": account, "BillingCurrency": "USD",
        "BillingPeriodStart": _iso(_month(report.start, False)),
        "BillingPeriodEnd": _iso(_month(report.end, True)),
        "ChargePeriodStart": _iso(report.start), "ChargePeriodEnd": _iso(report.end),
        "ChargeCategory": "Usage", "ChargeClass": "", "ChargeFrequency": "Usage-Based",
        "ServiceCategory": "AI and Machine Learning", "PricingCategory": "Standard",
    }  # fmt: skip


def _gpu_rows(report: SpendReport, account: str) -> Iterable[dict[str, str]]:
    if report.window is None:
        return
    work: dict[tuple[str, str, str], tuple[Decimal, Decimal]] = {}
    for line in report.window.pods:
        if line.cost is None:
            continue
        job = report.owners.get(line.usage.key)
        key = (line.usage.namespace, "Job" if job else "Pod", job or line.usage.pod)
        cost, hours = work.get(key, (Decimal(0), Decimal(0)))
        work[key] = (cost + line.cost, hours + line.usage.gpu_hours)
    for (ns, kind, name), (cost, hours) in sorted(work.items()):
        money = _dec(cost)
        yield {
            **_common(report, account),
            "BilledCost": money, "EffectiveCost": money, "ListCost": money,
            "ContractedCost": money, "ChargeDescription": f"GPU time of {kind} {ns}/{name}",
            "PricingQuantity": _dec(hours), "PricingUnit": "GPU-Hours",
            "ConsumedQuantity": _dec(hours), "ConsumedUnit": "GPU-Hours",
            "ProviderName": "Kubernetes", "PublisherName": "Kubernetes",
            "InvoiceIssuerName": account, "ServiceName": "Kubernetes GPU compute",
            "ServiceSubcategory": "Machine Learning",
            "ResourceId": f"k8s://{ns}/{kind.lower()}/{name}", "ResourceName": name,
            "ResourceType": f"Kubernetes {kind}", "SubAccountId": ns, "SubAccountName": ns,
            "Tags": json.dumps({"costgov.io/namespace": ns}, sort_keys=True),
            "x_CostgovSource": "gpu", "x_GpuHours": _dec(hours),
            "x_PriceSource": "costgov node price catalog",
        }  # fmt: skip


def _whole(value: Decimal) -> str:
    """A token count as a whole number (a reset falls back to increase(), which
    extrapolates: a fraction of a token is not a count)."""
    return format(value.quantize(Decimal(1)), "f")


def _api_row(report: SpendReport, line: ApiLine, account: str) -> dict[str, str] | None:
    cost, usage = line.cost, line.cost.usage
    if cost.cost is None:
        return None
    # cached input and cache writes are parts of input (domain/tokens.py)
    tokens = usage.tokens.get("input", Decimal(0)) + usage.tokens.get("output", Decimal(0))
    provider = (cost.price.provider if cost.price else usage.provider) or "unknown"
    money = _dec(cost.cost)
    owner = line.namespace or (f"team:{usage.team}" if usage.team else "(no team)")
    model = usage.model or "unknown"
    tags = {"costgov.io/team": usage.team, "costgov.io/namespace": line.namespace}
    return {
        **_common(report, account),
        "BilledCost": money, "EffectiveCost": money, "ContractedCost": money,
        "ListCost": _dec(cost.list_usd if cost.list_usd is not None else cost.cost),
        "ChargeDescription": f"{model} tokens through {usage.gateway} for {owner}",
        "PricingQuantity": _dec(tokens.quantize(Decimal(1)) / MILLION),
        "PricingUnit": "Million Tokens",
        "ConsumedQuantity": _whole(tokens), "ConsumedUnit": "Tokens",
        "ProviderName": provider, "PublisherName": provider, "InvoiceIssuerName": provider,
        "ServiceName": f"{provider} API", "ServiceSubcategory": "Generative AI",
        "ResourceId": f"llm://{usage.gateway}/{provider}/{model}/{owner}",
        "ResourceName": model, "ResourceType": "Hosted model",
        "SubAccountId": owner, "SubAccountName": owner,
        "Tags": json.dumps({k: v for k, v in tags.items() if v}, sort_keys=True),
        "x_CostgovSource": "api", "x_Gateway": usage.gateway, "x_ModelProvider": usage.provider,
        "x_Model": model, "x_InputTokens": _whole(usage.tokens.get("input", Decimal(0))),
        "x_OutputTokens": _whole(usage.tokens.get("output", Decimal(0))),
        "x_CachedInputTokens": _whole(usage.tokens.get("cached_input", Decimal(0))),
        "x_GatewayReportedCost": "" if usage.reported_usd is None else _dec(usage.reported_usd),
        "x_PriceSource": cost.price.source if cost.price else "gateway-reported cost only",
    }  # fmt: skip


def _next_month(at: datetime) -> datetime:
    return datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)


def charge_periods(
    start: datetime, end: datetime, *, daily: bool
) -> list[tuple[datetime, datetime]]:
    """The window cut where a billing period (a calendar month, UTC) ends, and at every UTC
    midnight when `daily`: a FOCUS row's charge period lies inside one billing period."""
    cuts, at = [], start.astimezone(UTC)
    while at < end:
        step = (at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
                if daily else _next_month(at))  # fmt: skip
        cut = min(step, _next_month(at), end)
        cuts.append((at, cut))
        at = cut
    return cuts


def focus_rows(report: SpendReport, account: str = ACCOUNT) -> list[dict[str, str]]:
    """Every priced workload and gateway line of the report as a FOCUS 1.2 row."""
    rows = list(_gpu_rows(report, account))
    rows += [r for a in report.api if (r := _api_row(report, a, account)) is not None]
    return [{c: row.get(c, "") for c in COLUMNS} for row in rows]


def focus_csv(reports: Iterable[SpendReport], account: str = ACCOUNT) -> str:
    """The rows of every report (one per charge period) under one header."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        writer.writerows(focus_rows(report, account))
    return buf.getvalue()
