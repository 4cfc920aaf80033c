"""Advice with dollars (domain/advising.py), figures worked by hand from the bundled price
list (operator/costgov/catalog/data/prices.yaml) and the datasheet tables in api/gpus.py.

Prices used (USD per hour, on demand):
- aws us-east-1 p5.48xlarge 8 x H100 55.04 -> 6.88 per GPU; g6e.xlarge 1 x L40S (4 vCPU,
  32 GiB) 1.861; g6e.2xlarge 1 x L40S (8 vCPU, 64 GiB) 2.24208; g6.xlarge 1 x L4 0.8048.
- azure eastus Standard_NC24ads_A100_v4 1 x A100-80GB 3.673 (the cheapest A100 per GPU there).
Dense TFLOPS: H100 989, L40S 362, A100 312, L4 121. A month is 730 hours.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from costgov.domain.advising import GpuUse, Running, ServingUse, right_size, serving_advice
from costgov.domain.money import cents
from costgov.domain.offerings import Offering, offering_for_node

from .helpers import CATALOG

AWS_P5 = {"node.kubernetes.io/instance-type": "p5.48xlarge",
          "topology.kubernetes.io/region": "us-east-1",
          "karpenter.sh/capacity-type": "on-demand"}  # fmt: skip
AWS_G6 = {**AWS_P5, "node.kubernetes.io/instance-type": "g6.xlarge"}
AZURE_A100 = {"node.kubernetes.io/instance-type": "Standard_NC24ads_A100_v4",
              "topology.kubernetes.io/region": "eastus",
              "kubernetes.azure.com/scalesetpriority": "regular"}  # fmt: skip


def _offering(labels: dict[str, str]) -> Offering:
    found = offering_for_node(labels, CATALOG)
    assert isinstance(found, Offering), found
    return found


def _run(labels: dict[str, str], hourly: str, *, pods: int = 1, gpus: int = 1,
         cpu: str | None = "2", memory_gib: str | None = "8") -> Running:  # fmt: skip
    return Running(
        hourly=Decimal(hourly), pods=pods, gpus_per_pod=Decimal(gpus),
        offering=_offering(labels), cpu=None if cpu is None else Decimal(cpu),
        memory_gib=None if memory_gib is None else Decimal(memory_gib),
    )  # fmt: skip


def test_a_mostly_idle_h100_moves_to_the_cheapest_gpu_that_holds_its_memory_and_compute() -> None:
    # need 12,000 MiB x 1.048576 MB x 1.2 = 15.10 GB; compute 20 % x 989 = 197.8 TFLOPS:
    # an L4 would be 197.8 / 121 = 163 % busy (no), an L40S 197.8 / 362 = 55 % (yes);
    # g6e.xlarge at 1.861 is the cheapest such GPU in us-east-1
    use = GpuUse("24h", busy_percent=20, idle_share=0.05, peak_memory_mib=12000)
    advice = right_size(_run(AWS_P5, "6.88"), use, CATALOG)
    assert advice is not None and advice.kind == "smaller-gpu"
    assert "g6e.xlarge (L40S, on-demand)" in advice.message
    assert cents(advice.monthly_saving or Decimal(0)) == Decimal("3663.87")  # (6.88-1.861) x 730
    assert [e.metric for e in advice.evidence] == [
        "DCGM_FI_DEV_GPU_UTIL (mean)",
        "DCGM_FI_DEV_GPU_UTIL < 5% (share of samples)",
        "DCGM_FI_DEV_FB_USED (peak)",
    ]
    assert all(e.window == "24h" for e in advice.evidence)


def test_the_pods_cpu_request_rules_out_an_instance_too_small_for_it() -> None:
    # a pod counts on 90 % of an instance's vCPUs (kubelet reservations, DaemonSets):
    # 7 cores: g6e.xlarge 4 x 0.9 = 3.6 (no); g6e.2xlarge 8 x 0.9 = 7.2 (yes):
    # (6.88 - 2.24208) x 730 = 3385.68
    use = GpuUse("24h", busy_percent=20, peak_memory_mib=12000)
    advice = right_size(_run(AWS_P5, "6.88", cpu="7"), use, CATALOG)
    assert advice is not None and "g6e.2xlarge" in advice.message
    assert cents(advice.monthly_saving or Decimal(0)) == Decimal("3385.68")
    # 8 cores: g6e.2xlarge's 7.2 no longer does; g6e.12xlarge (48 vCPU for 4 GPUs: 12 x 0.9
    # = 10.8 for one) at 10.49264 / 4 = 2.62316: (6.88 - 2.62316) x 730 = 3107.49
    advice = right_size(_run(AWS_P5, "6.88", cpu="8"), use, CATALOG)
    assert advice is not None and "g6e.12xlarge" in advice.message
    assert cents(advice.monthly_saving or Decimal(0)) == Decimal("3107.49")


def test_one_a100_with_no_cheaper_gpu_gets_a_mig_slice() -> None:
    # need 30,000 MiB x 1.048576 MB x 1.2 = 37.75 GB: four eighths of 80 GB; compute
    # 7 x 25 % / 80 % = 2.19 -> 3 slices: 3g.40gb; saving 3.673 x 730 x (1 - 3/7) = 1532.17
    use = GpuUse("24h", busy_percent=25, idle_share=0.1, peak_memory_mib=30000)
    advice = right_size(_run(AZURE_A100, "3.673"), use, CATALOG)
    assert advice is not None and advice.kind == "mig"
    assert "3g.40gb" in advice.message
    assert cents(advice.monthly_saving or Decimal(0)) == Decimal("1532.17")


def test_without_memory_figures_low_use_means_sharing_at_half_the_cost() -> None:
    # no DCGM_FI_DEV_FB_USED: no smaller GPU or slice can be vouched for; 3.673 x 730 / 2
    advice = right_size(_run(AZURE_A100, "3.673"), GpuUse("24h", busy_percent=30), CATALOG)
    assert advice is not None and advice.kind == "share-gpu"
    assert "not measured" in advice.message
    assert cents(advice.monthly_saving or Decimal(0)) == Decimal("1340.65")  # 1340.645 up


def test_a_busy_but_often_idle_gpu_is_told_its_idle_dollars() -> None:
    # 60 % busy, idle 30 % of samples, 70,000 MiB (88 GB with headroom: no smaller GPU, no
    # slice): 6.88 x 730 x 0.30 = 1506.72
    use = GpuUse("24h", busy_percent=60, idle_share=0.3, peak_memory_mib=70000)
    advice = right_size(_run(AWS_P5, "6.88"), use, CATALOG)
    assert advice is not None and advice.kind == "share-gpu"
    assert cents(advice.monthly_saving or Decimal(0)) == Decimal("1506.72")


def test_busy_gpus_get_no_right_sizing() -> None:
    use = GpuUse("24h", busy_percent=70, idle_share=0.1, peak_memory_mib=12000)
    assert right_size(_run(AWS_P5, "6.88"), use, CATALOG) is None
    assert right_size(_run(AWS_P5, "6.88"), GpuUse("24h"), CATALOG) is None  # nothing measured


def test_replicas_serving_one_request_each_batch_onto_one() -> None:
    # 4 x g6.xlarge at 0.8048 = 3.2192 $/h; 3.2 running in all (0.8 each), no queue:
    # ceil(3.2 / 8) = 1 replica; 3.2192 x 730 x 3/4 = 1762.51
    use = ServingUse("24h", running=3.2, waiting=0.0, kv_usage=0.1)
    found = serving_advice(_run(AWS_G6, "3.2192", pods=4), use, busy_percent=15,
                           min_replicas=1, catalog=CATALOG)  # fmt: skip
    batching = [a for a in found if a.kind == "batching"]
    assert batching and cents(batching[0].monthly_saving or Decimal(0)) == Decimal("1762.51")
    assert "vllm:num_requests_running (mean, all replicas)" in [
        e.metric for e in batching[0].evidence
    ]


def test_a_queue_means_no_batching_advice_and_min_replicas_is_kept() -> None:
    use = ServingUse("24h", running=3.2, waiting=2.0)
    run = _run(AWS_G6, "3.2192", pods=4)
    kinds = [a.kind for a in serving_advice(run, use, busy_percent=90, min_replicas=1,
                                            catalog=CATALOG)]  # fmt: skip
    assert "batching" not in kinds
    quiet = ServingUse("24h", running=1.0, waiting=0.0)
    assert not serving_advice(run, quiet, busy_percent=10, min_replicas=4, catalog=CATALOG)


def test_a_full_kv_cache_on_idle_compute_suggests_quantisation() -> None:
    # 3 replicas, KV cache 92 % full, GPUs 40 % busy: ceil(3 / 2) = 2 replicas;
    # 2.4144 x 730 x 1/3 = 587.50
    use = ServingUse("24h", running=60.0, waiting=0.0, kv_usage=0.92)
    found = serving_advice(_run(AWS_G6, "2.4144", pods=3), use, busy_percent=40,
                           min_replicas=1, catalog=CATALOG)  # fmt: skip
    assert [a.kind for a in found] == ["quantisation"]
    assert cents(found[0].monthly_saving or Decimal(0)) == Decimal("587.50")


def test_one_quantised_replica_moves_to_a_gpu_of_half_the_memory() -> None:
    # one H100 replica (80 GB), 20 % busy, KV cache full: 40 GB and 197.8 TFLOPS: an L40S
    # (48 GB, 55 % busy): (6.88 - 1.861) x 730 = 3663.87
    use = ServingUse("24h", running=20.0, waiting=1.5, kv_usage=0.95)
    found = serving_advice(_run(AWS_P5, "6.88"), use, busy_percent=20, min_replicas=1,
                           catalog=CATALOG)  # fmt: skip
    quant = [a for a in found if a.kind == "quantisation"]
    assert quant and "g6e.xlarge" in quant[0].message
    assert cents(quant[0].monthly_saving or Decimal(0)) == Decimal("3663.87")


def test_hours_without_a_request_are_worth_scaling_to_zero() -> None:
    # 18 of 24 hours idle: 0.8048 x 730 x 18/24 = 440.63
    use = ServingUse("24h", running=0.2, idle_hours=18, observed_hours=24)
    found = serving_advice(_run(AWS_G6, "0.8048"), use, busy_percent=2, min_replicas=1,
                           catalog=CATALOG)  # fmt: skip
    zero = [a for a in found if a.kind == "scale-to-zero"]
    assert zero and cents(zero[0].monthly_saving or Decimal(0)) == Decimal("440.63")
    few = ServingUse("24h", running=0.2, idle_hours=3, observed_hours=24)
    assert not [a for a in serving_advice(_run(AWS_G6, "0.8048"), few, busy_percent=2,
                                          min_replicas=1, catalog=CATALOG)
                if a.kind == "scale-to-zero"]  # fmt: skip


def test_prefix_caching_is_advised_without_an_invented_figure() -> None:
    use = ServingUse("24h", running=9.0, prompt_tokens=9e6, generation_tokens=1e6)
    found = serving_advice(_run(AWS_G6, "0.8048"), use, busy_percent=60, min_replicas=1,
                           catalog=CATALOG)  # fmt: skip
    prefix = [a for a in found if a.kind == "prefix-caching"]
    assert prefix and prefix[0].monthly_saving is None and "90%" in prefix[0].message
    counted = ServingUse("24h", running=9.0, prompt_tokens=9e6, generation_tokens=1e6,
                         prefix_queries=9e6)  # fmt: skip
    assert not [a for a in serving_advice(_run(AWS_G6, "0.8048"), counted, busy_percent=60,
                                          min_replicas=1, catalog=CATALOG)
                if a.kind == "prefix-caching"]  # fmt: skip


share = st.floats(min_value=0, max_value=1, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    busy=st.one_of(st.none(), st.floats(min_value=0, max_value=100, allow_nan=False)),
    idle=st.one_of(st.none(), share),
    memory=st.one_of(st.none(), st.floats(min_value=0, max_value=400_000, allow_nan=False)),
    pods=st.integers(min_value=1, max_value=16),
    gpus=st.integers(min_value=1, max_value=8),
    running=st.one_of(st.none(), st.floats(min_value=0, max_value=500, allow_nan=False)),
    waiting=st.one_of(st.none(), st.floats(min_value=0, max_value=50, allow_nan=False)),
    kv=st.one_of(st.none(), share),
    idle_hours=st.integers(min_value=0, max_value=24),
    min_replicas=st.integers(min_value=0, max_value=16),
)
def test_no_recommendation_saves_more_than_the_workload_costs(
    busy: float | None, idle: float | None, memory: float | None, pods: int, gpus: int,
    running: float | None, waiting: float | None, kv: float | None, idle_hours: int,
    min_replicas: int,
) -> None:  # fmt: skip
    run = _run(AWS_P5, str(Decimal("6.88") * gpus * pods), pods=pods, gpus=gpus)
    use = GpuUse("24h", busy_percent=busy, idle_share=idle, peak_memory_mib=memory)
    serving = ServingUse("24h", running=running, waiting=waiting, kv_usage=kv,
                         idle_hours=idle_hours, observed_hours=24)  # fmt: skip
    found = [right_size(run, use, CATALOG),
             *serving_advice(run, serving, busy_percent=busy, min_replicas=min_replicas,
                             catalog=CATALOG)]  # fmt: skip
    for advice in found:
        if advice is not None and advice.monthly_saving is not None:
            assert Decimal(0) < advice.monthly_saving <= run.monthly, advice
        if advice is not None and advice.kind == "batching":  # never below the minimum
            floor = max(min_replicas, 1)
            assert advice.monthly_saving is not None
            assert advice.monthly_saving <= run.monthly * (pods - floor) / pods


def test_gpus_idle_in_almost_every_sample_are_to_be_released() -> None:
    # idle in 97 % of samples: 6.88 x 730 x 0.97 = 4871.728 -> 4871.73 (no smaller GPU: the
    # GPU is not needed at all)
    use = GpuUse("24h", busy_percent=1, idle_share=0.97, peak_memory_mib=2000)
    advice = right_size(_run(AWS_P5, "6.88"), use, CATALOG)
    assert advice is not None and advice.kind == "idle-gpu"
    assert cents(advice.monthly_saving or Decimal(0)) == Decimal("4871.73")


AZURE_H100 = {"node.kubernetes.io/instance-type": "Standard_ND96isr_H100_v5",
              "topology.kubernetes.io/region": "eastus",
              "kubernetes.azure.com/scalesetpriority": "regular"}  # fmt: skip


def test_right_sizing_never_crosses_vendors_nor_leaves_nvlink_for_a_multi_gpu_job() -> None:
    # one of eight H100s (98.32 / 8 = 12.29 $/GPU-h), 30 % busy, 20,000 MiB: the MI300X
    # Azure lists is AMD (and bigger); an A100 would be 30 x 989 / 312 = 95 % busy: no GPU.
    # A MIG slice: 7 x 30 / 80 = 2.6 -> 3 compute slices; 25.2 GB -> 4 eighths: 3g.40gb
    use = GpuUse("24h", busy_percent=30, peak_memory_mib=20000)
    advice = right_size(_run(AZURE_H100, "12.29"), use, CATALOG)
    assert advice is not None and advice.kind == "mig" and "MI300X" not in advice.message
    # eight NVLink-joined H100s of a p5, 27 % busy: an L40S server is PCIe (not offered);
    # A100s would be 27 x 989 / 312 = 86 % busy: nothing, and no sharing of a 8-GPU job
    eight = GpuUse("24h", busy_percent=27, peak_memory_mib=30000)
    assert right_size(_run(AWS_P5, "55.04", gpus=8), eight, CATALOG) is None


def test_reserved_capacity_and_pre_bf16_gpus() -> None:
    reserved = {**AWS_P5, "karpenter.sh/capacity-type": "reserved"}
    use = GpuUse("24h", busy_percent=10, idle_share=0.5, peak_memory_mib=10000)
    assert right_size(_run(reserved, "6.88"), use, CATALOG) is None  # paid for anyway
    # on premises (gpuHourly): an H100 at 1.36 $/GPU-h, 10 % busy (98.9 TFLOPS), 12.6 GB:
    # T4 and V100 lack BF16, an L4 would be 82 % busy; an L40S (27 %) at 0.44:
    # (1.36 - 0.44) x 730 = 671.60
    onprem = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "costgov.io/provider": "onprem"}
    advice = right_size(_run(onprem, "1.36"), use, CATALOG)
    assert advice is not None and advice.kind == "smaller-gpu" and "L40S" in advice.message
    assert cents(advice.monthly_saving or Decimal(0)) == Decimal("671.60")


def test_serving_rules_do_not_contradict_each_other() -> None:
    # 4 replicas, 1.5 running in all but the KV cache 92 % full: memory-bound, so no
    # batching; quantisation halves them (2), the GPUs 30 % busy allowing it
    # (30 x 4 / 2 = 60 % <= 80 %): 4 x 0.8048 x 730 x 2/4 = 1175.01
    full = ServingUse("24h", running=1.5, waiting=0.0, kv_usage=0.92)
    found = serving_advice(_run(AWS_G6, "3.2192", pods=4), full, busy_percent=30,
                           min_replicas=1, catalog=CATALOG)  # fmt: skip
    assert [(a.kind, cents(a.monthly_saving or Decimal(0))) for a in found] == [
        ("quantisation", Decimal("1175.01"))]  # fmt: skip
    # 2 replicas 65 % busy with 3 queued: one replica would be 130 % busy: no fewer replicas
    queued = ServingUse("24h", running=30.0, waiting=3.0, kv_usage=0.5)
    assert not serving_advice(_run(AWS_G6, "1.6096", pods=2), queued, busy_percent=65,
                              min_replicas=1, catalog=CATALOG)  # fmt: skip
