"""Hosted-API spend next to GPU spend: `costgov report` (table, JSON, FOCUS) over a real
Prometheus holding LLM gateways' counters as each gateway exports them.

The series and their labels are written from each gateway's own source (not from costgov's
parser), counters sampled every 60 s from 10 minutes before the hour to 10 minutes after it,
so that `increase()` over the hour starts and ends on a sample (no extrapolation):
- LiteLLM proxy (litellm/types/integrations/prometheus.py: token counters labelled
  end_user, hashed_api_key, api_key_alias, model, team, team_alias, user, user_email,
  requested_model, model_id; the spend counter the same with client_ip, user_agent instead of
  requested_model; absent values are the string "None").
- Envoy AI Gateway v0.5+ (internal/metrics/genai.go; tests/data-plane/vcr/prometheus_metrics_test.go):
  `gen_ai_client_token_usage_sum` with gen_ai_operation_name, gen_ai_original_model,
  gen_ai_provider_name, gen_ai_request_model, gen_ai_response_model, gen_ai_token_type
  (input, cached_input, cache_creation_input, output, reasoning), otel_scope_*.
- agentgateway (crates/agentgateway/src/telemetry/metrics.rs): the same histogram prefixed
  `agentgateway_`, token types input, output, input_cache_read, input_cache_write, provider
  in gen_ai_system, route labels bind, gateway, listener, route, route_rule.
- Kong AI Gateway (kong/plugins/prometheus/exporter.lua, prefix kong_):
  `kong_ai_llm_tokens_total` (token_type prompt_tokens, completion_tokens, total_tokens) and
  `kong_ai_llm_cost_total`, labels ai_provider, ai_model, cache_status, vector_db,
  embeddings_provider, embeddings_model, workspace.

Requests over the hour, for $ per request: LiteLLM's `litellm_proxy_total_requests_metric_total`
(labels end_user, hashed_api_key, api_key_alias, requested_model, team, team_alias, user,
status_code): nlp 2,000 for gpt-4o with status 200 and 50 refused with 429, search 400 for
claude-sonnet-4-20250514; the OpenTelemetry histograms' `_count` (one observation per
request and token type): Envoy gpt-4o-mini 1,000, agentgateway gpt-4o 500; Kong
`kong_ai_llm_requests_total` 250.

Prices: genai-prices 0.2.3 (pinned in requirements.lock), per 1M tokens:
gpt-4o input 2.50, cached input 1.25, output 10; claude-sonnet-4 (claude-sonnet-4-0) input 3,
output 15; gpt-4o-mini input 0.15, cached input 0.075, output 0.60; gpt-3.5-turbo input 0.50,
output 1.50. GPU: research/train-0 holds 8 GPUs of a p5.48xlarge (55.04 $/h) for the hour.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import pytest

from costgov.cli import main

from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 3) * 3600
S = END - 3600

_LITELLM_KEY = {"end_user": "None", "hashed_api_key": "88dc28d0f030c55ed4ab77ed8faf0981",
                "api_key_alias": "None", "team": "3a4f9c", "user": "default_user_id",
                "user_email": "None", "model_id": "a1b2c3"}  # fmt: skip
_ENVOY = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai",
          "otel_scope_name": "envoyproxy/ai-gateway", "otel_scope_schema_url": "",
          "otel_scope_version": ""}  # fmt: skip
_KONG = {"ai_provider": "openai", "ai_model": "gpt-3.5-turbo", "cache_status": "",
         "vector_db": "", "embeddings_provider": "", "embeddings_model": "",
         "workspace": "default"}  # fmt: skip
_AGW = {"gen_ai_operation_name": "chat", "gen_ai_system": "openai",
        "gen_ai_request_model": "gpt-4o", "gen_ai_response_model": "gpt-4o-2024-08-06",
        "bind": "3000", "gateway": "default/agentgateway", "listener": "http",
        "route": "default/openai", "route_rule": "unknown"}  # fmt: skip


def _counter(h: History, metric: str, labels: dict[str, str], before: float, grows: float) -> None:
    """`before` until the hour starts, then linearly up by `grows` over it, flat after."""
    for ts in range(S - 600, END + 601, 60):
        done = min(max(ts - S, 0), 3600) / 3600
        h.add(metric, labels, before + grows * done, ts)


def _litellm(h: History) -> None:
    for alias, model, grows in (
        ("nlp", "gpt-4o", (2_000_000, 500_000, 9.20)),
        ("search", "anthropic/claude-sonnet-4-20250514", (1_000_000, 200_000, 6.00)),
    ):
        common = {**_LITELLM_KEY, "team_alias": alias, "model": model}
        tokens = {**common, "requested_model": model.split("/")[-1]}
        _counter(h, "litellm_input_tokens_metric_total", tokens, 5_000, grows[0])
        _counter(h, "litellm_output_tokens_metric_total", tokens, 1_000, grows[1])
        spend = {**common, "client_ip": "10.0.3.7", "user_agent": "OpenAI/Python 1.54.0"}
        _counter(h, "litellm_spend_metric_total", spend, 100.0, grows[2])
    proxy = {k: _LITELLM_KEY[k] for k in ("end_user", "hashed_api_key", "api_key_alias", "team",
                                          "user")}  # fmt: skip
    for alias, model, status, grows in (("nlp", "gpt-4o", "200", 2000),
                                        ("nlp", "gpt-4o", "429", 50),
                                        ("search", "claude-sonnet-4-20250514", "200", 400)):  # fmt: skip
        labels = {**proxy, "team_alias": alias, "requested_model": model, "status_code": status}
        _counter(h, "litellm_proxy_total_requests_metric_total", labels, 7, grows)


def _envoy(h: History) -> None:
    model = {"gen_ai_original_model": "gpt-4o-mini", "gen_ai_request_model": "gpt-4o-mini",
             "gen_ai_response_model": "gpt-4o-mini-2024-07-18"}  # fmt: skip
    for kind, grows in (("input", 4_000_000), ("cached_input", 1_000_000),
                        ("cache_creation_input", 0), ("output", 1_000_000),
                        ("reasoning", 300_000)):  # fmt: skip
        labels = {**_ENVOY, **model, "gen_ai_token_type": kind}
        _counter(h, "gen_ai_client_token_usage_sum", labels, 50, grows)
        _counter(h, "gen_ai_client_token_usage_count", labels, 3, 1000)
    unknown = {**_ENVOY, "gen_ai_provider_name": "acme", "gen_ai_original_model": "acme-llm-70b",
               "gen_ai_request_model": "acme-llm-70b", "gen_ai_response_model": "acme-llm-70b",
               "gen_ai_token_type": "input"}  # fmt: skip
    _counter(h, "gen_ai_client_token_usage_sum", unknown, 0, 1_000)


def _kong_and_agentgateway(h: History) -> None:
    for kind, grows in (("prompt_tokens", 100_000), ("completion_tokens", 50_000),
                        ("total_tokens", 150_000)):  # fmt: skip
        _counter(h, "kong_ai_llm_tokens_total", {**_KONG, "token_type": kind}, 10, grows)
    _counter(h, "kong_ai_llm_cost_total", _KONG, 1.0, 0.125)
    _counter(h, "kong_ai_llm_requests_total", _KONG, 20, 250)
    for kind, grows in (("input", 1_000_000), ("input_cache_read", 200_000),
                        ("input_cache_write", 0), ("output", 100_000)):  # fmt: skip
        labels = {**_AGW, "gen_ai_token_type": kind}
        _counter(h, "agentgateway_gen_ai_client_token_usage_sum", labels, 0, grows)
        _counter(h, "agentgateway_gen_ai_client_token_usage_count", labels, 0, 500)


def _history() -> History:
    h = History()
    h.span("kube_node_labels",
           {"node": "n1", "label_node_kubernetes_io_instance_type": "p5.48xlarge"}, 1, S, END + 1)  # fmt: skip
    pod = {"namespace": "research", "pod": "train-0"}
    h.span("kube_pod_container_resource_requests",
           {**pod, "resource": "nvidia_com_gpu", "container": "c"}, 8, S, END + 1)  # fmt: skip
    h.span("kube_pod_info", {**pod, "node": "n1"}, 1, S, END + 1)
    h.span("kube_pod_status_phase", {**pod, "phase": "Running"}, 1, S, END + 1)
    _litellm(h)
    _envoy(h)
    _kong_and_agentgateway(h)
    return h


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


def _report(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    end = datetime.fromtimestamp(END, UTC).isoformat()
    code = main(["report", "--prometheus-url", url, "--end", end, "--window", "1h", *args])
    out, err = capsys.readouterr()
    return code, out, err


# By hand, per line:
# LiteLLM nlp gpt-4o: gateway $9.20; list 2M x 2.50 + 0.5M x 10 = 5.00 + 5.00 = $10.00
# LiteLLM search claude-sonnet-4: gateway $6.00; list 1M x 3 + 0.2M x 15 = 3.00 + 3.00 = $6.00
# Envoy gpt-4o-mini (no team): 3M x 0.15 + 1M cached x 0.075 + 1M x 0.60 = 0.45 + 0.075 +
#   0.60 = $1.125 (reasoning is part of output: not added)
# Kong default gpt-3.5-turbo: gateway $0.125; list 0.1M x 0.50 + 0.05M x 1.50 = $0.125
# agentgateway default/agentgateway gpt-4o: 0.8M x 2.50 + 0.2M cached x 1.25 + 0.1M x 10
#   = 2.00 + 0.25 + 1.00 = $3.25
# Envoy acme-llm-70b: in no price list, no gateway dollars: unpriced
# API: 9.20 + 6.00 + 1.125 + 0.125 + 3.25 = $19.70; GPU 8 GPU-h x 55.04 / 8 = $55.04


def test_report_shows_gpu_and_api_spend_apart(
    prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _report(capsys, prometheus_url, "-o", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert (doc["gpuTotal"], doc["apiTotal"], doc["total"]) == ("55.04", "19.70", "74.74")
    api = {(a["gateway"], a["model"]): a for a in doc["api"]}
    nlp = api[("litellm", "gpt-4o")]
    assert (nlp["group"], nlp["cost"], nlp["gatewayCost"], nlp["listCost"]) == (
        "team:nlp", "9.20", "9.20", "10.00")  # fmt: skip
    assert nlp["inputTokens"] == "2000000" and nlp["outputTokens"] == "500000"
    # unit cost: 9.20 for 2.5M tokens = 9.20 / 2.5 = $3.68 per 1M
    assert nlp["usdPerMillionTokens"] == "3.6800"
    assert nlp["price"]["source"].startswith("genai-prices 0.2.3")
    claude = api[("litellm", "anthropic/claude-sonnet-4-20250514")]
    assert (claude["group"], claude["cost"], claude["listCost"]) == ("team:search", "6.00", "6.00")
    mini = api[("opentelemetry", "gpt-4o-mini")]
    assert (mini["group"], mini["cost"], mini["gatewayCost"]) == ("(no team)", "1.13", "")
    assert mini["cachedInputTokens"] == "1000000" and mini["outputTokens"] == "1000000"
    kong = api[("kong", "gpt-3.5-turbo")]
    assert (kong["group"], kong["cost"], kong["listCost"]) == ("team:default", "0.13", "0.13")
    agw = api[("agentgateway", "gpt-4o")]
    assert (agw["group"], agw["cost"], agw["provider"]) == (
        "team:default/agentgateway",
        "3.25",
        "openai",
    )
    acme = api[("opentelemetry", "acme-llm-70b")]
    assert acme["cost"] == "unpriced" and acme["price"] is None
    assert doc["totalCaveat"] == "1 hosted-API line unpriced, not included"
    assert any("acme-llm-70b" in note and "models:" in note for note in doc["unpriced"])


def test_dollars_per_request_by_line_and_by_team(
    prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _report(capsys, prometheus_url, "-o", "json")
    assert code == 0
    doc = json.loads(out)
    api = {(a["gateway"], a["model"]): a for a in doc["api"]}
    # nlp gpt-4o: $9.20 for 2,000 requests (the 50 refused with 429 are not counted):
    # 9.20 x 1000 / 2000 = $4.60 per 1k
    nlp = api[("litellm", "gpt-4o")]
    assert (nlp["requests"], nlp["usdPerThousandRequests"]) == ("2000", "4.6000")
    # LiteLLM counts requests by the model asked for (claude-sonnet-4-20250514), its tokens
    # by the model that served (anthropic/claude-...): no per-line figure, a per-team one
    claude = api[("litellm", "anthropic/claude-sonnet-4-20250514")]
    assert (claude["requests"], claude["usdPerThousandRequests"]) == ("", "")
    # Envoy gpt-4o-mini 1.125 / 1,000 = 1.125; agentgateway 3.25 / 500; Kong 0.125 / 250
    assert api[("opentelemetry", "gpt-4o-mini")]["usdPerThousandRequests"] == "1.1250"
    assert api[("agentgateway", "gpt-4o")]["usdPerThousandRequests"] == "6.5000"
    assert api[("kong", "gpt-3.5-turbo")]["usdPerThousandRequests"] == "0.5000"
    units = {(u["group"], u["gateway"]): u for u in doc["apiUnitCosts"]}
    search = units[("team:search", "litellm")]
    # search: $6.00 for 400 requests = $15.00 per 1k; 1.2M tokens: 6.00 / 1.2 = $5.00 per 1M
    assert (search["requests"], search["usdPerThousandRequests"]) == ("400", "15.0000")
    assert (search["tokens"], search["usdPerMillionTokens"]) == ("1200000", "5.0000")
    # no team on Envoy: gpt-4o-mini and the unpriced acme-llm-70b: no unit figure
    none = units[("(no team)", "opentelemetry")]
    assert none["unpricedLines"] == 1 and none["usdPerThousandRequests"] == ""
    assert units[("team:default", "kong")]["usdPerThousandRequests"] == "0.5000"


def test_teams_mapped_to_namespaces_join_their_groups(
    prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _report(capsys, prometheus_url, "-o", "csv", "--api-namespace", "nlp=research")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["NAMESPACE", "COST_USD", "GPU_HOURS", "IDLE_GPU_USD", "UNPRICED_PODS",
                       "GPU_USD", "API_USD"]  # fmt: skip
    # research: GPU 55.04 + nlp's LiteLLM 9.20 = 64.24; teams it does not map keep their
    # own lines: search 6.00, agentgateway's 3.25, Kong's default 0.125, no team 1.125
    assert rows[1] == ["research", "64.24", "8.00", "0.00", "0", "55.04", "9.20"]
    by_group = {r[0]: r[1] for r in rows[1:]}
    assert by_group == {"research": "64.24", "team:search": "6.00", "(no team)": "1.13",
                        "team:default/agentgateway": "3.25", "team:default": "0.13"}  # fmt: skip


def test_table_splits_the_total(prometheus_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _report(capsys, prometheus_url)
    assert code == 0
    assert (
        "TOTAL $74.74: GPU $55.04 + API $19.70 (1 hosted-API line unpriced, not included)"
        in out.splitlines()
    )
    assert "Hosted API spend (LLM gateways)" in out


def test_focus_export_carries_the_report_totals(
    prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _report(capsys, prometheus_url, "-o", "focus")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    billed = sum(Decimal(r["BilledCost"]) for r in rows)
    assert billed.quantize(Decimal("0.01")) == Decimal("74.74")
    by_source = {s: sum(Decimal(r["BilledCost"]) for r in rows if r["x_CostgovSource"] == s)
                 for s in ("gpu", "api")}  # fmt: skip
    assert by_source == {"gpu": Decimal("55.04"), "api": Decimal("19.70")}
    job = next(r for r in rows if r["x_CostgovSource"] == "gpu")
    assert (job["ResourceId"], job["PricingUnit"], job["PricingQuantity"]) == (
        "k8s://research/pod/train-0", "GPU-Hours", "8.0")  # fmt: skip
    nlp = next(r for r in rows if r["x_Gateway"] == "litellm" and r["x_Model"] == "gpt-4o")
    assert (nlp["BilledCost"], nlp["ListCost"], nlp["ProviderName"]) == ("9.2", "10.0", "openai")
    assert nlp["ChargePeriodStart"] == datetime.fromtimestamp(S, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "acme-llm-70b" in err and not any(r["x_Model"] == "acme-llm-70b" for r in rows)
    # a gateway team no --api-namespace maps is not a namespace: it is named as a team
    assert (nlp["SubAccountId"], json.loads(nlp["Tags"])) == (
        "team:nlp",
        {"costgov.io/team": "nlp"},
    )
    assert (nlp["ConsumedQuantity"], nlp["PricingQuantity"]) == ("2500000", "2.5")


def test_focus_rows_per_day_keep_the_totals(
    prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # the hour S..END, cut at midnight when it spans one (END = 00:00 on some runs)
    code, out, _ = _report(capsys, prometheus_url, "-o", "focus", "--focus-period", "day")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    total = sum(Decimal(r["BilledCost"]) for r in rows)
    assert total.quantize(Decimal("0.01")) == Decimal("74.74")
    for r in rows:
        start, end = r["ChargePeriodStart"], r["ChargePeriodEnd"]
        assert start[:10] == end[:10] or end.endswith("T00:00:00Z")
        assert r["BillingPeriodStart"] <= start < end <= r["BillingPeriodEnd"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--api-team-label", "x) or vector(1"], "not a Prometheus label name"),
        (["--api-namespace", "nlp=research", "--api-namespace", "nlp=serving"], "both"),
        (["--api-namespace", "nlp=Bad Namespace!"], "not a namespace name"),
        (["--api-namespace", "nlp"], "expected TEAM=NAMESPACE"),
    ],
)
def test_bad_gateway_options_are_refused_by_name(
    prometheus_url: str, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    code, out, err = _report(capsys, prometheus_url, *args)
    assert code == 2 and out == "" and says in err


# focus-validator 1.0.0 checks its "1.0" rules, written before FOCUS 1.0 was released: four
# columns under the names they had then (renamed in 1.0 GA: ProviderName, PublisherName,
# InvoiceIssuerName, ResourceId; 1.2 keeps the new names), and one rule that reads ChargeType
# (removed in 1.0 GA for ChargeCategory). Those five fail on any FOCUS 1.2 file; every other
# rule of the 133 must pass. FOCUS 1.1 and 1.2 rules (BillingAccountType, InvoiceId,
# PricingCurrency*, SubAccountType, ServiceSubcategory values, Tags' format...) are not
# checked by it: test_focus_rows_meet_focus_1_2 checks what it leaves.
_PRE_GA = {"InvoiceIssuer_Required", "Provider_Required", "Publisher_Required",
           "ResourceID_Required", "SkuPriceId_Nullable"}  # fmt: skip


def _validator() -> Path:
    path = Path(os.environ.get("COSTGOV_CACHE", Path.home() / ".cache/costgov"))
    binary = path / "focus-validator-1.0.0" / "bin" / "focus-validator"
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: hack/install-focus-validator.sh installs it")
    return binary


def test_the_finops_foundation_validator_passes_the_export(
    prometheus_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = _report(capsys, prometheus_url, "-o", "focus")
    assert code == 0
    data, junit = tmp_path / "focus.csv", tmp_path / "junit.xml"
    data.write_text(out)
    binary = _validator()
    site = subprocess.run(
        [str(binary.parent / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # it reads its currency list relative to the working directory: run it from its package
    subprocess.run(
        [str(binary), "--data-file", str(data), "--validate-version", "1.0",
         "--output-type", "unittest", "--output-destination", str(junit)],
        check=True, cwd=site, capture_output=True, timeout=300,
    )  # fmt: skip
    suite = ElementTree.parse(junit).getroot()
    failed = {c.get("name", "").split(" :: ")[0] for c in suite.iter("testcase")
              if c.find("failure") is not None or c.find("error") is not None}  # fmt: skip
    assert int(suite.get("tests", "0")) > 100
    assert failed == _PRE_GA, failed - _PRE_GA


_ALLOWED_NULL = {"BillingAccountName", "ChargeClass", "ChargeDescription", "PricingQuantity",
                 "PricingUnit"}  # fmt: skip
_MANDATORY_1_2 = {"BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd",
                  "BillingPeriodStart", "ChargeCategory", "ChargePeriodEnd",
                  "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName",
                  "ListCost", "ProviderName", "PublisherName", "ServiceCategory",
                  "ServiceName"} | _ALLOWED_NULL  # fmt: skip
# From the FOCUS 1.2 specification (FOCUS_Spec tag v1.2, specification/columns/*.md).


def test_focus_rows_meet_focus_1_2(prometheus_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _report(capsys, prometheus_url, "-o", "focus")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and rows
    assert set(rows[0]) >= _MANDATORY_1_2
    custom = [c for c in rows[0] if c not in _MANDATORY_1_2]
    assert all(c.startswith("x_") or c[0].isupper() for c in custom)
    for row in rows:
        assert all(row[c] for c in _MANDATORY_1_2 - _ALLOWED_NULL), row
        assert row["ChargeCategory"] == "Usage" and row["BillingCurrency"] == "USD"
        assert row["ServiceCategory"] == "AI and Machine Learning"
        assert row["ChargePeriodStart"] < row["ChargePeriodEnd"]
        assert row["BillingPeriodStart"] <= row["ChargePeriodStart"]
        assert row["ChargePeriodEnd"] <= row["BillingPeriodEnd"]
        assert isinstance(json.loads(row["Tags"]), dict)
        assert Decimal(row["BilledCost"]) == Decimal(row["EffectiveCost"]) >= 0


def test_a_pricing_file_prices_a_private_model_and_a_contract_rate(
    prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pricing = Path(__file__).resolve().parents[2] / "examples/pricing/hosted-models.yaml"
    code, out, _ = _report(capsys, prometheus_url, "-o", "json", "--pricing", str(pricing))
    assert code == 0
    doc = json.loads(out)
    api = {(a["gateway"], a["model"]): a for a in doc["api"]}
    # acme-llm-70b at the file's 0.60 per 1M: 1,000 x 0.60 / 1M = $0.0006 -> 0.00
    acme = api[("opentelemetry", "acme-llm-70b")]
    assert acme["cost"] == "0.00" and acme["price"]["inputPerMTokens"] == "0.60"
    # agentgateway's gpt-4o at the contract: 0.8M x 2.00 + 0.2M x 1.00 + 0.1M x 8.00 = $2.60
    assert api[("agentgateway", "gpt-4o")]["cost"] == "2.60"
    # LiteLLM reports its own $9.20; the list figure beside it is the contract's:
    # 2M x 2.00 + 0.5M x 8.00 = $8.00
    nlp = api[("litellm", "gpt-4o")]
    assert (nlp["cost"], nlp["listCost"]) == ("9.20", "8.00")
    # 9.20 + 6.00 + 1.125 + 0.125 + 2.60 + 0.0006 = 19.0506
    assert doc["apiTotal"] == "19.05" and doc["totalCaveat"] is None
