"""What one pod's node costs an hour, from the pod's pricing hints (`domain.hints`): an
instance type, else the smallest instance of a GPU model that holds the pod; when a node
affinity allows several, the dearest of them (what the pod may cost, never less)."""

from __future__ import annotations

from decimal import Decimal

from costgov.api.gpus import unknown_gpu_model
from costgov.domain.capacity import CapacityType
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.offerings import Offering, Unpriced, offering_for_request
from costgov.domain.shares import gpu_share
from costgov.domain.workloads import NodeHints

__all__ = ["DRA_CLAIMS", "claimed_devices", "price_pod"]

DRA_CLAIMS = "DRA ResourceClaims"


def _offering_for(catalog: PriceCatalog, gpus: int, hints: NodeHints) -> Offering | Unpriced:
    if hints.gpu_product and hints.gpu_model is None:
        field = hints.gpu_product_field or "GPU product"
        return Unpriced(unknown_gpu_model(hints.gpu_product, field))
    return offering_for_request(
        catalog,
        gpus=gpus,
        gpu_model=hints.gpu_model,
        instance_type=hints.instance_type,
        capacity=hints.capacity or CapacityType.ON_DEMAND,
        provider=hints.provider,
        region=hints.region,
    )


def _cannot_hold(catalog: PriceCatalog, gpus: int, hints: NodeHints) -> bool:
    """Whether the instance type these hints name has too few GPUs for the pod (the
    scheduler never puts it there)."""
    if hints.instance_type is None:
        return False
    entry, _ = catalog.instance(hints.instance_type, hints.provider, hints.region)
    return entry is not None and entry.gpu_count < gpus


def _dearest(
    catalog: PriceCatalog, gpus: int, hints: NodeHints
) -> tuple[Offering | Unpriced, list[str]]:
    """The dearest of the alternatives a node affinity allows, with a note per label; any
    alternative that holds the pod and cannot be priced leaves the pod unpriced."""
    best: tuple[Decimal, NodeHints, Offering] | None = None
    first: Unpriced | None = None
    for alt in hints.alternatives:
        found = _offering_for(catalog, gpus, alt)
        if isinstance(found, Unpriced):
            if not _cannot_hold(catalog, gpus, alt):
                picked = ", ".join(f"{k}={v}" for k, v in alt.picks)
                return Unpriced(f"node affinity allows {picked}: {found.reason}"), []
            first = first or found
            continue
        cost = found.hourly * gpu_share(gpus, found.node_gpus)
        if best is None or cost > best[0]:
            best = (cost, alt, found)
    if best is None:
        return first or Unpriced("node affinity allows no node that holds the pod"), []
    picks = dict(best[1].picks)
    notes = [
        f"node affinity allows {key} in {list(values)}; priced as the dearest, {picks[key]}"
        for key, values in hints.choices
    ]
    return best[2], notes


def price_pod(
    catalog: PriceCatalog, gpus: int, hints: NodeHints
) -> tuple[Offering | Unpriced, tuple[str, ...]]:
    """The offering a pod with `gpus` GPUs is priced on, and notes on how it was chosen:
    when its node affinity allows several, the dearest."""
    notes = list(hints.notes)
    if hints.capacity is None:
        notes.append("capacity type not specified; priced on demand")
    if hints.unpriced is not None:
        return Unpriced(hints.unpriced), tuple(notes)
    if hints.alternatives:
        offering, chosen = _dearest(catalog, gpus, hints)
        notes.extend(chosen)
    else:
        offering = _offering_for(catalog, gpus, hints)
    if isinstance(offering, Offering):
        notes.extend(offering.assumptions)
    return offering, tuple(notes)


def claimed_devices(field: str) -> str:
    """Why a pod that claims devices through DRA is unpriced (`field`: where it claims)."""
    return (
        f"{field}: the pods get devices through {DRA_CLAIMS} (resource.k8s.io); costgov "
        "cannot tell which devices (or how many GPUs) a claim allocates, so cannot price them"
    )
