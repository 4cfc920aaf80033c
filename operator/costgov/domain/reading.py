"""Read Jobs, Pods, Deployments, StatefulSets and ReplicaSets as `Workload`s.

Pure: takes the object as a mapping (from YAML or from the API), returns a `Workload` or
raises `ManifestError` naming the field path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
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
from costgov.domain.workloads import (
    GPU_RESOURCE,
    WORKLOAD_KINDS,
    ManifestError,
    NodeHints,
    NodeRequirement,
    Owner,
    Placement,
    Toleration,
    Workload,
)

__all__ = ["controller_owner", "workload_from_object"]

_REQUIRED = "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if type(value) is dict:  # the common case, without an ABC check
        return value
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ManifestError(path, f"expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if type(value) is list:
        return value
    if value is None:
        return []
    if not isinstance(value, list):
        raise ManifestError(path, f"expected a list, got {type(value).__name__}")
    return value


INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def _int(value: Any, path: str, default: int | None, maximum: int = INT32_MAX) -> int | None:
    """A non-negative integer field, bounded as Kubernetes bounds it (int32 unless said)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        shown = repr(value) if not isinstance(value, int) or value < 10**20 else "a huge number"
        raise ManifestError(path, f"expected an integer from 0 to {maximum}, got {shown}")
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


def _requirement(expr: Any, path: str) -> NodeRequirement:
    expr = _mapping(expr, path)
    values = tuple(str(v) for v in _list(expr.get("values"), f"{path}.values"))
    return NodeRequirement(str(expr.get("key", "")), str(expr.get("operator", "")), values)


def _terms(pod_spec: Mapping[str, Any], path: str) -> tuple[tuple[NodeRequirement, ...], ...]:
    """Required node affinity, as OR-ed terms of AND-ed requirements."""
    affinity = _mapping(pod_spec.get("affinity"), f"{path}.affinity")
    node = _mapping(affinity.get("nodeAffinity"), f"{path}.affinity.nodeAffinity")
    required_path = f"{path}.{_REQUIRED}"
    required = _mapping(node.get("requiredDuringSchedulingIgnoredDuringExecution"), required_path)
    terms = []
    for t, raw in enumerate(_list(required.get("nodeSelectorTerms"), f"{required_path}.terms")):
        where = f"{required_path}.nodeSelectorTerms[{t}]"
        exprs = _list(_mapping(raw, where).get("matchExpressions"), f"{where}.matchExpressions")
        terms.append(
            tuple(_requirement(e, f"{where}.matchExpressions[{i}]") for i, e in enumerate(exprs))
        )
    return tuple(terms)


def _tolerations(pod_spec: Mapping[str, Any], path: str) -> tuple[Toleration, ...]:
    out = []
    for i, raw in enumerate(_list(pod_spec.get("tolerations"), f"{path}.tolerations")):
        t = _mapping(raw, f"{path}.tolerations[{i}]")
        out.append(
            Toleration(
                key=str(t.get("key") or ""),
                operator=str(t.get("operator") or "Equal"),
                value=str(t.get("value") or ""),
                effect=str(t.get("effect") or ""),
            )
        )
    return tuple(out)


def _str_map(value: Any, path: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(value, path).items()}


def _hints(
    selector: Mapping[str, str], terms: tuple[tuple[NodeRequirement, ...], ...]
) -> NodeHints:
    """Pricing hints: the nodeSelector, filled in from a single required affinity term."""
    chosen = dict(selector)
    notes: list[str] = []
    if len(terms) == 1:  # OR-ed alternatives: the scheduler may pick any, no single hint
        for req in terms[0]:
            if req.operator == "In" and req.values and req.key not in chosen:
                chosen[req.key] = req.values[0]
                if len(req.values) > 1:
                    notes.append(
                        f"node affinity allows {req.key} in {list(req.values)}; "
                        f"priced as {req.values[0]}"
                    )
    product = chosen.get(GPU_PRODUCT_LABEL)
    capacity: CapacityType | None = None
    if any(label in chosen for label in CAPACITY_LABELS):
        capacity, _ = capacity_from_labels(chosen)
    return NodeHints(
        instance_type=next((chosen[k] for k in INSTANCE_TYPE_LABELS if k in chosen), None),
        gpu_model=normalize_gpu_model(product),
        gpu_product=product,
        capacity=capacity,
        provider=provider_from_labels(chosen),
        region=next((chosen[k] for k in REGION_LABELS if k in chosen), None),
        notes=tuple(notes),
    )


def controller_owner(meta: Mapping[str, Any]) -> Owner | None:
    """The ownerReference marked controller: true, if any."""
    for ref in _list(meta.get("ownerReferences"), "metadata.ownerReferences"):
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return Owner(
                str(ref.get("apiVersion", "")),
                str(ref.get("kind", "")),
                str(ref.get("name", "")),
                str(ref.get("uid", "")),
            )
    return None


def _created(meta: Mapping[str, Any]) -> datetime | None:
    stamp = meta.get("creationTimestamp")
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def _pod_spec(kind: str, spec: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    if kind == "Pod":
        return spec, "spec"
    template = _mapping(spec.get("template"), "spec.template")
    return _mapping(template.get("spec"), "spec.template.spec"), "spec.template.spec"


def _runs(kind: str, spec: Mapping[str, Any]) -> tuple[int, int | None, bool]:
    """(pods at once, activeDeadlineSeconds, suspended) by kind."""
    if kind == "Job":
        parallelism = _int(spec.get("parallelism"), "spec.parallelism", 1) or 0
        completions = _int(spec.get("completions"), "spec.completions", None)
        pods = min(parallelism, completions) if completions is not None else parallelism
        deadline = _int(
            spec.get("activeDeadlineSeconds"), "spec.activeDeadlineSeconds", None, INT64_MAX
        )
        return pods, deadline, spec.get("suspend") is True
    if kind == "Pod":
        field = "spec.activeDeadlineSeconds"
        return 1, _int(spec.get("activeDeadlineSeconds"), field, None, INT64_MAX), False
    return _int(spec.get("replicas"), "spec.replicas", 1) or 0, None, False


def workload_from_object(obj: Mapping[str, Any]) -> Workload:
    """Read a Job, Pod, Deployment, StatefulSet or ReplicaSet; ManifestError when malformed."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    if (api_version, kind) not in WORKLOAD_KINDS:
        known = ", ".join(f"{a} {k}" for a, k in sorted(WORKLOAD_KINDS))
        raise ManifestError(
            "kind", f"{api_version} {kind} is not a workload costgov prices ({known})"
        )
    meta = _mapping(obj.get("metadata"), "metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError("metadata.name", "required field is missing")
    spec = _mapping(obj.get("spec"), "spec")
    pod_spec, pod_path = _pod_spec(kind, spec)
    selector = _str_map(pod_spec.get("nodeSelector"), f"{pod_path}.nodeSelector")
    terms = _terms(pod_spec, pod_path)
    pods, deadline, suspended = _runs(kind, spec)
    return Workload(
        api_version=api_version,
        kind=kind,
        name=name,
        namespace=str(meta.get("namespace") or "default"),
        labels=_str_map(meta.get("labels"), "metadata.labels"),
        annotations=_str_map(meta.get("annotations"), "metadata.annotations"),
        pods=pods,
        gpus_per_pod=_pod_gpus(pod_spec, pod_path),
        hints=_hints(selector, terms),
        max_runtime_seconds=deadline,
        suspended=suspended,
        long_running=kind in ("Deployment", "StatefulSet", "ReplicaSet"),
        placement=Placement(selector, terms, _tolerations(pod_spec, pod_path)),
        owner=controller_owner(meta),
        created=_created(meta),
        stateful=kind == "StatefulSet",
    )
