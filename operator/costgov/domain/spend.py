"""Spend from usage: GPU-hours on priced nodes become dollars, pod by pod.

    pod cost = GPU-seconds held on the node x node $/h / (3,600 x GPUs on the node)
    idle $   = pod cost x (100 - mean GPU utilisation %) / 100
    $ per N units (tokens, requests) = cost x N / units, both over the same span

Pure: the usage and the prices come in, dollars (or the reason there are none) go out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain

from costgov.api.common import MAX_UNPRICED
from costgov.domain.offerings import Offering, Unpriced

__all__ = [
    "MAX_UNPRICED",
    "PodCost",
    "PodUsage",
    "Totals",
    "combine_costs",
    "idle_cost",
    "price_usage",
    "totals",
    "unit_cost",
    "unpriced_caveat",
    "unpriced_notes",
]

PodKey = tuple[str, str]


@dataclass(frozen=True)
class PodUsage:
    """GPU-seconds a pod held on one node (for a current rate: GPUs held x 3600)."""

    namespace: str
    pod: str
    node: str
    gpu_seconds: Decimal

    @property
    def gpu_hours(self) -> Decimal:
        return self.gpu_seconds / 3600

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
            # one division, last: exact for whole cents whatever the sampling step
            cost = line.gpu_seconds * offering.hourly / (3600 * offering.node_gpus)
            out.append(PodCost(line, cost))
    return out


def combine_costs(lines: Iterable[PodCost]) -> tuple[PodCost, ...]:
    """Lines of consecutive stretches of time as one line per pod and node: GPU-seconds and
    dollars added. A pod's priced and unpriced time on a node stay apart (the dollars
    count what was priced; the unpriced line says why the rest is not), and an unpriced
    line keeps the latest reason."""
    merged: dict[tuple[str, str, str, bool], PodCost] = {}
    for line in lines:
        u = line.usage
        key = (u.namespace, u.pod, u.node, line.cost is not None)
        old = merged.get(key)
        if old is None:
            merged[key] = line
            continue
        usage = PodUsage(u.namespace, u.pod, u.node, old.usage.gpu_seconds + u.gpu_seconds)
        cost = None if line.cost is None or old.cost is None else old.cost + line.cost
        merged[key] = PodCost(usage, cost, line.unpriced)
    return tuple(merged.values())


def idle_cost(cost: Decimal, utilization_percent: float) -> Decimal:
    """The part of a cost paid for GPUs doing nothing."""
    used = min(max(Decimal(str(utilization_percent)), Decimal(0)), Decimal(100))
    return cost * (100 - used) / 100


def unit_cost(cost: Totals, units: float, per: int) -> Decimal | None:
    """Dollars per `per` units (1,000,000 tokens, 1,000 requests), or None when nothing was
    counted, no GPU time was measured over the span, or a pod could not be priced (a lower
    bound is no unit cost). `cost` and
    `units` must cover the same span: a cost over a longer span than the units were counted
    in overstates every unit."""
    if units <= 0 or not cost.complete or cost.cost <= 0:
        return None  # tokens with no GPU time measured yet: no figure rather than $0
    return cost.cost * per / Decimal(repr(units))


def unpriced_notes(*groups: Iterable[str]) -> tuple[str, ...]:
    """Notes on unpriced pods ("namespace/pod: why"), one per pod, the first seen first,
    at most MAX_UNPRICED: what a total left out, carried from cycle to cycle."""
    seen: set[str] = set()
    out: list[str] = []
    for note in chain(*groups):
        pod = note.split(":", 1)[0]
        if pod not in seen:
            seen.add(pod)
            out.append(note)
    return tuple(out[:MAX_UNPRICED])


def unpriced_caveat(pods: int, *, at_least: bool = False) -> str:
    """What a total of dollars leaves out: "2 pods unpriced, not included"."""
    count = f"at least {pods}" if at_least else str(pods)
    return f"{count} pod{'' if pods == 1 else 's'} unpriced, not included"


@dataclass(frozen=True)
class Totals:
    """A sum of pod costs, with the pods that could not be priced named (one note each)."""

    cost: Decimal
    gpu_hours: Decimal
    unpriced: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.unpriced


def totals(costs: Iterable[PodCost]) -> Totals:
    cost, seconds, unpriced = Decimal(0), Decimal(0), []
    for line in costs:
        seconds += line.usage.gpu_seconds
        if line.cost is None:
            unpriced.append(f"{line.usage.namespace}/{line.usage.pod}: {line.unpriced}")
        else:
            cost += line.cost
    return Totals(cost, seconds / 3600, unpriced_notes(unpriced))
