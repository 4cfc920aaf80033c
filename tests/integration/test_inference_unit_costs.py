"""$ per 1M tokens and per 1k requests when Prometheus' history ends before the query time
(ingestion lag, a server that stopped): cost and counts must cover the same span.

History (one sample a minute; S = END - 60 min), written as the exporters write it:
- kube-state-metrics v2.20.0 (exporters.py): node-c a g6.xlarge on EKS spot,
  kube_node_labels{label_eks_amazonaws_com_capacity_type="SPOT"}; ml-serving/llama-0 holds
  its 1 GPU, Running S .. END.
- the same for ml-train/train-0, 8 GPUs of node-d (p4d.24xlarge), serving no model; its
  vllm:prompt_tokens_total stays 0 (as the simulated cluster's kwok writes it for every pod).
- vLLM (docs/source/design/v1/metrics.md, "Metrics Publishing - Prometheus"):
  vllm:prompt_tokens_total and vllm:generation_tokens_total{model_name}, and
  vllm:request_success_total{finished_reason, model_name}, one series per reason; namespace
  and pod added by Prometheus' Kubernetes service discovery. 1,000 prompt + 500 generated
  tokens a minute; 8 requests end "stop" and 2 "length" a minute.
Price (operator/costgov/catalog/data/prices.yaml): g6.xlarge spot $0.40/h, 1 GPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from costgov.adapters.prometheus import PrometheusSource
from costgov.api import InferenceDeployment
from costgov.api.inferencedeployment import InferenceDeploymentStatus
from costgov.catalog import load_catalog
from costgov.services.accounting import Snapshot, collect
from costgov.services.deployments import INFERENCE_LABEL
from costgov.services.inference_reconciling import reconcile_inference
from costgov.services.inventory import Inventory, PodRecord
from costgov.services.situations import situation_from
from costgov.settings import Settings

from .exporters import gpu_pod
from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
MIN = 60
S = END - 60 * MIN
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def _history() -> History:
    h = History()
    node = {
        "node": "node-c",
        "label_node_kubernetes_io_instance_type": "g6.xlarge",
        "label_eks_amazonaws_com_capacity_type": "SPOT",
    }
    h.span("kube_node_labels", node, 1, S - 600, END + 1)
    gpu_pod(h, namespace="ml-serving", pod="llama-0", node="node-c", gpus=1,
            running=(S, END + 1), until=END + 1, created_by=("ReplicaSet", "llama-7c9d"))  # fmt: skip
    # a training pod on another node: a GPU pod that counts no tokens has no unit cost
    h.span("kube_node_labels", {"node": "node-d",
           "label_node_kubernetes_io_instance_type": "p4d.24xlarge"}, 1, S - 600, END + 1)  # fmt: skip
    gpu_pod(h, namespace="ml-train", pod="train-0", node="node-d", gpus=8,
            running=(S, END + 1), until=END + 1, created_by=("Job", "train"))  # fmt: skip
    for ts in range(S, END + 1, MIN):  # zero counters, as the sim's kwok writes for every pod
        h.add("vllm:prompt_tokens_total", {"namespace": "ml-train", "pod": "train-0"}, 0, ts)
    scraped = {"namespace": "ml-serving", "pod": "llama-0", "model_name": MODEL}
    for i, ts in enumerate(range(S, END + 1, MIN)):
        h.add("vllm:prompt_tokens_total", scraped, 1000 * i, ts)
        h.add("vllm:generation_tokens_total", scraped, 500 * i, ts)
        h.add("vllm:request_success_total", {**scraped, "finished_reason": "stop"}, 8 * i, ts)
        h.add("vllm:request_success_total", {**scraped, "finished_reason": "length"}, 2 * i, ts)
        h.add("vllm:request_success_total", {**scraped, "finished_reason": "abort"}, 0, ts)
    return h


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


def _snapshot(
    url: str, at: int, interval: int, serving: frozenset[tuple[str, str]] | None = None
) -> Snapshot:
    return asyncio.run(
        collect(
            PrometheusSource(Settings(prometheus_url=url)),
            load_catalog(),
            at=datetime.fromtimestamp(at, UTC),
            windows={},
            interval_seconds=interval,
            step_seconds=60,
            live_node_labels={},
            serving=serving,
        )
    )


def _status(snapshot: Snapshot) -> InferenceDeploymentStatus:
    idep = InferenceDeployment.model_validate(
        {
            "apiVersion": "costgov.io/v1alpha1",
            "kind": "InferenceDeployment",
            "metadata": {"name": "llama", "namespace": "ml-serving", "generation": 1},
            "spec": {
                "image": "vllm/vllm-openai:v0.6.3",
                "gpu": {"model": "L4", "count": 1},
                "replicas": {"min": 1, "max": 1},
            },
        }
    )
    pod = PodRecord(
        "ml-serving", "llama-0", "node-c", Decimal(1), {INFERENCE_LABEL: "llama"}, None, "Running"
    )
    inv = Inventory(pods=(pod,), inference=(idep,))
    situation = situation_from(inv, catalog=load_catalog(), now=snapshot.at, excluded=frozenset())
    outcome = reconcile_inference(
        idep, inv, snapshot, situation=situation, old=InferenceDeploymentStatus(), ready_replicas=1
    )
    return outcome.status


def test_history_ending_ten_minutes_before_the_query(prometheus_url: str) -> None:
    # queried at END + 10 min: unit costs look at the trailing hour (END - 50 min ..
    # END + 10 min), of which the 50 minutes up to END have history
    snapshot = _snapshot(prometheus_url, END + 600, 1800)
    assert snapshot.error is None
    status = _status(snapshot)
    # cost: 50 one-minute samples x 1 GPU = 5/6 GPU-h x g6.xlarge spot $0.40/h = $0.3333
    # tokens: 50 minutes x (1,000 + 500) = 75,000; requests: 50 x (8 + 2) = 500
    # $0.3333 / 75,000 x 1,000,000 = $4.44 per 1M tokens (= $0.40/h / 90,000 tokens/h)
    # $0.3333 / 500 x 1,000 = $0.67 per 1k requests
    assert snapshot.tokens[("ml-serving", "llama-0")] == 75000
    assert snapshot.requests[("ml-serving", "llama-0")] == 500
    assert status.cost_per_million_tokens == Decimal("4.44")
    assert status.cost_per_thousand_requests == Decimal("0.67")


def test_history_lagging_three_minutes(prometheus_url: str) -> None:
    # queried 3 minutes after the newest sample: the trailing hour holds 57 minutes of data
    status = _status(_snapshot(prometheus_url, END + 180, 300))
    # cost: 57 samples x 1 GPU = 0.95 GPU-h x $0.40 = $0.38; 85,500 tokens, 570 requests
    # $0.38 / 85,500 x 1,000,000 = $4.44; $0.38 / 570 x 1,000 = $0.67 (the whole hour's
    # cost over 57 minutes' tokens would be 60/57 times that)
    assert status.cost_per_million_tokens == Decimal("4.44")
    assert status.cost_per_thousand_requests == Decimal("0.67")
    assert status.hourly_cost == Decimal("0.40")  # the pod is still seen (5-minute lookback)


def test_no_figure_when_the_interval_holds_no_history(prometheus_url: str) -> None:
    # a 5-minute interval 10 minutes after the newest sample: nothing measured, no figure
    status = _status(_snapshot(prometheus_url, END + 600, 300))
    assert status.cost_per_million_tokens is None
    assert status.cost_per_thousand_requests is None


def test_only_pods_counting_tokens_are_asked_for_their_gpu_time(prometheus_url: str) -> None:
    snapshot = _snapshot(prometheus_url, END + 600, 1800)
    # train-0's counters stayed at zero: it counts (an idle replica of a model server
    # would cost without serving); the pods without counters are never asked for
    assert {c.usage.key for c in snapshot.unit_costs} == {
        ("ml-serving", "llama-0"),
        ("ml-train", "train-0"),
    }
    # the cycle's six (nodes, owners, util, GPUs now, tokens, requests), then the GPU time
    # of the pods that count tokens, asked for by name
    assert snapshot.queries == 7


def test_the_model_servers_the_api_shows_are_the_only_ones_asked_for(
    prometheus_url: str,
) -> None:
    snapshot = _snapshot(prometheus_url, END + 600, 1800, frozenset({("ml-serving", "llama-0")}))
    assert [c.usage.key for c in snapshot.unit_costs] == [("ml-serving", "llama-0")]
    assert snapshot.queries == 7
    assert _status(snapshot).cost_per_million_tokens == Decimal("4.44")  # as above


def test_no_model_server_no_unit_cost_asked_for(prometheus_url: str) -> None:
    snapshot = _snapshot(prometheus_url, END + 600, 1800, frozenset())
    assert snapshot.unit_costs == () and snapshot.tokens == {} and snapshot.requests == {}
    assert snapshot.queries == 4  # nodes, owners, util, GPUs now: no tokens, requests, GPU time


def test_the_token_queries_name_the_model_servers(prometheus_url: str) -> None:
    # train-0's zero counters are not even read when the API says llama-0 alone serves
    snapshot = _snapshot(prometheus_url, END + 600, 1800, frozenset({("ml-serving", "llama-0")}))
    assert set(snapshot.tokens) == {("ml-serving", "llama-0")}
