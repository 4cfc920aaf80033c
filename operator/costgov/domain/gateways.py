"""What LLM gateways export to Prometheus, and how their series become token counts and
dollars by model and by team.

The metric names, label sets and token types are the gateways' own (docs/api-spend.md cites
the source of each):
- LiteLLM proxy: counters `litellm_{input,output}_tokens_metric_total`, provider-reported
  `litellm_input_cached_tokens_metric_total` and `litellm_input_cache_creation_tokens_metric_total`,
  and its own dollars `litellm_spend_metric_total`; labels model, api_provider, team,
  team_alias, user, end_user, api_key_alias, requested_model (absent values are "None").
- OpenTelemetry GenAI histograms, `gen_ai_client_token_usage_sum` (Envoy AI Gateway v0.5+;
  `gen_ai_client_token_usage_token_sum` before) with `gen_ai_token_type` input, output,
  cached_input, cache_creation_input (reasoning is a part of output: not added again),
  `gen_ai_request_model`, `gen_ai_provider_name` (`gen_ai_system_name` before v0.4);
  agentgateway: the same histogram prefixed `agentgateway_`, token types input, output,
  input_cache_read, input_cache_write, provider in `gen_ai_system` ("unknown" when absent),
  and its own dollars `agentgateway_gen_ai_client_cost_usd_total`.
- Kong AI Gateway: `kong_ai_llm_tokens_total` (token_type prompt_tokens, completion_tokens;
  total_tokens is their sum, counted as input only when Kong recorded neither part) and
  its own dollars `kong_ai_llm_cost_total`, labels ai_provider, ai_model, workspace,
  consumer (3.11+). The exporter prefixes every name with `kong_` (kong/plugins/prometheus/
  prometheus.lua `init(shm, "kong_")`); Kong's tests match the names without it.

Requests, for $ per request (`REQUEST_METRICS`): LiteLLM's client requests
`litellm_proxy_total_requests_metric_total` (labelled requested_model, team, team_alias,
user, api_key_alias, status_code; 4xx and 5xx left out); the OpenTelemetry histograms'
`_count` for token type input (every request records its input tokens once); Kong's
`kong_ai_llm_requests_total`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from costgov.domain.tokens import TokenType

__all__ = [
    "ABSENT",
    "GATEWAY_METRICS",
    "REQUEST_METRICS",
    "SERIES_LABEL",
    "GatewayMetric",
    "GatewayUsage",
    "check_team_labels",
    "check_team_namespaces",
    "requests_from_series",
    "team_of",
    "usage_from_series",
]

Gateway = Literal["litellm", "opentelemetry", "agentgateway", "kong"]
SERIES_LABEL = "costgov_series"
"""The label the query adds to say which of `GATEWAY_METRICS` a result series came from."""
ABSENT = frozenset({"", "None", "unknown"})
"""How gateways spell a label with no value (LiteLLM str()s Python's None; agentgateway
writes "unknown")."""


@dataclass(frozen=True, slots=True)
class GatewayMetric:
    """One counter a gateway exports: what it counts, and where its labels are."""

    key: str
    metric: str
    gateway: Gateway
    model: tuple[str, ...]
    provider: tuple[str, ...]
    token_type: str | None = None
    """The label whose value is the token type; None: `fixed` says what is counted."""
    fixed: TokenType | Literal["usd"] | None = None
    types: Mapping[str, TokenType | Literal["total"]] = field(default_factory=dict)
    """Token-type label values counted, and as what; other values are left out."""
    team: tuple[str, ...] = ()
    """Labels that may name who spent (the first present, in this order)."""


_LITELLM = {"model": ("model", "requested_model"), "provider": ("api_provider",),
            "team": ("team_alias", "team", "api_key_alias", "user")}  # fmt: skip
_OTEL_TYPES: dict[str, TokenType] = {
    "input": "input", "output": "output", "cached_input": "cached_input",
    "cache_creation_input": "cache_write",
}  # fmt: skip
_AGW_TYPES: dict[str, TokenType] = {
    "input": "input", "output": "output", "input_cache_read": "cached_input",
    "input_cache_write": "cache_write",
}  # fmt: skip
_OTEL = {"model": ("gen_ai_request_model", "gen_ai_original_model", "gen_ai_response_model"),
         "provider": ("gen_ai_provider_name", "gen_ai_system_name", "gen_ai_system")}  # fmt: skip
_KONG = {"model": ("ai_model",), "provider": ("ai_provider",), "team": ("consumer", "workspace")}
_KONG_TYPES: dict[str, TokenType | Literal["total"]] = {
    "prompt_tokens": "input", "completion_tokens": "output", "total_tokens": "total",
}  # fmt: skip


def _litellm(key: str, metric: str, fixed: TokenType | Literal["usd"]) -> GatewayMetric:
    return GatewayMetric(key, metric, "litellm", fixed=fixed, **_LITELLM)  # type: ignore[arg-type]


def _otel(key: str, metric: str, gateway: Gateway, types: Mapping[str, TokenType]) -> GatewayMetric:
    return GatewayMetric(key, metric, gateway, token_type="gen_ai_token_type", types=types,
                         team=("gateway", "route"), **_OTEL)  # type: ignore[arg-type]  # fmt: skip


def _kong(key: str, metric: str, tokens: bool) -> GatewayMetric:
    if tokens:
        return GatewayMetric(key, metric, "kong", token_type="token_type", types=_KONG_TYPES,
                             **_KONG)  # type: ignore[arg-type]  # fmt: skip
    return GatewayMetric(key, metric, "kong", fixed="usd", **_KONG)  # type: ignore[arg-type]


GATEWAY_METRICS: tuple[GatewayMetric, ...] = (
    _litellm("litellm_input", "litellm_input_tokens_metric_total", "input"),
    _litellm("litellm_output", "litellm_output_tokens_metric_total", "output"),
    _litellm("litellm_cached", "litellm_input_cached_tokens_metric_total", "cached_input"),
    _litellm("litellm_cache_write", "litellm_input_cache_creation_tokens_metric_total", "cache_write"),
    _litellm("litellm_usd", "litellm_spend_metric_total", "usd"),
    _otel("otel", "gen_ai_client_token_usage_sum", "opentelemetry", _OTEL_TYPES),
    _otel("otel_v04", "gen_ai_client_token_usage_token_sum", "opentelemetry", _OTEL_TYPES),
    _otel("agw", "agentgateway_gen_ai_client_token_usage_sum", "agentgateway", _AGW_TYPES),
    GatewayMetric("agw_usd", "agentgateway_gen_ai_client_cost_usd_total", "agentgateway",
                  fixed="usd", team=("gateway", "route"), **_OTEL),  # type: ignore[arg-type]
    _kong("kong_tokens", "kong_ai_llm_tokens_total", True),
    _kong("kong_usd", "kong_ai_llm_cost_total", False),
)  # fmt: skip
_BY_KEY = {m.key: m for m in GATEWAY_METRICS}


@dataclass(frozen=True, slots=True)
class RequestMetric:
    """A counter of requests: each series one model's (or one requested model's) of a team."""

    key: str
    selector: str
    gateway: Gateway
    model: tuple[str, ...]
    team: tuple[str, ...]


_IN = '{gen_ai_token_type="input"}'
REQUEST_METRICS: tuple[RequestMetric, ...] = (
    RequestMetric("litellm_requests", 'litellm_proxy_total_requests_metric_total'
                  '{status_code!~"[45].."}', "litellm", ("requested_model",), _LITELLM["team"]),
    RequestMetric("otel_requests", f"gen_ai_client_token_usage_count{_IN}", "opentelemetry",
                  _OTEL["model"], ("gateway", "route")),
    RequestMetric("otel_v04_requests", f"gen_ai_client_token_usage_token_count{_IN}",
                  "opentelemetry", _OTEL["model"], ("gateway", "route")),
    RequestMetric("agw_requests", f"agentgateway_gen_ai_client_token_usage_count{_IN}",
                  "agentgateway", _OTEL["model"], ("gateway", "route")),
    RequestMetric("kong_requests", "kong_ai_llm_requests_total", "kong", _KONG["model"],
                  _KONG["team"]),
)  # fmt: skip
_REQUESTS_BY_KEY = {m.key: m for m in REQUEST_METRICS}


@dataclass(frozen=True)
class GatewayUsage:
    """What one gateway counted for one model and one team over a span."""

    gateway: Gateway
    provider: str
    model: str
    team: str
    tokens: Mapping[TokenType, Decimal]
    reported_usd: Decimal | None
    """The gateway's own dollars, when it reports them."""


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def check_team_labels(names: Iterable[str]) -> list[str]:
    """Gateway labels that name who spent: Prometheus label names (they go into PromQL)."""
    out = list(names)
    for name in out:
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(
                f"team label {name!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
            )
    return out


def check_team_namespaces(pairs: Mapping[str, str]) -> dict[str, str]:
    """A gateway team -> namespace map: every namespace a Kubernetes namespace name."""
    for team, namespace in pairs.items():
        if not team:
            raise ValueError("a team -> namespace entry has an empty team")
        if not _NAMESPACE.match(namespace):
            raise ValueError(
                f"team {team!r} maps to {namespace!r}, not a namespace name (a DNS-1123 "
                "label: lower-case letters, digits and '-', at most 63)"
            )
    return dict(pairs)


def _first(labels: Mapping[str, str], names: Sequence[str]) -> str:
    return next((labels[n] for n in names if labels.get(n, "") not in ABSENT), "")


def team_of(labels: Mapping[str, str], names: Sequence[str]) -> str:
    """Who spent: the first of `names` the series carries a value for ("" when none)."""
    return _first(labels, names)


def usage_from_series(
    series: Iterable[tuple[Mapping[str, str], float]], team_labels: Sequence[str] = ()
) -> list[GatewayUsage]:
    """Token counts and dollars by (gateway, provider, model, team), from the increase of each
    gateway counter over a span (`SERIES_LABEL` names the counter). `team_labels`, when
    given, are the labels that name who spent, in place of each gateway's own."""
    grouped: dict[tuple[Gateway, str, str], _Counts] = {}
    for labels, value in series:
        metric = _BY_KEY.get(labels.get(SERIES_LABEL, ""))
        if metric is None or value != value or value <= 0:  # NaN, or nothing counted
            continue
        what: TokenType | Literal["usd", "total"] | None = metric.fixed
        if metric.token_type is not None:
            what = metric.types.get(labels.get(metric.token_type, ""))
        if what is None:
            continue
        team = team_of(labels, team_labels or metric.team)
        key = (metric.gateway, _first(labels, metric.model), team)
        counts = grouped.setdefault(key, _Counts())
        counts.provider = counts.provider or _first(labels, metric.provider)
        amount = Decimal(repr(value))
        if what == "usd":
            counts.usd = (counts.usd or Decimal(0)) + amount
        elif what == "total":
            counts.total += amount
        else:
            counts.tokens[what] = counts.tokens.get(what, Decimal(0)) + amount
    return [
        GatewayUsage(gateway, c.provider, model, team, c.counted(), c.usd)
        for (gateway, model, team), c in sorted(grouped.items())
    ]


@dataclass
class _Counts:
    provider: str = ""
    tokens: dict[TokenType, Decimal] = field(default_factory=dict)
    usd: Decimal | None = None
    total: Decimal = Decimal(0)
    """Tokens a gateway counted only as a total (Kong's total_tokens)."""

    def counted(self) -> dict[TokenType, Decimal]:
        """The tokens by type; a total with no parts counts as input (the cheaper rate,
        said in docs/api-spend.md), a total beside its parts is their sum: left out."""
        if self.total and not self.tokens.get("input") and not self.tokens.get("output"):
            return {**self.tokens, "input": self.total}
        return self.tokens


RequestKey = tuple[Gateway, str, str]
"""(gateway, model, team): LiteLLM names the model requested, the others the model used."""


def requests_from_series(
    series: Iterable[tuple[Mapping[str, str], float]], team_labels: Sequence[str] = ()
) -> dict[RequestKey, Decimal]:
    """Requests by (gateway, model, team) from the growth of each request counter
    (`SERIES_LABEL` names it); `team_labels` as in `usage_from_series`."""
    out: dict[RequestKey, Decimal] = {}
    for labels, value in series:
        metric = _REQUESTS_BY_KEY.get(labels.get(SERIES_LABEL, ""))
        if metric is None or value != value or value <= 0:
            continue
        key = (
            metric.gateway,
            _first(labels, metric.model),
            team_of(labels, team_labels or metric.team),
        )
        out[key] = out.get(key, Decimal(0)) + Decimal(repr(value))
    return out
