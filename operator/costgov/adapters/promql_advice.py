"""PromQL for the advice evidence: what right-sizing and serving advice rest on, per pod
(domain/advising.py reads the answers)."""

from __future__ import annotations

from costgov.adapters.promql import (
    _GENERATED,
    _PROMPT,
    _dcgm_series,
    _dur,
    _growth,
    gpu_utilization,
)

__all__ = ["IDLE_BELOW_PERCENT", "advice_evidence", "vllm_hourly_requests"]


IDLE_BELOW_PERCENT = 5
"""A GPU sample under this utilisation counts as idle (right-sizing's idle share)."""


def _peak_memory(span: str) -> str:
    """The highest DCGM_FI_DEV_FB_USED sample per pod over the span (every raw sample: a
    spike between two sub-query points counts), in either label style (`_dcgm_series`)."""
    metric = "DCGM_FI_DEV_FB_USED"
    exported = (
        "max by (exported_namespace, exported_pod) "
        f'(max_over_time({metric}{{exported_pod!=""}}[{span}]))'
    )
    renamed = (
        f'label_replace(label_replace({exported}, "namespace", "$1", "exported_namespace", '
        f'"(.+)"), "pod", "$1", "exported_pod", "(.+)")'
    )
    plain = f'max by (namespace, pod) (max_over_time({metric}{{exported_pod=""}}[{span}]))'
    return f"(max by (namespace, pod) ({renamed}) or {plain})"


def _requested(resource: str) -> str:
    """What each pod requests of a resource now (cores; bytes), each container once."""
    return (
        "sum by (namespace, pod) (max by (namespace, pod, container) "
        f'(kube_pod_container_resource_requests{{resource="{resource}"}}))'
    )


def advice_evidence(window: int, step: int) -> dict[str, str]:
    """Per pod, over the window: what right-sizing and serving advice rest on
    (domain/advising.py). Busy and idle shares at points every `step` (NaN readings left
    out); the memory peak from every raw sample (a spike between two points counts)."""
    span, points = _dur(window), f"[{_dur(window - 1)}:{_dur(step)}]"
    util = "DCGM_FI_DEV_GPU_UTIL"

    idle = f"({_dcgm_series(util, mig=False)} < bool {IDLE_BELOW_PERCENT})"

    def growth(*counters: str) -> str:
        return " or ".join(_growth(c, window) for c in counters)

    return {
        "cpu": _requested("cpu"),
        "ram": _requested("memory"),
        "started": "max by (namespace, pod) (kube_pod_start_time)",
        "busy": gpu_utilization(window, step),
        "idle": f"avg by (namespace, pod) (avg_over_time({idle}{points}))",
        "memory": _peak_memory(span),
        "running": f"sum by (namespace, pod) (avg_over_time(vllm:num_requests_running[{span}]))",
        "waiting": f"sum by (namespace, pod) (avg_over_time(vllm:num_requests_waiting[{span}]))",
        # vLLM 0.9-0.10 export both names: one per pod, the newer first
        "kv": " or ".join(
            f"max by (namespace, pod) (avg_over_time({m}[{span}]))"
            for m in ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
        ),
        "prompt": _growth(_PROMPT, window),
        "generated": _growth(_GENERATED, window),
        # lookups: vLLM V1 (prefix_cache_queries; gpu_prefix_cache_queries in 0.8-0.9.1),
        # or V0's hit-rate gauge above 0
        "prefix": f"{growth('vllm:prefix_cache_queries_total', 'vllm:gpu_prefix_cache_queries_total')}"
        f" or sum by (namespace, pod) (max_over_time(vllm:gpu_prefix_cache_hit_rate[{span}]) > 0)",
    }


def vllm_hourly_requests() -> str:
    """Requests each vLLM pod served in the hour to each point (for a range query by hour)."""
    return "sum by (namespace, pod) (increase(vllm:request_success_total[1h]))"
