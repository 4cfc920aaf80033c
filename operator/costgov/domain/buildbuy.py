"""Build versus buy: a self-hosted model server against the hosted model it replaces.

hosted $ per 1M tokens = input share x input price + (1 - input share) x output price
tokens a month          = tokens counted over the trailing hour x 730
hosted $ a month        = tokens a month / 1M x hosted $ per 1M tokens
self-hosted $ a month   = the server's $/h now x 730 (whatever the volume)
crossover               = self-hosted $ a month / hosted $ per 1M tokens x 1M:
                          the monthly volume above which self-hosting is cheaper
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from costgov.domain.money import HOURS_PER_MONTH
from costgov.domain.tokens import MILLION, TokenPrice

__all__ = ["BuildVsBuy", "blended", "build_vs_buy"]


@dataclass(frozen=True)
class BuildVsBuy:
    hosted_per_million: Decimal
    monthly_tokens: Decimal
    hosted_monthly: Decimal
    self_monthly: Decimal
    crossover_monthly_tokens: Decimal | None
    """None when the hosted model is free per token."""

    @property
    def cheaper(self) -> Literal["self-hosted", "hosted", "neither"]:
        if self.self_monthly == self.hosted_monthly:
            return "neither"
        return "self-hosted" if self.self_monthly < self.hosted_monthly else "hosted"

    @property
    def monthly_difference(self) -> Decimal:
        return abs(self.hosted_monthly - self.self_monthly)


PLACES = Decimal("0.0001")


def blended(price: TokenPrice, input_share: Decimal) -> Decimal:
    """The hosted model's $ per 1M tokens at a share of input tokens (0..1), to 4 places:
    the figure shown is the figure every other one is computed with."""
    return (input_share * price.input + (1 - input_share) * price.output).quantize(PLACES)


def build_vs_buy(
    price: TokenPrice, *, input_share: Decimal, self_hourly: Decimal, tokens_per_hour: Decimal
) -> BuildVsBuy:
    per_million = blended(price, input_share)
    monthly_tokens = tokens_per_hour * HOURS_PER_MONTH
    self_monthly = self_hourly * HOURS_PER_MONTH
    crossover = self_monthly / per_million * MILLION if per_million > 0 else None
    return BuildVsBuy(per_million, monthly_tokens, monthly_tokens / MILLION * per_million,
                      self_monthly, crossover)  # fmt: skip
