"""Advice with dollars: GPU right-sizing and model-server tuning, each with its evidence.

Every figure is per month at the workload's current $/h x 730 (`monthly`), over what the
evidence window measured (docs/recommendations.md has the reasoning and worked examples):

- **Right-sizing**, when the GPUs were under 50 % busy on average (DCGM_FI_DEV_GPU_UTIL) or
  idle (under 5 % busy) over 20 % of the sampled time:
  0. idle in 95 % of the samples or more: release them (saving = monthly x idle share);
  1. the cheapest GPU, in the same provider and region at the same capacity type, whose
     memory holds the peak memory used (DCGM_FI_DEV_FB_USED) plus 20 %, on which the work
     would be under 80 % busy (busy now x this GPU's dense TFLOPS / that one's), and whose
     vCPUs and memory, in the share a pod's GPUs hold, cover what the pod requests:
     saving = ($/GPU-h now - its $/GPU-h) x GPUs x 730;
  2. else, for one GPU of a MIG-capable model, the smallest MIG slice holding the memory and
     on which the work is under 80 % busy: saving = monthly x (1 - slices / 7);
  3. else sharing (time-slicing or MPS): two such workloads on one GPU when under 50 % busy
     and the memory fits twice (saving monthly / 2); when only idle, releasing the GPUs
     while idle (saving = monthly x idle share).
- **Model servers** (vLLM's gauges and counters):
  - batching: under 2 running requests per replica on average with no queue: the load fits
    ceil(running / 8) replicas (at least the minimum);
  - quantisation: KV cache 80 % full on average, or requests queued, while GPUs are under
    70 % busy (memory, not compute, limits): FP8 weights and KV cache hold about twice the
    tokens, so half the replicas, or half the GPUs of one replica, or a GPU of half the memory;
  - scale to zero: at least 4 hours, and a quarter of the hours observed, with no request:
    saving = monthly x idle hours / hours observed;
  - prefix caching: prompts are at least half the tokens and no prefix-cache lookup is
    counted (caching off). No dollar figure: it depends on how many prompts share a prefix,
    which only the cache's own hit rate shows once it is on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from costgov.api.gpus import (
    AMD_MODELS,
    GPU_DENSE_TFLOPS,
    GPU_MEMORY_GB,
    MIG_MODELS,
    MIG_SLICES_PER_GPU,
    NO_BF16_MODELS,
    NVLINK_MODELS,
)
from costgov.domain.capacity import CapacityType
from costgov.domain.catalogs import InstancePrice, PriceCatalog
from costgov.domain.money import HOURS_PER_MONTH, usd
from costgov.domain.offerings import Offering
from costgov.domain.recommending import Advice, Evidence

__all__ = ["GpuUse", "Running", "ServingUse", "right_size", "serving_advice"]

BUSY_BELOW_PERCENT = 50
BUSY_TARGET_PERCENT = 80
"""A smaller GPU must carry the work under this busy share (busy now x TFLOPS ratio)."""
IDLE_OVER_SHARE = 0.20
IDLE_ALWAYS_SHARE = 0.95
MEMORY_HEADROOM = Decimal("1.2")
ALLOCATABLE = Decimal("0.9")
"""The share of an instance's vCPUs and memory a pod can count on (allocatable, not capacity)."""
MIB_IN_GB = Decimal("0.001048576")
MIG_PROFILES = ((1, 1), (2, 2), (3, 4), (4, 4), (7, 8))
"""(compute slices of 7, memory eighths) of the MIG profiles A100, H100, H200 and B200
share: 1g.10gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb on an H100 80 GB."""
LOW_RUNNING_PER_REPLICA = 2.0
BATCH_TARGET = 8
KV_FULL = 0.8
QUEUED = 1.0
COMPUTE_BOUND_PERCENT = 70
IDLE_HOURS_MIN = 4


@dataclass(frozen=True)
class Running:
    """A workload's GPU pods running now, as priced."""

    hourly: Decimal
    """All its pods' $/h."""
    pods: int
    gpus_per_pod: Decimal
    offering: Offering
    """The node type its costliest pod runs on."""
    cpu: Decimal | None = None
    """Cores its largest pod requests (None: not known)."""
    memory_gib: Decimal | None = None
    """Memory its largest pod requests, GiB."""

    def fits(self, entry: InstancePrice) -> bool:
        """Its pods fit this instance type: enough GPUs, and their share of its vCPUs and
        memory (as many GPUs' worth as a pod holds), less 10 % for the kubelet's reservations
        and DaemonSets, covers what a pod requests."""
        if entry.gpu_count < self.gpus_per_pod:
            return False
        share = self.gpus_per_pod / entry.gpu_count * ALLOCATABLE
        cpu_ok = self.cpu is None or entry.vcpu * share >= self.cpu
        return cpu_ok and (self.memory_gib is None or entry.memory_gib * share >= self.memory_gib)

    @property
    def monthly(self) -> Decimal:
        return self.hourly * HOURS_PER_MONTH


@dataclass(frozen=True)
class GpuUse:
    """What the workload's GPUs did over the evidence window (None: not measured)."""

    window: str
    busy_percent: float | None = None
    idle_share: float | None = None
    peak_memory_mib: float | None = None


@dataclass(frozen=True)
class ServingUse:
    """What vLLM counted for the workload's replicas over the evidence window."""

    window: str
    running: float | None = None
    """Mean running requests, all replicas together."""
    waiting: float | None = None
    kv_usage: float | None = None
    """Mean KV-cache usage (0-1) of the fullest replica."""
    prompt_tokens: float | None = None
    generation_tokens: float | None = None
    prefix_queries: float | None = None
    idle_hours: int = 0
    observed_hours: int = 0


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def _gpu_evidence(use: GpuUse) -> Iterator[Evidence]:
    if use.busy_percent is not None:
        yield Evidence("DCGM_FI_DEV_GPU_UTIL (mean)", use.window, f"{use.busy_percent:.0f}%")
    if use.idle_share is not None:
        yield Evidence("DCGM_FI_DEV_GPU_UTIL < 5% (share of samples)", use.window,
                       _pct(use.idle_share))  # fmt: skip
    if use.peak_memory_mib is not None:
        yield Evidence("DCGM_FI_DEV_FB_USED (peak)", use.window, f"{use.peak_memory_mib:.0f} MiB")


def _rate(entry: InstancePrice, capacity: CapacityType) -> Decimal | None:
    if capacity == CapacityType.SPOT:
        return entry.spot
    if capacity == CapacityType.RESERVED:
        return entry.reserved or entry.on_demand
    return entry.on_demand


def _holds(run: Running, model: str, need_gb: Decimal, busy_at: float) -> bool:
    """This GPU model can take the work: it has the memory, the work would be under the busy
    target on it, and it is no bigger than today's GPU, of its vendor (CUDA stays CUDA),
    with BF16 if today's has it, and NVLink-joined if the pods hold several."""
    now = run.offering.gpu_model or ""
    tflops = GPU_DENSE_TFLOPS.get(model)
    if tflops is None or busy_at / tflops > BUSY_TARGET_PERCENT:
        return False
    memory = GPU_MEMORY_GB.get(model, 0)
    if not need_gb <= memory <= GPU_MEMORY_GB.get(now, 0):
        return False
    if (model in AMD_MODELS) != (now in AMD_MODELS):
        return False
    if model in NO_BF16_MODELS and now not in NO_BF16_MODELS:
        return False
    return run.gpus_per_pod <= 1 or now not in NVLINK_MODELS or model in NVLINK_MODELS


def _cheaper_gpu(
    run: Running, need_gb: Decimal, busy: float, catalog: PriceCatalog
) -> tuple[str, Decimal] | None:
    """The cheapest GPU (label, $/GPU-h) with `need_gb` of memory and the compute for work
    `busy` % busy on today's GPU, cheaper than now."""
    now, o = run.offering.hourly / run.offering.node_gpus, run.offering
    tflops = GPU_DENSE_TFLOPS.get(o.gpu_model or "")
    if tflops is None:
        return None
    busy_at = busy * tflops  # busy share x TFLOPS: the compute the work uses
    found: list[tuple[Decimal, str]] = []
    if o.instance_type is None:  # on premises: per-GPU-hour prices
        for g in catalog.gpu_hourly:
            if _holds(run, g.gpu_model, need_gb, busy_at) and g.per_gpu_hour < now:
                found.append((g.per_gpu_hour, f"{g.gpu_model} (per GPU-hour)"))
    for e in catalog.instances:
        if e.provider != o.provider or e.region != o.region or e.gpu_model is None:
            continue
        rate = _rate(e, o.capacity)
        if rate is None or not run.fits(e):
            continue
        per_gpu = rate / e.gpu_count
        if _holds(run, e.gpu_model, need_gb, busy_at) and per_gpu < now:
            found.append((per_gpu, f"{e.instance_type} ({e.gpu_model}, {o.capacity.value})"))
    if not found:
        return None
    per_gpu, label = min(found)
    return label, per_gpu


def _mig(run: Running, use: GpuUse, need_gb: Decimal | None) -> tuple[str, int] | None:
    """The smallest MIG profile holding the busy share and the memory, if any is smaller."""
    model = run.offering.gpu_model
    if model not in MIG_MODELS or run.gpus_per_pod != 1 or use.busy_percent is None:
        return None
    memory = GPU_MEMORY_GB[model]
    compute = math.ceil(MIG_SLICES_PER_GPU * max(use.busy_percent, 1) / BUSY_TARGET_PERCENT)
    eighths = 8 if need_gb is None else math.ceil(need_gb / (Decimal(memory) / 8))
    for slices, mem in MIG_PROFILES:
        if slices >= compute and mem >= eighths and slices < MIG_SLICES_PER_GPU:
            return f"{slices}g.{math.floor(memory * mem / 8 + 0.5)}gb", slices
    return None


def right_size(run: Running, use: GpuUse, catalog: PriceCatalog) -> Advice | None:
    """A smaller GPU, a MIG slice or sharing, when the GPUs are mostly idle (rules above)."""
    low = use.busy_percent is not None and use.busy_percent < BUSY_BELOW_PERCENT
    idle = use.idle_share is not None and use.idle_share > IDLE_OVER_SHARE
    if not (low or idle) or run.hourly <= 0 or run.offering.capacity == CapacityType.RESERVED:
        return None  # reserved: the commitment is paid whatever runs on it
    evidence, monthly = tuple(_gpu_evidence(use)), run.monthly
    if use.idle_share is not None and use.idle_share >= IDLE_ALWAYS_SHARE:
        message = (f"GPUs idle in {_pct(use.idle_share)} of the samples: release them (stop "
                   "the pod, or scale it to zero while unused)")  # fmt: skip
        return Advice("idle-gpu", message, monthly * Decimal(repr(use.idle_share)), evidence)
    need = None if use.peak_memory_mib is None else (
        Decimal(repr(use.peak_memory_mib)) * MIB_IN_GB * MEMORY_HEADROOM)  # fmt: skip
    smaller = None
    if need is not None and use.busy_percent is not None:
        smaller = _cheaper_gpu(run, need, use.busy_percent, catalog)
    if smaller is not None:
        label, per_gpu = smaller
        now = run.offering.hourly / run.offering.node_gpus
        saving = (now - per_gpu) * run.gpus_per_pod * run.pods * HOURS_PER_MONTH
        message = (f"peak memory {use.peak_memory_mib:.0f} MiB fits {label} at "
                   f"{usd(per_gpu)}/GPU-hour, against {usd(now)} now")  # fmt: skip
        return Advice("smaller-gpu", message, saving, evidence)
    if (mig := _mig(run, use, need)) is not None:
        profile, slices = mig
        message = (f"a MIG {profile} slice ({slices} of 7) holds this work "
                   f"({use.busy_percent:.0f}% busy)")  # fmt: skip
        return Advice("mig", message, monthly * (1 - Decimal(slices) / 7), evidence)
    return _share(run, use, need, low, evidence)


def _share(
    run: Running, use: GpuUse, need: Decimal | None, low: bool, evidence: tuple[Evidence, ...]
) -> Advice | None:
    if run.gpus_per_pod > 1:  # a multi-GPU (often distributed) job is not shared or paused
        return None
    memory = GPU_MEMORY_GB.get(run.offering.gpu_model or "", 0)
    if low and (need is None or 2 * need <= memory):
        unknown = "" if need is not None else " (memory use not measured: check it fits)"
        message = (f"GPUs {use.busy_percent:.0f}% busy: two such workloads share one GPU with "
                   f"time-slicing or MPS{unknown}")  # fmt: skip
        return Advice("share-gpu", message, run.monthly / 2, evidence)
    if use.idle_share is not None and use.idle_share > IDLE_OVER_SHARE:
        message = (f"GPUs idle {_pct(use.idle_share)} of the time: release them while idle "
                   "(input pipeline, checkpoints, waits) or share them")  # fmt: skip
        return Advice("share-gpu", message, run.monthly * Decimal(repr(use.idle_share)), evidence)
    return None


def _fewer(run: Running, needed: int) -> Decimal:
    return run.monthly * (run.pods - needed) / run.pods


def _serving_evidence(use: ServingUse) -> tuple[Evidence, ...]:
    shown = [
        ("vllm:num_requests_running (mean, all replicas)", use.running, "{:.1f}"),
        ("vllm:num_requests_waiting (mean, all replicas)", use.waiting, "{:.1f}"),
        ("vllm:kv_cache_usage_perc (mean, fullest replica)", use.kv_usage, "{:.0%}"),
    ]
    out = [Evidence(m, use.window, f.format(v)) for m, v, f in shown if v is not None]
    if use.observed_hours:
        out.append(Evidence("vllm:request_success_total (hours with none)", use.window,
                            f"{use.idle_hours} of {use.observed_hours}"))  # fmt: skip
    return tuple(out)


def _replicas(n: int) -> str:
    """ "1 replica carries" / "2 replicas carry"."""
    return "1 replica carries" if n == 1 else f"{n} replicas carry"


def _compute_floor(run: Running, busy: float | None, floor: int) -> int:
    """The fewest replicas that keep the GPUs under the busy target (`floor` at least)."""
    if busy is None:
        return floor
    return max(floor, math.ceil(busy * run.pods / BUSY_TARGET_PERCENT))


def _batching(run: Running, use: ServingUse, busy: float | None, floor: int) -> Advice | None:
    """Few requests running, no queue, KV cache with room: fewer replicas batch the load."""
    if use.running is None or use.running / run.pods >= LOW_RUNNING_PER_REPLICA:
        return None
    if use.waiting is not None and use.waiting >= QUEUED / 2:
        return None
    if use.kv_usage is not None and use.kv_usage >= KV_FULL:
        return None  # memory is short: that is quantisation's case
    needed = max(_compute_floor(run, busy, floor), math.ceil(use.running / BATCH_TARGET))
    if needed >= run.pods:
        return None
    message = (f"{use.running / run.pods:.1f} requests running per replica on average: vLLM "
               f"batches many at once, so {_replicas(needed)} this load")  # fmt: skip
    return Advice("batching", message, _fewer(run, needed), _serving_evidence(use))


def _quantisation(
    run: Running, use: ServingUse, busy: float | None, floor: int, catalog: PriceCatalog
) -> Advice | None:
    full = use.kv_usage is not None and use.kv_usage >= KV_FULL
    queued = use.waiting is not None and use.waiting >= QUEUED
    if not (full or queued) or (busy is not None and busy >= COMPUTE_BOUND_PERCENT):
        return None
    why = "memory, not compute, limits this server"
    evidence = _serving_evidence(use)
    if busy is not None:
        evidence += (Evidence("DCGM_FI_DEV_GPU_UTIL (mean)", use.window, f"{busy:.0f}%"),)
    if busy is None:
        return None  # how far the compute stretches is not known
    needed = max(_compute_floor(run, busy, floor), math.ceil(run.pods / 2))
    if needed < run.pods:
        message = (f"{why}: FP8 weights and KV cache hold twice the tokens, so "
                   f"{_replicas(needed)} this load")  # fmt: skip
        return Advice("quantisation", message, _fewer(run, needed), evidence)
    if run.pods > 1:
        return None
    if run.gpus_per_pod >= 2 and busy * 2 <= BUSY_TARGET_PERCENT:
        message = f"{why}: with FP8 weights each replica needs half its GPUs"
        return Advice("quantisation", message, run.monthly / 2, evidence)
    memory = GPU_MEMORY_GB.get(run.offering.gpu_model or "")
    smaller = None
    if memory is not None and run.gpus_per_pod == 1:
        smaller = _cheaper_gpu(run, Decimal(memory) / 2, busy, catalog)
    if smaller is None:
        return None
    label, per_gpu = smaller
    now = run.offering.hourly / run.offering.node_gpus
    saving = (now - per_gpu) * run.gpus_per_pod * run.pods * HOURS_PER_MONTH
    message = f"{why}: with FP8 weights the model fits {label} at {usd(per_gpu)}/GPU-hour"
    return Advice("quantisation", message, saving, evidence)


def _scale_to_zero(run: Running, use: ServingUse) -> Advice | None:
    idle, seen = use.idle_hours, use.observed_hours
    if seen == 0 or idle < IDLE_HOURS_MIN or idle * 4 < seen:
        return None
    message = (f"no request in {idle} of the last {seen} hours: scale to zero when idle "
               "(replicas.min 0 with a scaler that wakes on traffic)")  # fmt: skip
    return Advice("scale-to-zero", message, run.monthly * idle / seen, _serving_evidence(use))


def _prefix_caching(use: ServingUse) -> Advice | None:
    prompt, generated = use.prompt_tokens, use.generation_tokens
    if prompt is None or prompt <= 0 or prompt < (generated or 0) or use.prefix_queries:
        return None
    share = prompt / (prompt + (generated or 0))
    message = (f"prompts are {_pct(share)} of the tokens and no prefix-cache lookup is "
               "counted: turn on prefix caching (--enable-prefix-caching); the saving depends "
               "on how many prompts share a prefix, shown by its hit rate once on")  # fmt: skip
    evidence = (Evidence("vllm:prompt_tokens_total / all tokens", use.window, _pct(share)),
                Evidence("vllm:prefix_cache_queries_total (growth)", use.window, "0"))  # fmt: skip
    return Advice("prefix-caching", message, None, evidence)


def serving_advice(
    run: Running, use: ServingUse, *, busy_percent: float | None, min_replicas: int,
    catalog: PriceCatalog,
) -> list[Advice]:  # fmt: skip
    """Batching, quantisation, scale to zero and prefix caching for a vLLM server."""
    floor = max(min_replicas, 1)
    found = [
        _batching(run, use, busy_percent, floor),
        _quantisation(run, use, busy_percent, floor, catalog),
        _scale_to_zero(run, use),
        _prefix_caching(use),
    ]
    return [a for a in found if a is not None]
