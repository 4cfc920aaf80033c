"""Unit economics of hosted-API spend: dollars per 1M tokens and per 1k requests, by group
(namespace, namespace label or gateway team) and gateway.

Requests are summed over every model of a team (LiteLLM counts client requests by the model
asked for, not the one that served), so $ per request is told per team and gateway: the
dollars of its lines over its requests. A group with an unpriced line gets no unit figures
(they would leave its cost out and not its tokens or requests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from costgov.domain.gateways import RequestKey
from costgov.services.api_spend import ApiCost

__all__ = ["ApiUnit", "api_units", "per_million", "per_thousand"]

PLACES = Decimal("0.0001")


def _places(value: Decimal) -> Decimal | None:
    """To 4 places; None for a figure too big to show so (absurd counter values)."""
    try:
        return value.quantize(PLACES)
    except InvalidOperation:
        return None


def per_million(cost: Decimal | None, tokens: Decimal) -> Decimal | None:
    return None if cost is None or tokens <= 0 else _places(cost * 1_000_000 / tokens)


def per_thousand(cost: Decimal | None, requests: Decimal | None) -> Decimal | None:
    if cost is None or requests is None or requests <= 0:
        return None
    return _places(cost * 1000 / requests)


@dataclass(frozen=True)
class ApiUnit:
    group: str
    gateway: str
    cost: Decimal
    tokens: Decimal
    """Input (cached included) plus output."""
    requests: Decimal | None
    """None: no request counter of its gateway counted its teams (or none could be read)."""
    unpriced: int

    @property
    def per_million_tokens(self) -> Decimal | None:
        return None if self.unpriced else per_million(self.cost, self.tokens)

    @property
    def per_thousand_requests(self) -> Decimal | None:
        return None if self.unpriced else per_thousand(self.cost, self.requests)


def tokens_of(cost: ApiCost) -> Decimal:
    t = cost.usage.tokens
    return t.get("input", Decimal(0)) + t.get("output", Decimal(0))


def api_units(
    lines: Iterable[tuple[str, ApiCost]],
    requests: Mapping[RequestKey, Decimal] | None,
    group_of_team: Callable[[str], str],
) -> tuple[ApiUnit, ...]:
    """One row per (group, gateway): its lines' dollars and tokens, and its teams' requests
    (None when the request counters could not be read or counted none of its teams')."""
    cost: dict[tuple[str, str], Decimal] = {}
    tokens: dict[tuple[str, str], Decimal] = {}
    unpriced: dict[tuple[str, str], int] = {}
    for group, c in lines:
        key = (group, c.usage.gateway)
        cost[key] = cost.get(key, Decimal(0)) + (c.cost or Decimal(0))
        tokens[key] = tokens.get(key, Decimal(0)) + tokens_of(c)
        unpriced[key] = unpriced.get(key, 0) + (c.cost is None)
    counted: dict[tuple[str, str], Decimal] = {}
    for (gateway, _model, team), n in (requests or {}).items():
        key = (group_of_team(team), gateway)
        counted[key] = counted.get(key, Decimal(0)) + n
    rows = [
        ApiUnit(g, gw, cost.get((g, gw), Decimal(0)), tokens.get((g, gw), Decimal(0)),
                counted.get((g, gw)),
                unpriced.get((g, gw), 0))
        for g, gw in sorted(set(cost) | set(counted))
    ]  # fmt: skip
    return tuple(sorted(rows, key=lambda u: (-u.cost, u.group, u.gateway)))
