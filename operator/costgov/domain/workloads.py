"""Workloads as costgov sees them: how many pods, how many GPUs each, for how long, where.

The types only; `costgov.domain.reading` builds them from raw Kubernetes objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from costgov.domain.capacity import CapacityType

__all__ = [
    "CHECKPOINTING_KEY",
    "COMPOSITE_KINDS",
    "GPU_RESOURCE",
    "KUBEFLOW_REPLICA_SPECS",
    "LONG_RUNNING_KINDS",
    "SCALED_KINDS",
    "TRAINING_KINDS",
    "WORKLOAD_KINDS",
    "ManifestError",
    "NodeHints",
    "NodeRequirement",
    "Owner",
    "Placement",
    "PodGroup",
    "Schedule",
    "Toleration",
    "Workload",
    "gpu_figure",
]

GPU_RESOURCE = "nvidia.com/gpu"
CHECKPOINTING_KEY = "costgov.io/checkpointing"
"""Label or annotation ("true") by which a workload declares it survives preemption."""
KUBEFLOW_REPLICA_SPECS = {
    "PyTorchJob": "pytorchReplicaSpecs",
    "TFJob": "tfReplicaSpecs",
    "MPIJob": "mpiReplicaSpecs",
    "XGBoostJob": "xgbReplicaSpecs",
    "PaddleJob": "paddleReplicaSpecs",
    "JAXJob": "jaxReplicaSpecs",
}
"""Kubeflow training-operator kinds and the field holding their replica specs."""
COMPOSITE_KINDS = {
    **{("kubeflow.org/v1", kind): kind for kind in KUBEFLOW_REPLICA_SPECS},
    ("kubeflow.org/v2beta1", "MPIJob"): "MPIJob",
    ("jobset.x-k8s.io/v1alpha2", "JobSet"): "JobSet",
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"): "LeaderWorkerSet",
    ("ray.io/v1", "RayJob"): "RayJob",
    ("ray.io/v1", "RayCluster"): "RayCluster",
}
"""Kinds whose pods come in groups (workers, a leader, a head): judged once, as a whole."""
SCALED_KINDS = frozenset(
    {"Deployment", "StatefulSet", "ReplicaSet", "LeaderWorkerSet", "PyTorchJob", "PaddleJob",
     "JAXJob"}
)  # fmt: skip
"""Kinds with a scale subresource (`kubectl scale`, autoscalers): the apps kinds'
spec.replicas, a LeaderWorkerSet's groups (spec.replicas), and the Worker replicas of the
Kubeflow jobs whose CRDs map /scale there (training-operator v1: PyTorchJob, PaddleJob,
JAXJob)."""
WORKLOAD_KINDS = {
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("v1", "Pod"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "ReplicaSet"),
    *COMPOSITE_KINDS,
}
LONG_RUNNING_KINDS = frozenset(
    {
        "Deployment",
        "StatefulSet",
        "ReplicaSet",
        "InferenceDeployment",
        "LeaderWorkerSet",
        "RayCluster",
    }
)
TRAINING_KINDS = frozenset({"Job", "CronJob", "JobSet", "RayJob", *KUBEFLOW_REPLICA_SPECS})
"""Kinds that run to completion (a runtime bound makes sense for them)."""


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
    gpu_product_field: str = ""
    """Where the product name was written (for messages), e.g. a nodeSelector's path."""
    capacity: CapacityType | None = None
    provider: str | None = None
    region: str | None = None
    notes: tuple[str, ...] = ()
    choices: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Pricing labels a required affinity term allows several values of: (label, values)."""
    alternatives: tuple[NodeHints, ...] = ()
    """One set of hints per combination of those values (the first is these hints' own):
    the pod is priced at the dearest."""
    picks: tuple[tuple[str, str], ...] = ()
    """In an alternative: the value it takes of each label in `choices`."""
    unpriced: str | None = None
    """Why these hints cannot price anything (e.g. too many alternatives), if so."""

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
            gpu_product_field=(
                self.gpu_product_field if self.gpu_product else fallback.gpu_product_field
            ),
            capacity=self.capacity or fallback.capacity,
            provider=self.provider or fallback.provider,
            region=self.region or fallback.region,
            notes=self.notes + fallback.notes,
            choices=self.choices,
            alternatives=tuple(a.over(replace(fallback, notes=())) for a in self.alternatives),
            picks=self.picks,
            unpriced=self.unpriced or fallback.unpriced,
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
class PodGroup:
    """Pods of one role in a workload (a PyTorchJob's workers, a RayCluster's head)."""

    name: str
    pods: int
    gpus_per_pod: int
    hints: NodeHints
    placement: Placement = field(default_factory=Placement)
    mig_share: Decimal = Decimal(0)
    """GPU share per pod held as MIG slices (nvidia.com/mig-3g.40gb: 3/7 of a GPU each)."""
    claims: str = ""
    """Where the pods claim devices through DRA ResourceClaims (the field path), if they do:
    GPU work costgov cannot count or price (unpriced, never taken as no GPUs)."""
    per_replica: int = 0
    """Pods each replica of the kind's scale subresource adds to this group (a
    LeaderWorkerSet's group size, a PyTorchJob's one worker); 0 when scaling leaves it."""

    @property
    def gpu_work(self) -> bool:
        """Whether the pods hold GPUs, or may (through DRA claims)."""
        return self.gpu_equivalents > 0 or bool(self.claims)

    @property
    def gpu_equivalents(self) -> Decimal:
        """GPUs per pod, whole and MIG slices together."""
        return self.gpus_per_pod + self.mig_share


@dataclass(frozen=True, slots=True)
class Schedule:
    """A CronJob's schedule, as far as cost goes."""

    expression: str
    runs_per_month: Decimal
    overlapping: bool
    """Whether runs may overlap (concurrencyPolicy Allow)."""
    runs_per_day: Decimal = Decimal(0)
    """Runs on the busiest day it fires."""


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
    uid: str | None = None
    """metadata.uid (the apiserver sets it before admission): tells a new object from an old
    one of the same name."""
    stateful: bool = False
    """StatefulSets keep per-replica state: never called stateless, never offered spot as such."""
    mig_share: Decimal = Decimal(0)
    """GPU share per pod held as MIG slices (see `PodGroup.mig_share`)."""
    groups: tuple[PodGroup, ...] = ()
    """For kinds whose pods come in groups: every group, priced each on its own; then `pods`
    counts them all and `gpus_per_pod`, `hints` and `placement` are the GPU-heaviest's."""
    schedule: Schedule | None = None
    """A CronJob's schedule: the workload is one run, repeated."""
    claims: str = ""
    """See `PodGroup.claims`."""

    @property
    def parts(self) -> tuple[PodGroup, ...]:
        """The pod groups: the workload's own, or its single group."""
        if self.groups:
            return self.groups
        return (
            PodGroup(
                self.kind,
                self.pods,
                self.gpus_per_pod,
                self.hints,
                self.placement,
                self.mig_share,
                self.claims,
            ),
        )

    @property
    def uses_gpus(self) -> bool:
        """Whether any pod requests a GPU (whole or a MIG slice), or may (DRA claims)."""
        return any(g.gpu_work for g in self.parts)

    @property
    def total_gpus(self) -> Decimal:
        """GPUs held at once by every pod, MIG slices as their share of a GPU."""
        return sum((g.pods * g.gpu_equivalents for g in self.parts), Decimal(0))

    @property
    def checkpointing(self) -> bool:
        value = self.labels.get(CHECKPOINTING_KEY) or self.annotations.get(CHECKPOINTING_KEY)
        return (value or "").lower() == "true"

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


def gpu_figure(value: Decimal) -> int | float:
    """A GPU count for output: whole counts as integers, MIG shares to two places."""
    if value == value.to_integral_value():
        return int(value)
    return float(value.quantize(Decimal("0.01")))
