"""Hosted-model token prices and what a count of tokens costs under them.

Prices are US dollars per 1,000,000 tokens. Cached input tokens (prompt-cache reads) and
cache-write tokens are parts of the input tokens (OpenAI's `prompt_tokens` includes
`cached_tokens`; LiteLLM folds Anthropic's cache reads and writes into its input count the
same way; pydantic's genai-prices counts `cache_read_tokens` and `cache_write_tokens` inside
`input_tokens`): they are priced at their own rates instead of the input rate, never on top
of it. A part larger than the whole (counters scraped at different moments) is capped.
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
    """Dollars for a count of tokens by type (cached input and cache writes within input)."""
    given = {t: max(Decimal(0), tokens.get(t, Decimal(0))) for t in TOKEN_TYPES}
    cached = min(given["cached_input"], given["input"])
    written = min(given["cache_write"], given["input"] - cached)
    cached_rate = price.input if price.cached_input is None else price.cached_input
    write_rate = price.input if price.cache_write is None else price.cache_write
    dollars = (
        (given["input"] - cached - written) * price.input
        + cached * cached_rate
        + written * write_rate
        + given["output"] * price.output
    )
    return dollars / MILLION
