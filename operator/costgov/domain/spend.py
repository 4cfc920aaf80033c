"""Spend from usage: GPU-hours on priced nodes become dollars, pod by pod.

    pod cost = GPU-hours held on the node x node $/h / GPUs on the node
    idle $   = pod cost x (100 - mean GPU utilisation %) / 100

Pure: the usage and the prices come in, dollars (or the reason there are none) go out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from costgov.domain.pricing import Offering, Unpriced

__all__ = ["PodCost", "PodUsage", "Totals", "idle_cost", "price_usage", "totals"]

PodKey = tuple[str, str]


@dataclass(frozen=True)
class PodUsage:
    """GPU-hours (or, for a current rate, GPUs) a pod held on one node."""

    namespace: str
    pod: str
    node: str
    gpu_hours: Decimal

    @property
    def key(self) -> PodKey:
        return (self.namespace, self.pod)


@dataclass(frozen=True)
class PodCost:
    usage: PodUsage
    cost: Decimal | None
    unpriced: str | None = None


def price_usage(
    usage: Iterable[PodUsage], nodes: Mapping[str, Offering | Unpriced]
) -> list[PodCost]:
    """Dollars for each usage line; a node without a price gives an unpriced line, not $0."""
    out = []
    for line in usage:
        offering = nodes.get(line.node)
        if offering is None:
            out.append(PodCost(line, None, f"node {line.node} has no labels in Prometheus"))
        elif isinstance(offering, Unpriced):
            out.append(PodCost(line, None, f"node {line.node}: {offering.reason}"))
        else:
            out.append(PodCost(line, line.gpu_hours * offering.hourly / offering.node_gpus))
    return out


def idle_cost(cost: Decimal, utilization_percent: float) -> Decimal:
    """The part of a cost paid for GPUs doing nothing."""
    used = min(max(Decimal(str(utilization_percent)), Decimal(0)), Decimal(100))
    return cost * (100 - used) / 100


@dataclass(frozen=True)
class Totals:
    """A sum of pod costs, with the pods that could not be priced named."""

    cost: Decimal
    gpu_hours: Decimal
    unpriced: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.unpriced


def totals(costs: Iterable[PodCost]) -> Totals:
    cost, hours, unpriced = Decimal(0), Decimal(0), []
    for line in costs:
        hours += line.usage.gpu_hours
        if line.cost is None:
            unpriced.append(f"{line.usage.namespace}/{line.usage.pod}: {line.unpriced}")
        else:
            cost += line.cost
    return Totals(cost, hours, tuple(unpriced))
