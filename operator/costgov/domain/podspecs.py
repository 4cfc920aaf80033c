"""Pod templates as costgov reads them: GPUs (whole, AMD, MIG slices), pricing hints from
the nodeSelector and required node affinity, tolerations; and the typed field readers every
kind uses. Pure: `ManifestError` names the field path of anything malformed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from costgov.api.gpus import GPU_RESOURCES, MIG_RESOURCE_PREFIX, SHARED_GPU_PREFIXES, mig_share
from costgov.domain.hints import REQUIRED_AFFINITY, node_hints
from costgov.domain.quantities import QuantityError, parse_whole_count
from costgov.domain.workloads import (
    ManifestError,
    NodeRequirement,
    Placement,
    PodGroup,
    Toleration,
)

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "MAX_CONTAINERS",
    "MAX_NODE_REQUIREMENTS",
    "listing",
    "mapping",
    "pod_group",
    "str_map",
    "template_spec",
    "whole",
]

_REQUIRED = REQUIRED_AFFINITY


def mapping(value: Any, path: str) -> Mapping[str, Any]:
    if type(value) is dict:  # the common case, without an ABC check
        return value
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ManifestError(path, f"expected a mapping, got {type(value).__name__}")
    return value


def listing(value: Any, path: str) -> Sequence[Any]:
    if type(value) is list:
        return value
    if value is None:
        return []
    if not isinstance(value, list):
        raise ManifestError(path, f"expected a list, got {type(value).__name__}")
    return value


INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
MAX_CONTAINERS = 1000
"""Containers and init containers costgov reads in one pod. Kubernetes sets no bound (a
3 MiB pod can hold 25,000); no real pod comes near, and reading that many would stall
every other admission review."""
MAX_NODE_REQUIREMENTS = 64
"""Required node-affinity match expressions (over all terms) and tolerations costgov reads
in one pod: each is checked against every GPU node, so the work per review stays bounded
whatever the cluster size."""


def _bounded(count: int, limit: int, path: str, what: str) -> None:
    if count > limit:
        raise ManifestError(
            path,
            f"{count} {what}: costgov judges pods with at most {limit} (work per admission "
            "review is bounded); no real workload needs more",
        )


def whole(value: Any, path: str, default: int | None, maximum: int = INT32_MAX) -> int | None:
    """A non-negative integer field, bounded as Kubernetes bounds it (int32 unless said)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        shown = repr(value) if not isinstance(value, int) or value < 10**20 else "a huge number"
        raise ManifestError(path, f"expected an integer from 0 to {maximum}, got {shown}")
    return value


def _resource_count(values: Mapping[str, Any], name: str, where: str) -> int:
    try:
        return parse_whole_count(values[name])
    except QuantityError as exc:
        raise ManifestError(f"{where}.{name}", str(exc)) from exc


def _container_gpus(container: Mapping[str, Any], path: str) -> dict[str, int]:
    """The GPU resources one container holds: {resource name: count}."""
    resources = mapping(container.get("resources"), f"{path}.resources")
    counts: dict[str, dict[str, int]] = {}
    for section in ("limits", "requests"):
        where = f"{path}.resources.{section}"
        values = mapping(resources.get(section), where)
        for name in values:
            key = str(name)
            if key in GPU_RESOURCES or key.startswith((MIG_RESOURCE_PREFIX, *SHARED_GPU_PREFIXES)):
                counts.setdefault(key, {})[section] = _resource_count(values, key, where)
    held: dict[str, int] = {}
    for name, found in counts.items():
        if len(found) == 2 and found["limits"] != found["requests"]:
            raise ManifestError(
                f"{path}.resources",
                f"{name} requests ({found['requests']}) must equal limits ({found['limits']}); "
                "Kubernetes does not overcommit extended resources",
            )
        if name.startswith(MIG_RESOURCE_PREFIX) and mig_share(name) is None:
            raise ManifestError(
                f"{path}.resources.limits.{name}",
                "not a MIG profile costgov knows (expected nvidia.com/mig-<1-7>g.<memory>gb)",
            )
        held[name] = found.get("limits", found.get("requests", 0))
    return held


def _add(total: dict[str, int], more: Mapping[str, int]) -> dict[str, int]:
    return {k: total.get(k, 0) + more.get(k, 0) for k in total.keys() | more.keys()}


def _peak(total: dict[str, int], more: Mapping[str, int]) -> dict[str, int]:
    return {k: max(total.get(k, 0), more.get(k, 0)) for k in total.keys() | more.keys()}


def _pod_gpus(pod_spec: Mapping[str, Any], path: str) -> dict[str, int]:
    """The GPU resources a pod holds while it runs: its effective request, resource by
    resource, as the scheduler computes it (KEP-753 sidecar containers; Kubernetes docs,
    "Sidecar containers: resource sharing within containers"; component-helpers
    `AggregateContainerRequests`):

        max( sum(containers) + sum(sidecars),
             max over regular init containers i of (init_i + sidecars started before i) )

    Sidecars are init containers with restartPolicy: Always: they start in order and run
    alongside everything after them. Regular init containers run one at a time."""
    containers = listing(pod_spec.get("containers"), f"{path}.containers")
    if not containers:
        raise ManifestError(f"{path}.containers", "a pod needs at least one container")
    inits = listing(pod_spec.get("initContainers"), f"{path}.initContainers")
    _bounded(len(containers) + len(inits), MAX_CONTAINERS, path, "containers and init containers")
    running: dict[str, int] = {}
    for i, c in enumerate(containers):
        where = f"{path}.containers[{i}]"
        running = _add(running, _container_gpus(mapping(c, where), where))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for i, c in enumerate(inits):
        where = f"{path}.initContainers[{i}]"
        init = mapping(c, where)
        held = _container_gpus(init, where)
        if init.get("restartPolicy") == "Always":
            sidecars = _add(sidecars, held)
        else:
            init_peak = _peak(init_peak, _add(held, sidecars))
    return _peak(_add(running, sidecars), init_peak)


def _gpu_figures(held: Mapping[str, int]) -> tuple[int, Decimal, tuple[str, ...]]:
    """(whole GPUs, MIG share, notes) from the GPU resources a pod holds."""
    whole, slices, notes = 0, Decimal(0), []
    for name, count in sorted(held.items()):
        share = mig_share(name)
        if share is not None:
            slices += share * count
            continue
        whole += count
        if name.startswith(SHARED_GPU_PREFIXES) and count:
            notes.append(
                f"{name}: {count} shared GPU replica(s) (time-slicing/MPS), each priced as a "
                "whole GPU, the most it may use"
            )
    return whole, slices, tuple(notes)


def _claims(pod_spec: Mapping[str, Any], path: str) -> str:
    """Where a pod claims devices through DRA (resource.k8s.io ResourceClaims), or ""."""
    if listing(pod_spec.get("resourceClaims"), f"{path}.resourceClaims"):
        return f"{path}.resourceClaims"
    for section in ("containers", "initContainers"):
        for i, c in enumerate(listing(pod_spec.get(section), f"{path}.{section}")):
            where = f"{path}.{section}[{i}].resources"
            resources = mapping(mapping(c, f"{path}.{section}[{i}]").get("resources"), where)
            if listing(resources.get("claims"), f"{where}.claims"):
                return f"{where}.claims"
    return ""


def _requirement(expr: Any, path: str) -> NodeRequirement:
    expr = mapping(expr, path)
    values = tuple(str(v) for v in listing(expr.get("values"), f"{path}.values"))
    return NodeRequirement(str(expr.get("key", "")), str(expr.get("operator", "")), values)


def _terms(pod_spec: Mapping[str, Any], path: str) -> tuple[tuple[NodeRequirement, ...], ...]:
    """Required node affinity, as OR-ed terms of AND-ed requirements."""
    affinity = mapping(pod_spec.get("affinity"), f"{path}.affinity")
    node = mapping(affinity.get("nodeAffinity"), f"{path}.affinity.nodeAffinity")
    required_path = f"{path}.{_REQUIRED}"
    required = mapping(node.get("requiredDuringSchedulingIgnoredDuringExecution"), required_path)
    terms, count = [], 0
    listed = listing(required.get("nodeSelectorTerms"), f"{required_path}.nodeSelectorTerms")
    _bounded(len(listed), MAX_NODE_REQUIREMENTS, required_path, "node selector terms")
    for t, raw in enumerate(listed):
        where = f"{required_path}.nodeSelectorTerms[{t}]"
        exprs = listing(mapping(raw, where).get("matchExpressions"), f"{where}.matchExpressions")
        count += len(exprs)
        _bounded(count, MAX_NODE_REQUIREMENTS, required_path, "node affinity match expressions")
        terms.append(
            tuple(_requirement(e, f"{where}.matchExpressions[{i}]") for i, e in enumerate(exprs))
        )
    return tuple(terms)


def _tolerations(pod_spec: Mapping[str, Any], path: str) -> tuple[Toleration, ...]:
    out = []
    listed = listing(pod_spec.get("tolerations"), f"{path}.tolerations")
    _bounded(len(listed), MAX_NODE_REQUIREMENTS, f"{path}.tolerations", "tolerations")
    for i, raw in enumerate(listed):
        t = mapping(raw, f"{path}.tolerations[{i}]")
        out.append(
            Toleration(
                key=str(t.get("key") or ""),
                operator=str(t.get("operator") or "Equal"),
                value=str(t.get("value") or ""),
                effect=str(t.get("effect") or ""),
            )
        )
    return tuple(out)


def str_map(value: Any, path: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in mapping(value, path).items()}


def pod_group(name: str, pods: int, pod_spec: Mapping[str, Any], path: str) -> PodGroup:
    """`pods` pods of one template (its spec at `path`): GPUs, pricing hints, placement."""
    selector = str_map(pod_spec.get("nodeSelector"), f"{path}.nodeSelector")
    terms = _terms(pod_spec, path)
    whole_gpus, slices, notes = _gpu_figures(_pod_gpus(pod_spec, path))
    hints = node_hints(selector, terms, path)
    return PodGroup(
        name=name,
        pods=pods,
        gpus_per_pod=whole_gpus,
        hints=replace(hints, notes=hints.notes + notes) if notes else hints,
        placement=Placement(selector, terms, _tolerations(pod_spec, path)),
        mig_share=slices,
        claims=_claims(pod_spec, path),
    )


def template_spec(holder: Mapping[str, Any], path: str) -> tuple[Mapping[str, Any], str]:
    """The pod spec of `holder.template` and its path."""
    template = mapping(holder.get("template"), f"{path}.template")
    return mapping(template.get("spec"), f"{path}.template.spec"), f"{path}.template.spec"
