"""The API gauges on /metrics, by hand: lines that share labels are summed before the unit
cost is taken."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import generate_latest

from costgov.adapters.metrics import OperatorMetrics
from costgov.domain.gateways import GatewayUsage
from costgov.domain.tokens import TokenPrice
from costgov.services.accounting import Snapshot
from costgov.services.api_spend import ApiCost, ApiFigures, ApiSpend
from costgov.services.exporting import export_snapshot
from costgov.services.inventory import Inventory

AT = datetime(2026, 12, 1, 10, tzinfo=UTC)
D = Decimal
PRICE = TokenPrice("openai", "gpt-4o", D("2.5"), D(10))


def _line(provider: str, usd: str, tokens: int, requests: int | None = None) -> ApiCost:
    usage = GatewayUsage("litellm", provider, "gpt-4o", "nlp", {"input": D(tokens)}, D(usd))
    return ApiCost(usage, PRICE, None, "ml", None if requests is None else D(requests))


def _snapshot(api: ApiFigures | None) -> Snapshot:
    return Snapshot(AT, {}, (), {}, {}, {}, {}, 60, {}, 0, api=api)


def test_lines_sharing_labels_are_summed_then_divided() -> None:
    # one line with no provider label (priced as openai's) and one labelled openai:
    # $4.60 for 1.25M tokens and $0.10 for 1M: $4.70 for 2.25M = $2.0889 per 1M
    lines = (_line("", "4.60", 1_250_000), _line("openai", "0.10", 1_000_000))
    metrics = OperatorMetrics()
    export_snapshot(metrics, _snapshot(ApiFigures({}, ApiSpend(AT, AT, lines))), Inventory(), None)
    labels = {"gateway": "litellm", "provider": "openai", "model": "gpt-4o", "team": "nlp",
              "namespace": "ml"}  # fmt: skip
    registry = metrics.registry
    assert registry.get_sample_value("costgov_api_hourly_cost_dollars", labels) == 4.7
    per_million = registry.get_sample_value("costgov_api_cost_per_million_tokens_dollars", labels)
    assert per_million == float(D("4.70") * 1_000_000 / D(2_250_000))


def test_no_series_while_the_gateways_cannot_be_read() -> None:
    metrics = OperatorMetrics()
    export_snapshot(metrics, _snapshot(ApiFigures({}, None, "down")), Inventory(), None)
    text = generate_latest(metrics.registry).decode()
    assert "costgov_api_hourly_cost_dollars{" not in text


def test_dollars_per_thousand_requests_only_when_every_line_counts_its_requests() -> None:
    # $4.60 for 400 requests and $0.10 for 100: $4.70 for 500 = $9.40 per 1k
    lines = (_line("", "4.60", 1_250_000, 400), _line("openai", "0.10", 1_000_000, 100))
    metrics = OperatorMetrics()
    export_snapshot(metrics, _snapshot(ApiFigures({}, ApiSpend(AT, AT, lines))), Inventory(), None)
    labels = {"gateway": "litellm", "provider": "openai", "model": "gpt-4o", "team": "nlp",
              "namespace": "ml"}  # fmt: skip
    name = "costgov_api_cost_per_thousand_requests_dollars"
    assert metrics.registry.get_sample_value(name, labels) == float(D("4.70") * 1000 / 500)
    # one line's requests unknown: no figure (it would divide both lines' dollars by some)
    lines = (_line("", "4.60", 1_250_000, 400), _line("openai", "0.10", 1_000_000))
    export_snapshot(metrics, _snapshot(ApiFigures({}, ApiSpend(AT, AT, lines))), Inventory(), None)
    assert metrics.registry.get_sample_value(name, labels) is None
