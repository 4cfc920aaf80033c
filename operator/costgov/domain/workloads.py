"""Workloads as costgov sees them, read from raw Kubernetes objects (Jobs, Pods, Deployments).

Pure: takes the object as a mapping (from YAML or from the API), returns a `Workload` or
raises `ManifestError` naming the field path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from costgov.domain.capacity import (
    CAPACITY_LABELS,
    GPU_PRODUCT_LABEL,
    INSTANCE_TYPE_LABELS,
    REGION_LABELS,
    CapacityType,
    capacity_from_labels,
    provider_from_labels,
)
from costgov.domain.gpus import normalize_gpu_model
from costgov.domain.quantities import QuantityError, parse_whole_count

__all__ = [
    "CHECKPOINTING_KEY",
    "GPU_RESOURCE",
    "WORKLOAD_KINDS",
    "ManifestError",
    "NodeHints",
    "Workload",
    "workload_from_object",
]

GPU_RESOURCE = "nvidia.com/gpu"
CHECKPOINTING_KEY = "costgov.io/checkpointing"
"""Label or annotation ("true") by which a workload declares it survives preemption."""
WORKLOAD_KINDS = {
    ("batch/v1", "Job"),
    ("v1", "Pod"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
}


class ManifestError(ValueError):
    """An object costgov cannot read; `path` is the field, in the object's own spelling."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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
    """Deployments and StatefulSets run until removed: priced per month, not per run."""
    extra_notes: tuple[str, ...] = field(default=())

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


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ManifestError(path, f"expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ManifestError(path, f"expected a list, got {type(value).__name__}")
    return value


def _int(value: Any, path: str, default: int | None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError(path, f"expected a non-negative integer, got {value!r}")
    return value


def _container_gpus(container: Mapping[str, Any], path: str) -> int:
    resources = _mapping(container.get("resources"), f"{path}.resources")
    counts = {}
    for section in ("limits", "requests"):
        values = _mapping(resources.get(section), f"{path}.resources.{section}")
        if GPU_RESOURCE in values:
            where = f"{path}.resources.{section}.{GPU_RESOURCE}"
            try:
                counts[section] = parse_whole_count(values[GPU_RESOURCE])
            except QuantityError as exc:
                raise ManifestError(where, str(exc)) from exc
    if "limits" in counts and "requests" in counts and counts["limits"] != counts["requests"]:
        raise ManifestError(
            f"{path}.resources",
            f"{GPU_RESOURCE} requests ({counts['requests']}) must equal limits "
            f"({counts['limits']}); Kubernetes does not overcommit extended resources",
        )
    return counts.get("limits", counts.get("requests", 0))


def _pod_gpus(pod_spec: Mapping[str, Any], path: str) -> int:
    containers = _list(pod_spec.get("containers"), f"{path}.containers")
    if not containers:
        raise ManifestError(f"{path}.containers", "a pod needs at least one container")
    regular = sum(
        _container_gpus(_mapping(c, f"{path}.containers[{i}]"), f"{path}.containers[{i}]")
        for i, c in enumerate(containers)
    )
    init = [
        _container_gpus(_mapping(c, f"{path}.initContainers[{i}]"), f"{path}.initContainers[{i}]")
        for i, c in enumerate(_list(pod_spec.get("initContainers"), f"{path}.initContainers"))
    ]
    # Init containers run one at a time before the others: the pod holds the larger need.
    return max([regular, *init])


def _required_node_terms(pod_spec: Mapping[str, Any], path: str) -> dict[str, list[str]]:
    """Single-term `In` requirements of required node affinity, as label -> values."""
    affinity = _mapping(pod_spec.get("affinity"), f"{path}.affinity")
    node = _mapping(affinity.get("nodeAffinity"), f"{path}.affinity.nodeAffinity")
    required_path = f"{path}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    required = _mapping(node.get("requiredDuringSchedulingIgnoredDuringExecution"), required_path)
    terms = _list(required.get("nodeSelectorTerms"), f"{required_path}.nodeSelectorTerms")
    if len(terms) != 1:
        return {}  # alternatives (OR-ed terms): the scheduler may pick any; no single hint
    out: dict[str, list[str]] = {}
    term = _mapping(terms[0], f"{required_path}.nodeSelectorTerms[0]")
    for expr in _list(term.get("matchExpressions"), f"{required_path}.nodeSelectorTerms[0]"):
        if isinstance(expr, Mapping) and expr.get("operator") == "In":
            values = [str(v) for v in expr.get("values") or []]
            if values:
                out[str(expr.get("key"))] = values
    return out


def _hints(pod_spec: Mapping[str, Any], path: str) -> NodeHints:
    selector = {
        str(k): str(v)
        for k, v in _mapping(pod_spec.get("nodeSelector"), f"{path}.nodeSelector").items()
    }
    notes: list[str] = []
    for key, values in _required_node_terms(pod_spec, path).items():
        if key not in selector:
            selector[key] = values[0]
            if len(values) > 1:
                notes.append(f"node affinity allows {key} in {values}; priced as {values[0]}")
    instance_type = next((selector[k] for k in INSTANCE_TYPE_LABELS if k in selector), None)
    region = next((selector[k] for k in REGION_LABELS if k in selector), None)
    product = selector.get(GPU_PRODUCT_LABEL)
    capacity: CapacityType | None = None
    if any(label in selector for label in CAPACITY_LABELS):
        capacity, _ = capacity_from_labels(selector)
    return NodeHints(
        instance_type=instance_type,
        gpu_model=normalize_gpu_model(product),
        gpu_product=product,
        capacity=capacity,
        provider=provider_from_labels(selector),
        region=region,
        notes=tuple(notes),
    )


def _str_map(value: Any, path: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(value, path).items()}


def workload_from_object(obj: Mapping[str, Any]) -> Workload:
    """Read a Job, Pod, Deployment or StatefulSet. Raises ManifestError on malformed input."""
    api_version = str(obj.get("apiVersion", ""))
    kind = str(obj.get("kind", ""))
    if (api_version, kind) not in WORKLOAD_KINDS:
        known = ", ".join(f"{a} {k}" for a, k in sorted(WORKLOAD_KINDS))
        raise ManifestError(
            "kind", f"{api_version} {kind} is not a workload costgov prices ({known})"
        )
    meta = _mapping(obj.get("metadata"), "metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError("metadata.name", "required field is missing")
    namespace = str(meta.get("namespace") or "default")
    spec = _mapping(obj.get("spec"), "spec")
    if kind == "Pod":
        pod_spec, pod_path = spec, "spec"
    else:
        template = _mapping(spec.get("template"), "spec.template")
        pod_spec, pod_path = (
            _mapping(template.get("spec"), "spec.template.spec"),
            "spec.template.spec",
        )
    gpus = _pod_gpus(pod_spec, pod_path)
    hints = _hints(pod_spec, pod_path)
    deadline: int | None = None
    suspended = False
    long_running = False
    if kind == "Job":
        parallelism = _int(spec.get("parallelism"), "spec.parallelism", 1) or 0
        completions = _int(spec.get("completions"), "spec.completions", None)
        pods = min(parallelism, completions) if completions is not None else parallelism
        deadline = _int(spec.get("activeDeadlineSeconds"), "spec.activeDeadlineSeconds", None)
        suspended = bool(spec.get("suspend", False))
    elif kind == "Pod":
        pods = 1
        deadline = _int(spec.get("activeDeadlineSeconds"), "spec.activeDeadlineSeconds", None)
    else:
        pods = _int(spec.get("replicas"), "spec.replicas", 1) or 0
        long_running = True
    return Workload(
        api_version=api_version,
        kind=kind,
        name=name,
        namespace=namespace,
        labels=_str_map(meta.get("labels"), "metadata.labels"),
        annotations=_str_map(meta.get("annotations"), "metadata.annotations"),
        pods=pods,
        gpus_per_pod=gpus,
        hints=hints,
        max_runtime_seconds=deadline,
        suspended=suspended,
        long_running=long_running,
    )
