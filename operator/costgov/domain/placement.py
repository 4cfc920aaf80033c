"""Which nodes a pod could land on, and the dearest of them: pricing GPU work that says
nothing of its node.

A pod is eligible for a node when the node has enough allocatable GPUs, its labels satisfy
the pod's nodeSelector and one of its required node-affinity terms, and the pod tolerates
every NoSchedule and NoExecute taint. Among eligible nodes, the pod is priced at the most
expensive (its GPU share of the node's price): what it may cost, never less.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from costgov.domain.catalogs import PriceCatalog
from costgov.domain.offerings import Offering, Unpriced, offering_for_node
from costgov.domain.workloads import NodeRequirement, Placement, Toleration

__all__ = ["NodeInfo", "Taint", "dearest_eligible", "eligible"]


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What scheduling and pricing need of a node."""

    name: str
    labels: Mapping[str, str]
    gpus: int
    """Allocatable nvidia.com/gpu."""
    taints: tuple[Taint, ...] = field(default=())
    offering: Offering | Unpriced | None = None
    """The node's price when already known (the operator prices each node once)."""


def _requirement_holds(req: NodeRequirement, labels: Mapping[str, str]) -> bool:
    value = labels.get(req.key)
    if req.operator == "In":
        return value is not None and value in req.values
    if req.operator == "NotIn":
        return value is None or value not in req.values
    if req.operator == "Exists":
        return value is not None
    if req.operator == "DoesNotExist":
        return value is None
    if req.operator in ("Gt", "Lt") and value is not None and len(req.values) == 1:
        try:
            have, bound = int(value), int(req.values[0])
        except ValueError:
            return False
        return have > bound if req.operator == "Gt" else have < bound
    return False


def _tolerates(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    for t in tolerations:
        if t.effect and t.effect != taint.effect:
            continue
        if t.operator == "Exists" and (not t.key or t.key == taint.key):
            return True
        if t.operator == "Equal" and t.key == taint.key and t.value == taint.value:
            return True
    return False


_TRANSIENT_TAINTS = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/uninitialized")
"""Taints the node lifecycle puts on and takes off (not-ready, unreachable, pressure,
uninitialized): states of a node, not who may run there."""


def eligible(node: NodeInfo, placement: Placement, gpus: int) -> bool:
    """Whether the scheduler could put a pod needing `gpus` GPUs on this node (once it is
    ready: transient condition taints are not placement policy)."""
    if node.gpus < gpus:
        return False
    if any(node.labels.get(k) != v for k, v in placement.node_selector.items()):
        return False
    if placement.terms and not any(
        all(_requirement_holds(r, node.labels) for r in term) for term in placement.terms
    ):
        return False
    return all(
        _tolerates(placement.tolerations, taint)
        for taint in node.taints
        if taint.effect in ("NoSchedule", "NoExecute")
        and not taint.key.startswith(_TRANSIENT_TAINTS)
    )


def dearest_eligible(
    nodes: Iterable[NodeInfo], placement: Placement, gpus: int, catalog: PriceCatalog
) -> tuple[Offering, str] | Unpriced:
    """The most expensive offering among the nodes the pod could land on, with a note."""
    candidates = [n for n in nodes if eligible(n, placement, gpus)]
    if not candidates:
        return Unpriced(
            f"no GPU node in the cluster can take a pod with {gpus} GPU(s) and this "
            "nodeSelector/affinity/tolerations; set a nodeSelector "
            "(node.kubernetes.io/instance-type or nvidia.com/gpu.product) or a budget hint"
        )
    priced: list[tuple[Decimal, str, Offering]] = []
    reasons = []
    for node in candidates:
        offering = node.offering or offering_for_node(node.labels, catalog)
        if isinstance(offering, Unpriced):
            reasons.append(f"{node.name}: {offering.reason}")
            continue
        priced.append((offering.hourly * gpus / offering.node_gpus, node.name, offering))
    if reasons:  # an unpriced candidate might be the dearest: never guess low
        return Unpriced(
            f"it may land on a node costgov cannot price ({'; '.join(reasons[:3])}); "
            "pin the node with a nodeSelector or add a pricing entry"
        )
    _, name, offering = max(priced, key=lambda p: (p[0], p[1]))
    note = (
        f"no pricing hints: priced as the dearest of {len(candidates)} node(s) it could land "
        f"on ({name}, {offering.label})"
    )
    return offering, note
