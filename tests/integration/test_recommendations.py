"""Advice with dollars on a real Prometheus: `costgov report --recommendations` and an
InferenceDeployment's status.recommendations, from a day of exporter-shaped history.

History (one sample a minute, W = END - 24 h .. END), written as the exporters write it:
- kube-state-metrics v2.20.0 (exporters.py): nodes n-p5 (p5.48xlarge) and n-g6-0..3
  (g6.xlarge), us-east-1, karpenter.sh/capacity-type on-demand, as kube_node_labels
  (label_node_kubernetes_io_instance_type, label_topology_kubernetes_io_region,
  label_karpenter_sh_capacity_type); every pod requests 2 cores and 8 GiB
  (kube_pod_container_resource_requests{resource="cpu",unit="core"} and
  {resource="memory",unit="byte"}) and its GPUs.
- dcgm-exporter (exporters.py's labels): DCGM_FI_DEV_GPU_UTIL (percent) and
  DCGM_FI_DEV_FB_USED (MiB, "Framebuffer memory used" in its default counters file).
- vLLM v1 (docs/design/metrics.md): vllm:num_requests_running, vllm:num_requests_waiting,
  vllm:kv_cache_usage_perc (0-1) gauges and vllm:request_success_total{finished_reason},
  vllm:prompt_tokens_total, vllm:generation_tokens_total counters, labelled engine and
  model_name; namespace and pod from Prometheus' Kubernetes service discovery; no
  prefix-cache counters (caching off).

Workloads, and what they earn (prices: prices.yaml, on demand, us-east-1; a month = 730 h):
- research/train-0, Job train: 1 of n-p5's 8 H100s (55.04 / 8 = 6.88 $/h), 20 % busy (one
  NaN reading, left out),
  8,000 MiB used with a 12,000 MiB peak in one hour. Needs 12,000 x 1.048576 MB x 1.2 =
  15.10 GB and 20 % x 989 = 197.8 TFLOPS: an L4 (121) would be 163 % busy; an L40S (362)
  55 %: g6e.xlarge (4 vCPU, 32 GiB: fits 2 cores, 8 GiB) at 1.861:
  smaller-gpu, (6.88 - 1.861) x 730 = $3,663.87 a month.
- research/notebook-0, no owner: 1 H100 of n-p5, 0 % busy (idle in every sample, so no
  smaller GPU: nothing to keep): idle-gpu, 6.88 x 730 x 100 % = $5,022.40.
- research/eval-0, Job eval: like train-0 (1 H100, 20 % busy), but dcgm-exporter scraped
  without honor_labels (exported_namespace/exported_pod), its exporter pod replaced once with
  ten minutes of overlap (two series for one GPU), and one 60,000 MiB sample. Needs
  60,000 x 1.048576 MB x 1.2 = 75.50 GB: an L40S (48) no longer holds it; an A100-80GB
  (312 TFLOPS: 63 % busy) does, p4de.24xlarge at 27.45 / 8 = 3.43125:
  smaller-gpu, (6.88 - 3.43125) x 730 = $2,517.59.
- research/fresh-0, no owner: 1 H100 idle, started 15 minutes before END
  (kube_pod_start_time): too young for advice.
- serving/chat (Deployment chat through ReplicaSet chat-7f9c, kube_replicaset_owner; 4 pods,
  one g6.xlarge each: 4 x 0.8048 = 3.2192 $/h; vLLM 0.10 exports both KV-cache gauges):
  15 % busy, 20,000 MiB (vLLM preallocates its KV cache; no cheaper GPU than an L4, no MIG on
  an L4, two would not fit one): no right-sizing. 1.6 requests running per pod in the first
  12 hours, none after (mean 0.8 each, 3.2 in all), no queue, KV cache 10 %; 60 requests an
  hour each in the first 12 hours, none in the last 12; 900 prompt and 100 generated tokens
  a minute while busy.
  - batching: ceil(3.2 / 8) = 1 replica: 3.2192 x 730 x 3/4 = $1,762.51;
  - scale-to-zero: 12 of the 24 hourly points saw no request: 3.2192 x 730 x 12/24 = $1,175.01;
  - prefix-caching: prompts 90 % of the tokens, no lookups counted: no dollar figure.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from costgov.adapters.prometheus import PrometheusSource
from costgov.api import InferenceDeployment
from costgov.api.inferencedeployment import InferenceDeploymentStatus
from costgov.catalog import load_catalog
from costgov.cli import main
from costgov.services.accounting import collect
from costgov.services.evidence import collect_evidence
from costgov.services.inference_reconciling import reconcile_inference
from costgov.services.inventory import Inventory, PodRecord
from costgov.services.situations import situation_from
from costgov.settings import Settings

from .exporters import dcgm_utilization, gpu_pod
from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 3) * 3600
DAY = 24 * 3600
S = END - DAY
STOP = END + 61
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
_NODE = {"label_topology_kubernetes_io_region": "us-east-1",
         "label_karpenter_sh_capacity_type": "on-demand"}  # fmt: skip


def _pod(h: History, ns: str, pod: str, node: str, owner: tuple[str, str] | None) -> None:
    gpu_pod(h, namespace=ns, pod=pod, node=node, gpus=1, running=(S, STOP), until=STOP,
            created_by=owner, owner=owner)  # fmt: skip
    ids = {"namespace": ns, "pod": pod, "uid": f"uid-{ns}-{pod}", "container": "main",
           "node": node}  # fmt: skip
    requests = "kube_pod_container_resource_requests"
    h.span(requests, {**ids, "resource": "cpu", "unit": "core"}, 2, S, STOP)
    h.span(requests, {**ids, "resource": "memory", "unit": "byte"}, 8 * 2**30, S, STOP)


def _memory(h: History, ns: str, pod: str, node: str, mib: float, start: int, stop: int) -> None:
    labels = {"gpu": "0", "UUID": f"GPU-{node}-{pod}", "device": "nvidia0",
              "modelName": "NVIDIA H100 80GB HBM3", "Hostname": node, "namespace": ns,
              "pod": pod, "container": "main"}  # fmt: skip
    h.span("DCGM_FI_DEV_FB_USED", labels, mib, start, stop)


def _eval(h: History) -> None:
    """eval-0's GPU as dcgm-exporter shows it without honor_labels: the exporter pod's own
    namespace/pod, the workload's in exported_*; dcgm-a replaced by dcgm-b at S + 12 h with
    ten minutes of overlap."""
    _pod(h, "research", "eval-0", "n-p5", ("Job", "eval"))
    gpu = {"gpu": "0", "UUID": "GPU-n-p5-eval", "device": "nvidia0", "Hostname": "n-p5",
           "modelName": "NVIDIA H100 80GB HBM3", "exported_namespace": "research",
           "exported_pod": "eval-0", "exported_container": "main", "namespace": "gpu-operator",
           "instance": "10.0.0.10:9400"}  # fmt: skip
    switch = S + DAY // 2
    for pod, start, stop in (("dcgm-a", S, switch + 600), ("dcgm-b", switch, STOP)):
        h.span("DCGM_FI_DEV_GPU_UTIL", {**gpu, "pod": pod}, 20, start, stop)
        h.span("DCGM_FI_DEV_FB_USED", {**gpu, "pod": pod}, 8000, start, stop)
    h.add("DCGM_FI_DEV_FB_USED", {**gpu, "pod": "dcgm-b"}, 60000, switch + 3 * 3600 + 30)


def _serving(h: History, pod: str) -> None:
    scraped = {"namespace": "serving", "pod": pod, "model_name": MODEL, "engine": "0"}
    half = S + DAY // 2
    h.span("vllm:num_requests_running", scraped, 1.6, S, half)
    h.span("vllm:num_requests_running", scraped, 0, half, STOP)
    h.span("vllm:num_requests_waiting", scraped, 0, S, STOP)
    h.span("vllm:kv_cache_usage_perc", scraped, 0.1, S, STOP)
    h.span("vllm:gpu_cache_usage_perc", scraped, 0.1, S, STOP)  # deprecated, still exported
    for i, ts in enumerate(range(S, STOP, 60)):
        busy = min(i, DAY // 2 // 60)  # minutes of traffic so far
        h.add("vllm:request_success_total", {**scraped, "finished_reason": "stop"}, busy, ts)
        h.add("vllm:prompt_tokens_total", scraped, 900 * busy, ts)
        h.add("vllm:generation_tokens_total", scraped, 100 * busy, ts)


def _history() -> History:
    h = History()
    types = {"n-p5": "p5.48xlarge", **{f"n-g6-{i}": "g6.xlarge" for i in range(4)}}
    for node, it in types.items():
        labels = {"node": node, "label_node_kubernetes_io_instance_type": it, **_NODE}
        h.span("kube_node_labels", labels, 1, S - 600, STOP)
    _pod(h, "research", "train-0", "n-p5", ("Job", "train"))
    dcgm_utilization(h, namespace="research", pod="train-0", node="n-p5", gpus=1,
                     model="NVIDIA H100 80GB HBM3", percent=20, start=S, stop=STOP)  # fmt: skip
    nan = {"gpu": "0", "UUID": "GPU-n-p5-0", "pci_bus_id": "00000000:10:00.0", "device": "nvidia0",
           "modelName": "NVIDIA H100 80GB HBM3", "Hostname": "n-p5",
           "DCGM_FI_DRIVER_VERSION": "580.105.08", "namespace": "research", "pod": "train-0",
           "container": "main"}  # fmt: skip
    h.add("DCGM_FI_DEV_GPU_UTIL", nan, float("nan"), S + 5 * 3600 + 30)  # a NaN reading
    _memory(h, "research", "train-0", "n-p5", 8000, S, S + 3600)
    _memory(h, "research", "train-0", "n-p5", 12000, S + 3600, S + 7200)
    _memory(h, "research", "train-0", "n-p5", 8000, S + 7200, STOP)
    _eval(h)
    _pod(h, "research", "fresh-0", "n-p5", None)
    h.span("kube_pod_start_time", {"namespace": "research", "pod": "fresh-0",
           "uid": "uid-research-fresh-0"}, END - 900, END - 900, STOP)  # fmt: skip
    dcgm_utilization(h, namespace="research", pod="fresh-0", node="n-p5", gpus=1,
                     model="NVIDIA H100 80GB HBM3", percent=0, start=END - 900, stop=STOP)  # fmt: skip
    h.span("kube_replicaset_owner", {"namespace": "serving", "replicaset": "chat-7f9c",
           "owner_kind": "Deployment", "owner_name": "chat", "owner_is_controller": "true"},
           1, S, STOP)  # fmt: skip
    _pod(h, "research", "notebook-0", "n-p5", None)
    dcgm_utilization(h, namespace="research", pod="notebook-0", node="n-p5", gpus=1,
                     model="NVIDIA H100 80GB HBM3", percent=0, start=S, stop=STOP)  # fmt: skip
    _memory(h, "research", "notebook-0", "n-p5", 2000, S, STOP)
    for i in range(4):
        pod = f"chat-7f9c-{i}"
        _pod(h, "serving", pod, f"n-g6-{i}", ("ReplicaSet", "chat-7f9c"))
        dcgm_utilization(h, namespace="serving", pod=pod, node=f"n-g6-{i}", gpus=1,
                         model="NVIDIA L4", percent=15, start=S, stop=STOP)  # fmt: skip
        _memory(h, "serving", pod, f"n-g6-{i}", 20000, S, STOP)
        _serving(h, pod)
    return h


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


def _report(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str]:
    end = datetime.fromtimestamp(END, UTC).isoformat()
    code = main(["report", "--prometheus-url", url, "--end", end, "--window", "24h",
                 "--recommendations", *args])  # fmt: skip
    out, _ = capsys.readouterr()
    return code, out


def test_report_recommendations_json(
    prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _report(capsys, prometheus_url, "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["recommendationsWindow"] == "24h"
    found = {w["workload"]: w for w in doc["recommendations"]}
    # by saving; fresh-0 too young for any
    assert list(found) == ["Pod/notebook-0", "Job/train", "Job/eval", "Deployment/chat"]
    (evaluation,) = found["Job/eval"]["recommendations"]
    assert evaluation["kind"] == "smaller-gpu" and evaluation["monthlySaving"] == "2517.59"
    assert "p4de.24xlarge (A100-80GB, on-demand)" in evaluation["message"]
    assert {"metric": "DCGM_FI_DEV_FB_USED (peak)", "window": "24h",
            "value": "60000 MiB"} in evaluation["evidence"]  # fmt: skip
    (notebook,) = found["Pod/notebook-0"]["recommendations"]
    assert notebook["kind"] == "idle-gpu" and notebook["monthlySaving"] == "5022.40"
    assert "idle in 100% of the samples" in notebook["message"]
    (train,) = found["Job/train"]["recommendations"]
    assert train["kind"] == "smaller-gpu" and train["monthlySaving"] == "3663.87"
    assert "g6e.xlarge (L40S, on-demand)" in train["message"]
    assert {(e["metric"], e["window"], e["value"]) for e in train["evidence"]} == {
        ("DCGM_FI_DEV_GPU_UTIL (mean)", "24h", "20%"),
        ("DCGM_FI_DEV_GPU_UTIL < 5% (share of samples)", "24h", "0%"),
        ("DCGM_FI_DEV_FB_USED (peak)", "24h", "12000 MiB"),
    }
    chat = found["Deployment/chat"]
    assert chat["hourlyCost"] == "3.22"  # 4 x 0.8048 = 3.2192
    kinds = [(r["kind"], r.get("monthlySaving")) for r in chat["recommendations"]]
    assert kinds == [("batching", "1762.51"), ("scale-to-zero", "1175.01"),
                     ("prefix-caching", None)]  # fmt: skip
    zero = chat["recommendations"][1]
    assert {"metric": "vllm:request_success_total (hours with none)", "window": "24h",
            "value": "12 of 24"} in zero["evidence"]  # fmt: skip
    batching = chat["recommendations"][0]
    running = [e for e in batching["evidence"] if e["metric"].startswith("vllm:num_requests_r")]
    assert running == [{"metric": "vllm:num_requests_running (mean, all replicas)",
                        "window": "24h", "value": "3.2"}]  # fmt: skip


def test_report_recommendations_table_and_csv(
    prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _report(capsys, prometheus_url)
    assert code == 0
    assert "research Job/train ($6.88/h)  smaller-gpu  saves $3,663.87/month" in out
    assert "serving Deployment/chat ($3.22/h)  prefix-caching  saving not estimable" in out
    code, out = _report(capsys, prometheus_url, "-o", "csv")
    rows = out.splitlines()
    assert rows[0] == (
        "NAMESPACE,WORKLOAD,HOURLY_COST_USD,KIND,MONTHLY_SAVING_USD,RECOMMENDATION,EVIDENCE"
    )
    assert rows[1].startswith("research,Pod/notebook-0,6.88,idle-gpu,5022.40,")
    assert len(rows) == 7  # notebook, train, eval, and chat's three


def test_without_the_flag_the_report_has_no_recommendations(
    prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    end = datetime.fromtimestamp(END, UTC).isoformat()
    main(["report", "--prometheus-url", prometheus_url, "--end", end, "--window", "24h",
          "-o", "json"])  # fmt: skip
    assert "recommendations" not in json.loads(capsys.readouterr().out)


def test_inference_deployment_status_carries_the_advice(prometheus_url: str) -> None:
    source = PrometheusSource(Settings(prometheus_url=prometheus_url))
    catalog, at = load_catalog(), datetime.fromtimestamp(END, UTC)
    snap = asyncio.run(collect(source, catalog, at=at, windows={}, interval_seconds=300,
                               step_seconds=60, live_node_labels={}))  # fmt: skip
    evidence = asyncio.run(collect_evidence(source, at, DAY))
    assert evidence.error is None
    idep = InferenceDeployment.model_validate({
        "apiVersion": "costgov.io/v1alpha1", "kind": "InferenceDeployment",
        "metadata": {"name": "chat", "namespace": "serving", "generation": 1},
        "spec": {"image": "vllm/vllm-openai:v0.11.0", "gpu": {"model": "L4", "count": 1},
                 "replicas": {"min": 1, "max": 4}, "args": ["--model", MODEL]},
    })  # fmt: skip
    pods = tuple(PodRecord("serving", f"chat-7f9c-{i}", f"n-g6-{i}", Decimal(1),
                           {"costgov.io/inference-deployment": "chat"}, None, "Running")
                 for i in range(4))  # fmt: skip
    inv = Inventory(pods=pods, inference=(idep,))
    situation = situation_from(inv, catalog=catalog, now=at, excluded=frozenset())
    outcome = reconcile_inference(idep, inv, snap, situation=situation,
                                  old=InferenceDeploymentStatus(), ready_replicas=4,
                                  evidence=evidence)  # fmt: skip
    recs = {r.kind: r for r in outcome.status.recommendations}
    assert recs["batching"].monthly_saving == Decimal("1762.51")
    assert recs["scale-to-zero"].monthly_saving == Decimal("1175.01")
    assert recs["prefix-caching"].monthly_saving is None
    # fewer-replicas (GPUs 15 % busy) names the same replicas as batching: shown once
    assert "fewer-replicas" not in recs
    assert recs["batching"].evidence[0].window == "24h"
    # no replacesHostedModel: the cheapest hosted Llama 3.1 8B in genai-prices 0.2.3,
    # huggingface_novita's at 0.02 input / 0.05 output: 0.75 x 0.02 + 0.25 x 0.05 = 0.0275;
    # no token in the trailing hour (traffic stopped 12 h ago): hosted 0.00 a month against
    # self-hosted 3.2192 x 730 = 2,350.016; crossover 2,350.016 / 0.0275 x 1M tokens
    bvb = outcome.status.build_vs_buy
    assert bvb is not None
    assert bvb.hosted_model == "huggingface_novita/meta-llama/Llama-3.1-8B-Instruct"
    assert bvb.picked is not None and "llama 3.1, 8B" in bvb.picked
    assert bvb.hosted_per_million_tokens == "0.0275"
    assert bvb.self_hosted_monthly_cost == Decimal("2350.02")
    assert bvb.hosted_monthly_cost == Decimal("0.00") and bvb.cheaper == "hosted"
    assert bvb.crossover_monthly_tokens == 85_455_127_272
    assert bvb.note == "no tokens served in the last hour"
