"""Hosted-API spend over a span: one query for every gateway counter, priced by model.

Where a gateway reports its own dollars (LiteLLM, Kong, agentgateway) those are the cost and
the list price of its tokens is shown next to them; where it reports tokens only (Envoy AI
Gateway's OpenTelemetry metrics), the list price is the cost. A model no price list knows,
with no dollars from its gateway, is unpriced: named, never $0.

Counters are read with Prometheus's `increase()` over the span: exact when the series was
scraped at the span's start and end; a series born inside the span is counted from its
first scrape (the tokens of the requests before that scrape are extrapolated, not known).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from costgov.adapters import promql
from costgov.adapters.prometheus import MetricsError, PrometheusSource
from costgov.catalog.hosted import HostedPrices
from costgov.domain.gateways import (
    GatewayUsage,
    RequestKey,
    requests_from_series,
    usage_from_series,
)
from costgov.domain.tokens import TokenPrice, token_cost
from costgov.services.accounting import Snapshot

__all__ = ["HOUR", "ApiCost", "ApiFigures", "ApiSpend", "api_spend", "price_api_usage", "with_api"]


@dataclass(frozen=True)
class ApiCost:
    """One gateway's usage of one model by one team, and what it cost."""

    usage: GatewayUsage
    price: TokenPrice | None
    list_usd: Decimal | None
    """The tokens at the price list's rates (None: the model is not in it)."""
    namespace: str = ""
    """The namespace the team maps to ("" when it maps to none)."""
    requests: Decimal | None = None
    """Requests its gateway counted for this model and team (None: none it can tell)."""

    @property
    def cost(self) -> Decimal | None:
        """The gateway's own dollars when it reports them, else the list price."""
        return self.usage.reported_usd if self.usage.reported_usd is not None else self.list_usd

    @property
    def unpriced(self) -> str | None:
        if self.cost is not None:
            return None
        u = self.usage
        return (
            f"{u.gateway} model {u.model or '(none)'} of provider {u.provider or '(none)'} is in "
            "no price list and its gateway reports no dollars: add it under `models:` in a "
            "pricing file"
        )


@dataclass(frozen=True)
class ApiSpend:
    start: datetime
    end: datetime
    lines: tuple[ApiCost, ...]
    warnings: tuple[str, ...] = ()
    requests: Mapping[RequestKey, Decimal] | None = None
    """Requests by (gateway, model, team) (None: not read, or the read failed)."""

    @property
    def total(self) -> Decimal:
        return sum((c.cost for c in self.lines if c.cost is not None), Decimal(0))


def price_api_usage(
    usage: Iterable[GatewayUsage],
    prices: HostedPrices,
    at: datetime,
    namespaces: Mapping[str, str] | None = None,
) -> tuple[ApiCost, ...]:
    """Each line priced at the list price in effect at `at`, its team mapped to a namespace
    (a team with no entry in `namespaces` keeps its name as the namespace when the map is
    None, and maps to none otherwise)."""
    out = []
    for u in usage:
        price = prices.price(u.provider, u.model, at)
        listed = token_cost(u.tokens, price) if price is not None and u.tokens else None
        if price is not None and not u.tokens:
            listed = Decimal(0)
        ns = u.team if namespaces is None else namespaces.get(u.team, "")
        out.append(ApiCost(u, price, listed, ns))
    return tuple(out)


async def api_spend(
    source: PrometheusSource,
    prices: HostedPrices,
    *,
    start: datetime,
    end: datetime,
    team_labels: Sequence[str] = (),
    namespaces: Mapping[str, str] | None = None,
    requests: bool = True,
) -> ApiSpend:
    """What the gateways counted between `start` and `end`, priced; with `requests`, the
    requests they served too (for $ per request)."""
    span = int((end - start).total_seconds())
    if span <= 0:
        return ApiSpend(start, end, ())
    if requests:
        result, counted = await asyncio.gather(
            source.query(promql.gateway_increase(span, team_labels), end),
            _requests(source, span, end, team_labels),
        )
    else:
        result, counted = await source.query(promql.gateway_increase(span, team_labels), end), None
    usage = usage_from_series(((s.labels, s.value) for s in result.samples), team_labels)
    lines = price_api_usage(usage, prices, end, namespaces)
    warnings = list(result.warnings)
    if counted is None:
        return ApiSpend(start, end, lines, tuple(warnings))
    if isinstance(counted, MetricsError):
        warnings.append(f"requests not counted, no $ per request: {counted}")
        return ApiSpend(start, end, lines, tuple(warnings))
    lines = tuple(
        replace(c, requests=counted.get((c.usage.gateway, c.usage.model, c.usage.team)))
        for c in lines
    )
    return ApiSpend(start, end, lines, tuple(warnings), counted)


async def _requests(
    source: PrometheusSource, span: int, end: datetime, team_labels: Sequence[str]
) -> dict[RequestKey, Decimal] | MetricsError:
    """The request counters' growth (its failure costs only the $ per request)."""
    try:
        result = await source.query(promql.gateway_requests(span, team_labels), end)
    except MetricsError as exc:
        return exc
    return requests_from_series(((s.labels, s.value) for s in result.samples), team_labels)


HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class ApiFigures:
    """One cycle's hosted-API spend: over each accounting window, and over the last hour
    (the rate a forecast extends)."""

    windows: Mapping[str, ApiSpend]
    hourly: ApiSpend | None
    error: str | None = None
    """Why the gateways' spend could not be read this cycle (then `windows` is empty)."""


async def with_api(
    snapshot: Snapshot,
    source: PrometheusSource,
    prices: HostedPrices,
    *,
    team_labels: Sequence[str] = (),
    namespaces: Mapping[str, str] | None = None,
) -> Snapshot:
    """The snapshot with the gateways' spend over each of its windows (one query each,
    concurrently). A failed query does not fail the snapshot (GPU figures go on): it is
    recorded in `ApiFigures.error`, and a policy whose budget counts API spend holds its
    figures as for any failed query (policy_reconciling.py)."""
    if snapshot.error:
        return snapshot

    async def over(start: datetime, end: datetime, requests: bool) -> ApiSpend:
        return await api_spend(source, prices, start=start, end=end, team_labels=team_labels,
                               namespaces=namespaces, requests=requests)  # fmt: skip

    names = list(snapshot.windows)
    spans = [(snapshot.windows[n].start, snapshot.windows[n].end, False) for n in names]
    spans.append((snapshot.at - HOUR, snapshot.at, True))  # only the last hour's per request
    # every task's outcome is retrieved, so none is left to surface at shutdown
    outcomes = await asyncio.gather(*(over(*span) for span in spans), return_exceptions=True)
    failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if isinstance(failed, Exception):  # MetricsError, or anything else the query met
        error = f"the LLM gateways' spend could not be read: {failed}"
        return replace(snapshot, api=ApiFigures({}, None, error))
    if failed is not None:
        raise failed  # cancellation
    found = [o for o in outcomes if isinstance(o, ApiSpend)]
    warnings = tuple(w for spend in found for w in spend.warnings)
    figures = ApiFigures(dict(zip(names, found[:-1], strict=True)), found[-1])
    return replace(
        snapshot, api=figures, warnings=snapshot.warnings + warnings,
        queries=snapshot.queries + len(spans),
    )  # fmt: skip
