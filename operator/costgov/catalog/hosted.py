"""Hosted-model token prices: the user's pricing file first, then pydantic's genai-prices.

genai-prices (MIT, pydantic/genai-prices) bundles dated prices for about 2,300 models of 47
providers and matches the names APIs use (`gpt-4o-2024-08-06` is gpt-4o). costgov reads
only its bundled data: its `UpdatePrices` thread, which fetches a newer list from GitHub, is
never started, so a price never changes under a running operator without a release (pinned
in requirements.lock). Long-context tiers (a higher rate for requests over 200k tokens) are
per request; gateway counters sum requests, so the base rate is used and the note says so.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache

import genai_prices
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ConditionalPrice, ModelInfo, StartDateConstraint, TieredPrices

from costgov.domain.buildbuy import blended
from costgov.domain.catalogs import HostedModelPrice, PriceCatalog
from costgov.domain.model_names import identify, nearest
from costgov.domain.tokens import TokenPrice

__all__ = ["PROVIDER_IDS", "HostedPrices", "hosted_prices"]

PROVIDER_IDS = {
    "azure.openai": "azure", "azure.ai.openai": "azure", "az.ai.openai": "azure",
    "azure.ai.inference": "azure", "aws.bedrock": "aws", "aws.anthropic": "aws",
    "bedrock": "aws", "gcp.vertex_ai": "google", "gcp.anthropic": "google",
    "gcp.gen_ai": "google", "vertex_ai": "google", "gemini": "google", "gcp.gemini": "google",
    "xai": "x-ai", "x_ai": "x-ai", "mistral_ai": "mistral", "moonshot_ai": "moonshotai",
}  # fmt: skip
"""Gateways' provider names (OpenTelemetry's gen_ai.provider.name values, current and
older: azure.ai.openai, az.ai.openai, gcp.gen_ai, x_ai, mistral_ai, moonshot_ai...; LiteLLM's
api_provider) as genai-prices names them; others are used as they are."""
_PREFIX = re.compile(r"^([a-z0-9_.-]+)/(.+)$")


def _rate(value: Decimal | TieredPrices | None) -> tuple[Decimal | None, bool]:
    if isinstance(value, TieredPrices):
        return value.base, True
    return value, False


def _effective(model: ModelInfo, at: datetime) -> date | None:
    if not isinstance(model.prices, list):
        return None
    for price in reversed(model.prices):
        if isinstance(price, ConditionalPrice) and (
            price.constraint is None or price.constraint.active(at)
        ):
            constraint = price.constraint
            return constraint.start_date if isinstance(constraint, StartDateConstraint) else None
    return None


@lru_cache(maxsize=4096)
def _bundled(provider: str, model: str, day: str, strict: bool = False) -> TokenPrice | None:
    """genai-prices' price for a model on a day, at noon UTC (a provider's time-of-day
    discount, such as DeepSeek's off-peak hours, is not applied: gateway counters do not say
    when in the day tokens were used). `strict`: this provider's entry only."""
    at = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)
    snap = get_snapshot()
    wanted = provider or None
    try:
        found_provider, info = snap.find_provider_model(model, None, wanted, None)
    except LookupError:
        if wanted is None or strict:
            return None
        try:  # the provider under another name, or a reseller genai-prices lacks
            found_provider, info = snap.find_provider_model(model, None, None, None)
        except LookupError:
            return None
    prices = info.get_prices(at)
    (inp, t1), (out, t2) = _rate(prices.input_mtok), _rate(prices.output_mtok)
    (cached, t3), (write, t4) = _rate(prices.cache_read_mtok), _rate(prices.cache_write_mtok)
    if inp is None or out is None:
        return None
    start = _effective(info, at)
    notes = (
        ("long-context tiers not applied: the base rate is used",) if t1 or t2 or t3 or t4 else ()
    )
    return TokenPrice(
        found_provider.id, info.id, inp, out, cached, write,
        f"genai-prices {genai_prices.__version__} ({found_provider.name})",
        start, notes,
    )  # fmt: skip


_DATED = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


def _provider_id(provider: str) -> str:
    provider = provider.strip().lower()
    return PROVIDER_IDS.get(provider, provider)


@lru_cache(maxsize=4096)
def _model_id(provider: str, model: str) -> str | None:
    """genai-prices' id for a model as named (gpt-4o-2024-08-06 -> gpt-4o), or None."""
    try:
        _, info = get_snapshot().find_provider_model(model, None, provider or None, None)
    except LookupError:
        return None
    return info.id


@lru_cache(maxsize=4096)
def _guess(model: str) -> str | None:
    try:
        found, _ = get_snapshot().find_provider_model(model, None, None, None)
    except LookupError:
        return None
    return found.id


@lru_cache(maxsize=1)
def _bundled_models() -> tuple[tuple[str, str], ...]:
    """(provider, model id) of every model genai-prices prices."""
    snap = get_snapshot()
    return tuple((p.id, m.id) for p in snap.providers for m in p.models if not m.deprecated)


def _names(provider: str, model: str) -> list[str]:
    """Every spelling a pricing-file entry may use for a model a gateway names."""
    names = [model, _DATED.sub("", model)]
    found = _model_id(provider, model)
    return list(dict.fromkeys(names + ([found] if found else [])))


class HostedPrices:
    """Token prices for one catalog: its `models` entries, then genai-prices. An entry
    matches a gateway's model under any name of it: as written, without a date suffix, or
    as genai-prices resolves it (an entry for gpt-4o prices gpt-4o-2024-08-06), and under
    the provider's gateway names (an entry for azure prices azure.openai)."""

    def __init__(self, catalog: PriceCatalog) -> None:
        self._entries = tuple(catalog.models)
        self._picked: dict[tuple[str, date, Decimal], tuple[TokenPrice, str] | None] = {}
        self._own: dict[tuple[str, str], list[HostedModelPrice]] = {}
        for entry in sorted(catalog.models, key=lambda m: m.effective_date):
            provider = _provider_id(entry.provider)
            for name in _names(provider, entry.model.strip().lower()):
                self._own.setdefault((provider, name), []).append(entry)

    def _mine(self, provider: str, model: str, at: datetime) -> TokenPrice | None:
        names = _names(provider, model)
        if not provider:  # the provider genai-prices takes the model for, then any
            provider = _guess(model) or ""
            keys = [(provider, n) for n in names] + sorted(k for k in self._own if k[1] in names)
        else:
            keys = [(provider, n) for n in names]
        for key in keys:
            dated = [e for e in self._own.get(key, []) if e.effective_date <= at.date()]
            if dated:
                e = dated[-1]
                return TokenPrice(
                    e.provider, e.model, e.input_per_m_tokens, e.output_per_m_tokens,
                    e.cached_input_per_m_tokens, e.cache_write_per_m_tokens, e.source,
                    e.effective_date,
                )  # fmt: skip
        return None

    def price(self, provider: str, model: str, at: datetime) -> TokenPrice | None:
        """The price in effect at `at` for a model as a gateway names it (a `provider/`
        prefix, as LiteLLM writes `openai/gpt-4o`, is read as the provider), or None."""
        provider, model = _provider_id(provider), model.strip().lower()
        if not model:
            return None
        prefixed = _PREFIX.match(model)
        candidates = [(provider, model)]
        if prefixed:
            candidates.insert(0, (provider or _provider_id(prefixed.group(1)), prefixed.group(2)))
        day = at.date().isoformat()
        # the named provider's entry under any spelling first, then any provider's
        for strict in (True, False):
            for prov, name in candidates:
                found = self._mine(prov, name, at) or _bundled(prov, name, day, strict)
                if found is not None:
                    return found
        return None

    def _exact(self, provider: str, model: str, at: datetime) -> TokenPrice | None:
        """This provider's own price for this model id, or None (no other's stands in)."""
        provider, model = _provider_id(provider), model.strip().lower()
        return self._mine(provider, model, at) or _bundled(
            provider, model, at.date().isoformat(), strict=True
        )

    def nearest(
        self, served: str, at: datetime, input_share: Decimal
    ) -> tuple[TokenPrice, str] | None:
        """The cheapest hosted model nearest to a self-hosted one by family and size
        (domain/model_names.py), at the blended rate, with a sentence saying how it was
        picked; None when no priced model of its family is known. Free tiers (no price per
        token) are no comparison and are skipped."""
        key = (served, at.date(), input_share)
        if key not in self._picked:
            self._picked[key] = self._nearest(served, at, input_share)
        return self._picked[key]

    def _nearest(
        self, served: str, at: datetime, input_share: Decimal
    ) -> tuple[TokenPrice, str] | None:
        identity = identify(served)
        if identity is None:
            return None
        own = [(e.provider, e.model) for e in self._entries]
        group = nearest(identity, [*own, *_bundled_models()])
        priced = []
        for provider, model in group:
            price = self._exact(provider, model, at)
            if price is not None and (price.input > 0 or price.output > 0):
                priced.append((blended(price, input_share), provider, model, price))
        if not priced:
            return None
        price = min(priced, key=lambda p: p[:3])[3]
        why = (f"nearest hosted to {served} by family and size ({identity.describe()}): "
               f"the cheapest of {len(priced)} at the blended rate")  # fmt: skip
        return price, why


_KEPT: dict[int, tuple[PriceCatalog, HostedPrices]] = {}


def hosted_prices(catalog: PriceCatalog) -> HostedPrices:
    """One HostedPrices per catalog object, kept (its lookups and picks cached) for as long
    as the catalog is in use; at most four catalogs are remembered."""
    found = _KEPT.get(id(catalog))
    if found is not None and found[0] is catalog:
        return found[1]
    if len(_KEPT) >= 4:
        _KEPT.pop(next(iter(_KEPT)))
    prices = HostedPrices(catalog)
    _KEPT[id(catalog)] = (catalog, prices)
    return prices
