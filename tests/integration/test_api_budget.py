"""CostPolicy budgets over GPU time and hosted-API spend, by the operator on kmock and a real
Prometheus: both shown apart in status, counted as the budget's `sources` say.

The operator's clock is pinned to NOW (noon on the 14th, in the past): each policy catches
up on its month to date a chunk at a time, then stays current. History (one sample a
minute; S = NOW - 2 h):
- ml-research/train-0 holds 8 GPUs of node-a, a p5.48xlarge on demand (55.04 $/h), from S
  on: 2 h x 55.04 = $110.08 by NOW, 55.04 $/h now.
- LiteLLM (label sets of litellm/types/integrations/prometheus.py; team_alias named like
  the namespace, so no team map is needed): team ml-research, gpt-4o, 2M input and 0.5M
  output tokens and $9.20 of LiteLLM's own spend, evenly over S..NOW; team ml-serving,
  claude-sonnet-4, $6.00; ml-research's client requests
  (litellm_proxy_total_requests_metric_total, status_code 200) 4,000 over S..NOW.
- Envoy AI Gateway (internal/metrics/genai.go labels; no team label): gpt-4o-mini, 4M input
  and 1M output tokens over S..NOW; acme-llm-70b (in no price list), 1,000 input tokens.
Prices: genai-prices 0.2.3: gpt-4o-mini 0.15 input, 0.60 output per 1M tokens, so Envoy's
line is 4 x 0.15 + 1 x 0.60 = $1.20.
Counters appear at S - 10 min at 0 and stay there until S (a series born inside a window
counts from zero; one present at its start counts from its value there).
The pod is Running from S + 1 min: 120 one-minute samples, 2 h.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

from .harness import Cluster, caught_up, running_operator
from .prom import History, running_prometheus

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _noon_on_the_14th() -> int:
    now = datetime.now(UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if now.day < 15:
        month = (month - timedelta(days=1)).replace(day=1)
    return int((month + timedelta(days=13, hours=12)).timestamp())


END = _noon_on_the_14th()
S = END - 2 * 3600
NOW = datetime.fromtimestamp(END, UTC)
CP = "costgov.io/v1alpha1/costpolicies"
_LITELLM = {"end_user": "None", "hashed_api_key": "88dc28d0f030c55e", "api_key_alias": "None",
            "team": "3a4f9c", "user": "default_user_id", "user_email": "None",
            "model_id": "a1b2c3"}  # fmt: skip
_ENVOY = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai",
          "otel_scope_name": "envoyproxy/ai-gateway", "otel_scope_schema_url": "",
          "otel_scope_version": ""}  # fmt: skip


def _counter(h: History, metric: str, labels: dict[str, str], grows: float) -> None:
    for ts in range(S - 600, END + 61, 60):
        h.add(metric, labels, grows * min(max(ts - S, 0), END - S) / (END - S), ts)


def _history() -> History:
    h = History()
    h.span("kube_node_labels", {"node": "node-a",
           "label_node_kubernetes_io_instance_type": "p5.48xlarge"}, 1, S - 600, END + 61)  # fmt: skip
    pod = {"namespace": "ml-research", "pod": "train-0"}
    h.span("kube_pod_container_resource_requests",
           {**pod, "container": "main", "resource": "nvidia_com_gpu", "unit": "integer"},
           8, S, END + 61)  # fmt: skip
    h.span("kube_pod_info", {**pod, "node": "node-a"}, 1, S, END + 61)
    h.span("kube_pod_status_phase", {**pod, "phase": "Running"}, 1, S + 60, END + 61)
    for team, model, tokens, usd in (
        ("ml-research", "gpt-4o", (2_000_000, 500_000), 9.20),
        ("ml-serving", "anthropic/claude-sonnet-4-20250514", (1_000_000, 200_000), 6.00),
    ):
        common = {**_LITELLM, "team_alias": team, "model": model}
        _counter(
            h, "litellm_input_tokens_metric_total", {**common, "requested_model": model}, tokens[0]
        )
        _counter(
            h, "litellm_output_tokens_metric_total", {**common, "requested_model": model}, tokens[1]
        )
        _counter(h, "litellm_spend_metric_total", {**common, "client_ip": "10.0.3.7",
                 "user_agent": "OpenAI/Python 1.54.0"}, usd)  # fmt: skip
    proxy = {k: _LITELLM[k] for k in ("end_user", "hashed_api_key", "api_key_alias", "team",
                                      "user")}  # fmt: skip
    _counter(h, "litellm_proxy_total_requests_metric_total",
             {**proxy, "team_alias": "ml-research", "requested_model": "gpt-4o",
              "status_code": "200"}, 4000)  # fmt: skip
    for model, kind, grows in (("gpt-4o-mini", "input", 4_000_000),
                               ("gpt-4o-mini", "output", 1_000_000),
                               ("acme-llm-70b", "input", 1_000)):  # fmt: skip
        labels = {**_ENVOY, "gen_ai_original_model": model, "gen_ai_request_model": model,
                  "gen_ai_response_model": model, "gen_ai_token_type": kind}  # fmt: skip
        _counter(h, "gen_ai_client_token_usage_sum", labels, grows)
    return h


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


def _policy(name: str, scope: dict[str, Any], sources: list[str] | None) -> dict[str, Any]:
    budget: dict[str, Any] = {"amount": 1000, "period": "monthly"}
    if sources is not None:
        budget["sources"] = sources
    return {"apiVersion": "costgov.io/v1alpha1", "kind": "CostPolicy",
            "metadata": {"name": name, "generation": 1},
            "spec": {"mode": "audit", "scope": scope, "budget": budget}}  # fmt: skip


RESEARCH = {"namespaceSelector": {"matchLabels": {"team": "research"}}}
POLICIES = (
    _policy("research", RESEARCH, ["gpu", "api"]),
    _policy("research-api", RESEARCH, ["api"]),
    _policy("cluster", {}, ["gpu", "api"]),
    _policy("cluster-gpu", {}, None),
    _policy("research-jobs", {**RESEARCH, "workloadSelector": {"matchLabels": {"app": "x"}}},
            ["gpu", "api"]),
)  # fmt: skip


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(prometheus_url: str) -> AsyncIterator[Cluster]:
    async with running_operator(prometheus_url, clock=lambda: NOW) as c:
        for ns, team in (("ml-research", "research"), ("ml-serving", "serving")):
            await c.create("v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": ns, "labels": {"team": team}}})  # fmt: skip
        await c.create("v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": "node-a", "labels": {"node.kubernetes.io/instance-type": "p5.48xlarge"}}})  # fmt: skip
        for policy in POLICIES:
            await c.create(CP, json.loads(json.dumps(policy)))
        yield c


def _status(c: Cluster, name: str) -> dict[str, Any]:
    return dict(c.get(CP, None, name).get("status") or {})


async def _current(c: Cluster, name: str) -> dict[str, Any]:
    await c.wait_for(lambda: caught_up(_status(c, name)), timeout=60)
    return _status(c, name)


async def test_gpu_and_api_spend_apart_and_summed_as_the_sources_say(cluster: Cluster) -> None:
    research = await _current(cluster, "research")
    # GPU: 2 h x 55.04 = 110.08; API: ml-research's LiteLLM line, its own $9.20
    assert (research["gpuSpent"], research["apiSpent"], research["spent"]) == (
        "110.08", "9.20", "119.28")  # fmt: skip
    # now: 55.04 $/h of GPU + the last hour of API spend (half of 9.20 = 4.60 $/h)
    # the month ends at the first instant of the next month, UTC (by hand, not the code's)
    month_end = datetime(NOW.year + NOW.month // 12, NOW.month % 12 + 1, 1, tzinfo=UTC)
    hours_left = Decimal((month_end - NOW).total_seconds()) / 3600
    expected = Decimal("119.28") + (Decimal("55.04") + Decimal("4.60")) * hours_left
    assert research["forecast"] == str(expected.quantize(Decimal("0.01")))
    assert research["accounting"]["apiSpent"].startswith("9.2")
    only_api = await _current(cluster, "research-api")
    assert (only_api["gpuSpent"], only_api["apiSpent"], only_api["spent"]) == (
        "110.08", "9.20", "9.20")  # fmt: skip


async def test_spend_no_namespace_claims_belongs_to_the_whole_cluster(cluster: Cluster) -> None:
    everything = await _current(cluster, "cluster")
    # API: 9.20 (ml-research) + 6.00 (ml-serving) + 1.20 (Envoy, no team): 16.40;
    # acme-llm-70b is unpriced, so the figure is a lower bound and Priced says why
    assert (everything["gpuSpent"], everything["apiSpent"], everything["spent"]) == (
        "110.08", "16.40", "126.48")  # fmt: skip
    priced = next(c for c in everything["conditions"] if c["type"] == "Priced")
    assert priced["status"] == "False" and "acme-llm-70b" in json.dumps(everything)
    gpu_only = await _current(cluster, "cluster-gpu")
    assert (gpu_only["gpuSpent"], gpu_only["apiSpent"], gpu_only["spent"]) == (
        "110.08", "16.40", "110.08")  # fmt: skip
    assert next(c for c in gpu_only["conditions"] if c["type"] == "Priced")["status"] == "True"


async def test_a_policy_over_some_workloads_counts_no_gateway_spend(cluster: Cluster) -> None:
    jobs = await _current(cluster, "research-jobs")
    # gateway series carry no workload labels: none of them is this policy's
    assert jobs["apiSpent"] == "0.00"


async def test_the_unpriced_gateway_line_stays_noted_cycle_after_cycle(cluster: Cluster) -> None:
    await _current(cluster, "cluster")
    first = _status(cluster, "cluster")["accounting"]["cursor"]
    # the clock is pinned: later cycles count empty windows and must keep the note
    await cluster.wait_for(
        lambda: (
            _status(cluster, "cluster").get("figuresAsOf") is not None
            and _status(cluster, "cluster")["accounting"]["cursor"] == first
        )
    )
    notes = _status(cluster, "cluster")["accounting"]["unpriced"]
    assert any(n.startswith("API opentelemetry/acme-llm-70b/") for n in notes)


async def test_the_last_hour_of_api_spend_and_its_unit_cost_on_metrics(cluster: Cluster) -> None:
    await _current(cluster, "research")
    registry = cluster.runtime.metrics.registry
    labels = {"gateway": "litellm", "provider": "openai", "model": "gpt-4o",
              "team": "ml-research", "namespace": "ml-research"}  # fmt: skip
    # the last hour is half of the two: $4.60 for 1M input + 0.25M output tokens
    assert registry.get_sample_value("costgov_api_hourly_cost_dollars", labels) == pytest.approx(
        4.6
    )
    per_million = registry.get_sample_value("costgov_api_cost_per_million_tokens_dollars", labels)
    assert per_million == pytest.approx(4.6 / 1.25)  # $3.68 per 1M tokens
    # 2,000 requests in the last hour: 4.60 x 1000 / 2000 = $2.30 per 1k
    per_k = registry.get_sample_value("costgov_api_cost_per_thousand_requests_dollars", labels)
    assert per_k == pytest.approx(2.3)


async def test_a_policy_shows_its_teams_unit_costs(cluster: Cluster) -> None:
    research = await _current(cluster, "research")
    # the last hour in scope: team ml-research on LiteLLM, $4.60 for 1.25M tokens and 2,000
    # requests: 4.60 / 1.25 = $3.68 per 1M tokens, 4.60 x 1000 / 2000 = $2.30 per 1k
    assert research["apiUnitCosts"] == [{
        "team": "ml-research", "gateway": "litellm", "hourlyCost": "4.60", "tokens": 1250000,
        "requests": 2000, "costPerMillionTokens": "3.6800", "costPerThousandRequests": "2.3000",
    }]  # fmt: skip
    # the whole cluster also sees ml-serving's LiteLLM line (no request counter: none
    # counted) and Envoy's, whose unpriced acme line leaves the team without unit costs
    everything = {
        (u["team"], u["gateway"]): u for u in (await _current(cluster, "cluster"))["apiUnitCosts"]
    }
    serving = everything[("ml-serving", "litellm")]
    assert serving["hourlyCost"] == "3.00"
    assert "requests" not in serving and "costPerThousandRequests" not in serving
    assert "costPerMillionTokens" not in everything[("", "opentelemetry")]
