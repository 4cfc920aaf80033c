"""Hosted-model token prices and what a count of tokens costs under them.

Prices are US dollars per 1,000,000 tokens. Cached input tokens are a part of the input
tokens (OpenAI's `prompt_tokens` includes `cached_tokens`; LiteLLM and the OpenTelemetry
GenAI gateways report them so; pydantic's genai-prices counts them the same way): they are
priced at the cached rate instead of the input rate, never on top of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

__all__ = ["MILLION", "TOKEN_TYPES", "TokenPrice", "TokenType", "token_cost"]

TokenType = Literal["input", "output", "cached_input", "cache_write"]
TOKEN_TYPES: tuple[TokenType, ...] = ("input", "output", "cached_input", "cache_write")
MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class TokenPrice:
    """One hosted model's prices, and where they come from."""

    provider: str
    model: str
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    """None: cached input is billed as input."""
    cache_write: Decimal | None = None
    """None: writing the prompt cache is billed as input."""
    source: str = ""
    effective: date | None = None
    """When this price took effect, where the source says."""
    notes: tuple[str, ...] = ()
    """What the figure leaves out (long-context tiers, for instance)."""


def token_cost(tokens: Mapping[TokenType, Decimal], price: TokenPrice) -> Decimal:
    """Dollars for a count of tokens by type. Cached input beyond the input count (a gateway
    that reports them apart, or counters scraped at different moments) is capped at it."""
    given = {t: max(Decimal(0), tokens.get(t, Decimal(0))) for t in TOKEN_TYPES}
    cached = min(given["cached_input"], given["input"])
    cached_rate = price.input if price.cached_input is None else price.cached_input
    write_rate = price.input if price.cache_write is None else price.cache_write
    dollars = (
        (given["input"] - cached) * price.input
        + cached * cached_rate
        + given["output"] * price.output
        + given["cache_write"] * write_rate
    )
    return dollars / MILLION
