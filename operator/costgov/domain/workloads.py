"""Workloads as costgov sees them: how many pods, how many GPUs each, for how long, where.

The types only; `costgov.domain.reading` builds them from raw Kubernetes objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from costgov.domain.capacity import CapacityType

__all__ = [
    "CHECKPOINTING_KEY",
    "GPU_RESOURCE",
    "LONG_RUNNING_KINDS",
    "WORKLOAD_KINDS",
    "ManifestError",
    "NodeHints",
    "NodeRequirement",
    "Owner",
    "Placement",
    "Toleration",
    "Workload",
]

GPU_RESOURCE = "nvidia.com/gpu"
CHECKPOINTING_KEY = "costgov.io/checkpointing"
"""Label or annotation ("true") by which a workload declares it survives preemption."""
WORKLOAD_KINDS = {
    ("batch/v1", "Job"),
    ("v1", "Pod"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "ReplicaSet"),
}
LONG_RUNNING_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet", "InferenceDeployment"})


class ManifestError(ValueError):
    """An object costgov cannot read; `path` is the field, in the object's own spelling."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class NodeHints:
    """What a pod spec (or a budget) says about the node it needs."""

    instance_type: str | None = None
    gpu_model: str | None = None
    gpu_product: str | None = None
    """The raw product name, kept for messages when it is not a known model."""
    capacity: CapacityType | None = None
    provider: str | None = None
    region: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def says_where(self) -> bool:
        """Whether the hints name an instance type or a GPU model (something to price by)."""
        return bool(self.instance_type or self.gpu_model or self.gpu_product)

    def over(self, fallback: NodeHints) -> NodeHints:
        """These hints, with gaps filled from `fallback` (a budget's expectations)."""
        return NodeHints(
            instance_type=self.instance_type or fallback.instance_type,
            gpu_model=self.gpu_model or fallback.gpu_model,
            gpu_product=self.gpu_product or fallback.gpu_product,
            capacity=self.capacity or fallback.capacity,
            provider=self.provider or fallback.provider,
            region=self.region or fallback.region,
            notes=self.notes + fallback.notes,
        )


@dataclass(frozen=True, slots=True)
class NodeRequirement:
    """One node-affinity match expression (In, NotIn, Exists, DoesNotExist, Gt, Lt)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Toleration:
    """A pod toleration, as core/v1 Toleration means it."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the scheduler may put the pods: the constraints that decide eligible nodes."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    terms: tuple[tuple[NodeRequirement, ...], ...] = ()
    """Required node affinity: OR-ed terms of AND-ed requirements; empty means any node."""
    tolerations: tuple[Toleration, ...] = ()


@dataclass(frozen=True, slots=True)
class Owner:
    """The controller that owns an object (ownerReferences with controller: true)."""

    api_version: str
    kind: str
    name: str
    uid: str = ""


@dataclass(frozen=True, slots=True)
class Workload:
    """One pricable workload: how many pods, how many GPUs each, for how long, where."""

    api_version: str
    kind: str
    name: str
    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    pods: int
    """Pods running at once: a Job's parallelism (capped by completions), replicas otherwise."""
    gpus_per_pod: int
    hints: NodeHints
    max_runtime_seconds: int | None = None
    """A Job's or Pod's activeDeadlineSeconds; None when it declares none."""
    suspended: bool = False
    long_running: bool = False
    """Deployments, StatefulSets and model servers run until removed: priced per month."""
    placement: Placement = field(default_factory=Placement)
    owner: Owner | None = None
    created: datetime | None = None
    stateful: bool = False
    """StatefulSets keep per-replica state: never called stateless, never offered spot as such."""

    @property
    def total_gpus(self) -> int:
        return self.pods * self.gpus_per_pod

    @property
    def checkpointing(self) -> bool:
        value = self.labels.get(CHECKPOINTING_KEY) or self.annotations.get(CHECKPOINTING_KEY)
        return (value or "").lower() == "true"

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"
