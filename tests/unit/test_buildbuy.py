"""Build versus buy, by hand."""

from __future__ import annotations

from decimal import Decimal

from costgov.domain.buildbuy import blended, build_vs_buy
from costgov.domain.tokens import TokenPrice

D = Decimal
# a hosted model at $3 input and $15 output per 1M tokens (claude-sonnet-4's list price)
SONNET = TokenPrice("anthropic", "claude-sonnet-4-0", D(3), D(15))


def test_a_busy_server_is_cheaper_than_the_hosted_model() -> None:
    # 75 % input: 0.75 x 3 + 0.25 x 15 = 2.25 + 3.75 = $6 per 1M tokens. A p5.48xlarge at
    # 55.04 $/h serving 20M tokens an hour: 14,600M tokens a month = $87,600 hosted against
    # 55.04 x 730 = $40,179.20 self-hosted; self-hosting saves $47,420.80; it pays above
    # 40,179.20 / 6 x 1M = 6,696,533,333 tokens a month
    assert blended(SONNET, D("0.75")) == D(6)
    found = build_vs_buy(SONNET, input_share=D("0.75"), self_hourly=D("55.04"),
                         tokens_per_hour=D(20_000_000))  # fmt: skip
    assert (found.monthly_tokens, found.hosted_monthly, found.self_monthly) == (
        D(14_600_000_000), D(87_600), D("40179.20"))  # fmt: skip
    assert (found.cheaper, found.monthly_difference) == ("self-hosted", D("47420.80"))
    assert int(found.crossover_monthly_tokens or 0) == 6_696_533_333


def test_a_free_hosted_model_has_no_crossover() -> None:
    free = TokenPrice("x", "m", D(0), D(0))
    found = build_vs_buy(free, input_share=D("0.5"), self_hourly=D(1), tokens_per_hour=D(1))
    assert found.crossover_monthly_tokens is None and found.cheaper == "hosted"


def test_the_blend_is_shown_to_four_places_and_used_as_shown() -> None:
    mini = TokenPrice("openai", "gpt-4o-mini", D("0.15"), D("0.60"))
    # 0.75 x 0.15 + 0.25 x 0.60 = 0.1125 + 0.15 = 0.2625; 65.7M tokens x 0.2625 = 17.24625
    found = build_vs_buy(mini, input_share=D("0.75"), self_hourly=D("0.40"),
                         tokens_per_hour=D(90_000))  # fmt: skip
    assert found.hosted_per_million == D("0.2625")
    assert found.hosted_monthly == D("65.7") * D("0.2625")
    # equal costs favour neither
    even = build_vs_buy(mini, input_share=D("0.75"), self_hourly=D(0), tokens_per_hour=D(0))
    assert even.cheaper == "neither"
