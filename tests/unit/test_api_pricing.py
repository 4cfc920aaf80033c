"""Hosted-API token pricing and gateway series, by hand.

Prices: genai-prices 0.2.3 (pinned in requirements.lock): gpt-4o $2.50 input, $1.25 cached
input, $10 output per 1M tokens; claude-sonnet-4 (claude-sonnet-4-0) $3 input, $0.30 cache
read, $3.75 cache write, $15 output.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from costgov.catalog.hosted import HostedPrices
from costgov.catalog.loading import load_catalog
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.gateways import SERIES_LABEL, usage_from_series
from costgov.domain.tokens import TokenPrice, token_cost

NOW = datetime(2026, 12, 1, tzinfo=UTC)
D = Decimal


def test_cached_input_is_part_of_input_and_priced_at_its_own_rate() -> None:
    price = HostedPrices(load_catalog(None)).price("openai", "gpt-4o", NOW)
    assert price is not None and (price.input, price.cached_input, price.output) == (
        D("2.5"), D("1.25"), D("10"))  # fmt: skip
    # 1M input of which 400k cached, 100k output: 600k x 2.50 + 400k x 1.25 + 100k x 10
    # = 1.50 + 0.50 + 1.00 = $3.00
    tokens = {"input": D(1_000_000), "cached_input": D(400_000), "output": D(100_000)}
    assert token_cost(tokens, price) == D("3.00")  # type: ignore[arg-type]


def test_cache_writes_are_part_of_input_at_their_rate_and_dated_names_match() -> None:
    price = HostedPrices(load_catalog(None)).price("anthropic", "claude-sonnet-4-20250514", NOW)
    assert price is not None and price.model == "claude-sonnet-4-0"
    # 1M input of which 100k were cache writes: 900k x 3 + 100k x 3.75 = 2.70 + 0.375
    # = $3.075 (genai-prices' calc_price(Usage(input_tokens=1M, cache_write_tokens=100k))
    # counts them so too)
    assert token_cost({"input": D(1_000_000), "cache_write": D(100_000)}, price) == D("3.075")
    # 1M input: 400k cache reads x 0.30 + 500k writes x 3.75 + 100k x 3 = 0.12 + 1.875 +
    # 0.30 = $2.295; writes beyond what reads leave of the input are capped
    mixed = {"input": D(1_000_000), "cached_input": D(400_000), "cache_write": D(900_000)}
    assert token_cost(mixed, price) == (D(400_000) * D("0.3") + D(600_000) * D("3.75")) / 1_000_000  # type: ignore[arg-type]


def test_provider_prefixes_and_gateway_provider_names() -> None:
    prices = HostedPrices(load_catalog(None))
    assert prices.price("", "openai/gpt-4o-mini", NOW).model == "gpt-4o-mini"  # type: ignore[union-attr]
    azure = prices.price("azure.openai", "gpt-4o", NOW)
    assert azure is not None and azure.provider == "azure"
    assert prices.price("acme", "acme-llm-70b", NOW) is None
    assert prices.price("openai", "", NOW) is None


def test_a_pricing_file_entry_matches_the_names_gateways_use() -> None:
    own = PriceCatalog.model_validate({
        "version": "negotiated",
        "models": [{"provider": "azure", "model": "gpt-4o", "inputPerMTokens": "1.00",
                    "outputPerMTokens": "4.00", "source": "azure contract",
                    "effectiveDate": "2026-01-01"},
                   {"provider": "openai", "model": "gpt-4o", "inputPerMTokens": "2.00",
                    "outputPerMTokens": "8.00", "source": "openai contract",
                    "effectiveDate": "2026-01-01"}],
    })  # fmt: skip
    prices = HostedPrices(load_catalog(None).merged(own))
    found = {
        (p, m): prices.price(p, m, NOW).source  # type: ignore[union-attr]
        for p, m in (("azure.openai", "gpt-4o"), ("openai", "gpt-4o-2024-08-06"),
                     ("", "openai/gpt-4o"), ("", "gpt-4o"), ("openai", "gpt-4o-mini"))
    }  # fmt: skip
    assert found == {
        ("azure.openai", "gpt-4o"): "azure contract",  # OpenTelemetry's name for azure
        ("openai", "gpt-4o-2024-08-06"): "openai contract",  # a dated name of gpt-4o
        ("", "openai/gpt-4o"): "openai contract",  # LiteLLM's provider/model
        ("", "gpt-4o"): "openai contract",  # no provider: the one genai-prices names
        ("openai", "gpt-4o-mini"): "genai-prices 0.2.3 (OpenAI)",  # another model
    }


def test_a_pricing_file_entry_wins_from_its_effective_date() -> None:
    own = PriceCatalog.model_validate({
        "version": "negotiated",
        "models": [{"provider": "openai", "model": "gpt-4o", "inputPerMTokens": "2.00",
                    "outputPerMTokens": "8.00", "source": "our contract",
                    "effectiveDate": "2026-11-01"}],
    })  # fmt: skip
    prices = HostedPrices(load_catalog(None).merged(own))
    before = prices.price("openai", "gpt-4o", datetime(2026, 10, 31, tzinfo=UTC))
    after = prices.price("openai", "gpt-4o", NOW)
    assert before is not None and before.input == D("2.5") and before.source.startswith("genai")
    assert after is not None and (after.input, after.output, after.source) == (
        D("2.00"), D("8.00"), "our contract")  # fmt: skip
    assert after.effective == date(2026, 11, 1)


def _s(series: str, value: float, **labels: str) -> tuple[dict[str, str], float]:
    return {SERIES_LABEL: series, **labels}, value


def test_kong_total_tokens_and_envoy_reasoning_are_not_counted_twice() -> None:
    kong = {"ai_provider": "openai", "ai_model": "gpt-4o", "workspace": "default"}
    envoy = {"gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-4o"}
    usage = usage_from_series([
        _s("kong_tokens", 25, token_type="prompt_tokens", **kong),
        _s("kong_tokens", 12, token_type="completion_tokens", **kong),
        _s("kong_tokens", 37, token_type="total_tokens", **kong),
        _s("kong_usd", 0.00037, **kong),
        _s("otel", 8, gen_ai_token_type="input", **envoy),
        _s("otel", 377, gen_ai_token_type="output", **envoy),
        _s("otel", 320, gen_ai_token_type="reasoning", **envoy),
        _s("otel", float("nan"), gen_ai_token_type="cached_input", **envoy),
    ])  # fmt: skip
    by_gateway = {u.gateway: u for u in usage}
    assert dict(by_gateway["kong"].tokens) == {"input": D(25), "output": D(12)}
    assert by_gateway["kong"].reported_usd == D("0.00037") and by_gateway["kong"].team == "default"
    assert dict(by_gateway["opentelemetry"].tokens) == {"input": D(8), "output": D(377)}
    assert by_gateway["opentelemetry"].reported_usd is None


def test_litellm_none_labels_and_a_spend_series_without_the_provider_join_one_line() -> None:
    base = {"model": "gpt-4o", "team": "None", "team_alias": "None", "api_key_alias": "ci-key"}
    usage = usage_from_series([
        _s("litellm_input", 1000, requested_model="gpt-4o", **base),
        _s("litellm_usd", 0.5, api_provider="openai", **base),
    ])  # fmt: skip
    [line] = usage
    assert (line.team, line.provider, line.reported_usd) == ("ci-key", "openai", D("0.5"))
    # a configured team label replaces the gateway's own
    [mine] = usage_from_series([_s("litellm_input", 1, user="u1", **base)], team_labels=["user"])
    assert mine.team == "u1"


def test_a_kong_total_without_its_parts_counts_as_input() -> None:
    kong = {"ai_provider": "openai", "ai_model": "text-embedding-3-small", "workspace": "w"}
    [line] = usage_from_series([_s("kong_tokens", 500, token_type="total_tokens", **kong)])
    assert dict(line.tokens) == {"input": D(500)}


@given(
    inp=st.integers(0, 10**9), cached=st.integers(0, 10**9), out=st.integers(0, 10**9),
)  # fmt: skip
def test_cost_is_between_all_cached_and_none_cached(inp: int, cached: int, out: int) -> None:
    price = TokenPrice("p", "m", D("3"), D("15"), D("0.30"))
    tokens = {"input": D(inp), "cached_input": D(cached), "output": D(out)}
    cost = token_cost(tokens, price)  # type: ignore[arg-type]
    full = token_cost({"input": D(inp), "output": D(out)}, price)
    assert D(0) <= cost <= full
    assert cost >= (D(inp) * D("0.30") + D(out) * 15) / 1_000_000
