"""costgov's own resources as workloads: budget hints, coverage, InferenceDeployments."""

from __future__ import annotations

from functools import lru_cache

from costgov.api.gpus import normalize_gpu_model
from costgov.api.inferencedeployment import InferenceDeployment
from costgov.api.trainingjobbudget import TrainingHints
from costgov.domain.capacity import CapacityType
from costgov.domain.workloads import NodeHints, Workload

__all__ = ["budget_hints", "inference_workload"]

_CAPACITY = {"spot": CapacityType.SPOT, "on-demand": CapacityType.ON_DEMAND, "any": None}


@lru_cache(maxsize=1024)
def budget_hints(hints: TrainingHints) -> NodeHints:
    """A TrainingJobBudget's expectations, as node hints for unscheduled Jobs."""
    return NodeHints(
        instance_type=hints.instance_type,
        gpu_model=normalize_gpu_model(hints.gpu_model),
        gpu_product=hints.gpu_model,
        gpu_product_field="spec.hints.gpuModel",
        capacity=_CAPACITY[hints.capacity_type],
        provider=hints.provider,
        region=hints.region,
    )


def inference_workload(obj: InferenceDeployment) -> Workload:
    """An InferenceDeployment priced at its maximum replicas (what it may cost)."""
    spec = obj.spec
    notes: tuple[str, ...] = ()
    if spec.capacity_type == "any":
        notes = ("capacityType any: priced on demand, the dearer case",)
    return Workload(
        api_version=obj.api_version,
        kind="InferenceDeployment",
        name=obj.metadata.name,
        namespace=obj.metadata.namespace or "default",
        labels=obj.metadata.labels,
        annotations=obj.metadata.annotations,
        pods=spec.replicas.max,
        gpus_per_pod=spec.gpu.count,
        hints=NodeHints(
            instance_type=spec.gpu.instance_type,
            gpu_model=normalize_gpu_model(spec.gpu.model),
            gpu_product=spec.gpu.model,
            gpu_product_field="spec.gpu.model",
            capacity=_CAPACITY[spec.capacity_type] or CapacityType.ON_DEMAND,
            notes=notes,
        ),
        long_running=True,
        created=None,
    )
