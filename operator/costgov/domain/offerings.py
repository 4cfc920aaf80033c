"""Offerings: what one node (or one expected node) costs per hour at one capacity type.

An offering carries the assumptions made to find it. Anything that cannot be priced is an
`Unpriced` with the reason, never a zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from costgov.api.gpus import normalize_gpu_model
from costgov.domain.capacity import (
    GPU_PRODUCT_LABELS,
    INSTANCE_TYPE_LABELS,
    ONPREM,
    PROVIDER_LABEL,
    REGION_LABELS,
    CapacityType,
    capacity_from_labels,
    first_label,
    provider_from_labels,
)
from costgov.domain.catalogs import GPUHourPrice, InstancePrice, PriceCatalog

__all__ = ["Offering", "Unpriced", "offering_for_node", "offering_for_request"]


@dataclass(frozen=True, slots=True)
class Unpriced:
    """Why something has no price. Shown to users; never treated as $0."""

    reason: str


@dataclass(frozen=True, slots=True)
class Offering:
    """One node's (or one GPU's, on premises) hourly price at one capacity type."""

    provider: str
    region: str
    instance_type: str | None
    """None when priced per GPU-hour (on premises)."""
    gpu_model: str | None
    node_gpus: int
    """GPUs the priced unit holds: the node's, or 1 for a per-GPU-hour price."""
    capacity: CapacityType
    hourly: Decimal
    """The whole unit's price per hour at `capacity`."""
    on_demand_hourly: Decimal
    spot_hourly: Decimal | None
    source: str
    effective_date: date
    assumptions: tuple[str, ...] = field(default=())
    vcpu: int | None = None
    memory_gib: Decimal | None = None

    @property
    def label(self) -> str:
        """How it was priced, for tables: "p5.48xlarge on-demand" or "H100 per GPU-hour"."""
        if self.instance_type is None:
            return f"{self.gpu_model} per GPU-hour ({self.provider})"
        return f"{self.instance_type} {self.capacity.value}"

    def at(self, capacity: CapacityType) -> Offering | Unpriced:
        """The same unit at another capacity type."""
        if capacity == self.capacity:
            return self
        if capacity == CapacityType.SPOT:
            if self.spot_hourly is None:
                return Unpriced(f"no spot price for {self.instance_type or self.gpu_model}")
            hourly = self.spot_hourly
        else:
            hourly = self.on_demand_hourly
        return replace(self, capacity=capacity, hourly=hourly)


def _from_instance(
    entry: InstancePrice, capacity: CapacityType, notes: list[str]
) -> Offering | Unpriced:
    if capacity == CapacityType.SPOT:
        if entry.spot is None:
            return Unpriced(
                f"{entry.instance_type} runs on spot, but the catalog has no spot price for "
                f"it in {entry.region}; add one in a pricing file"
            )
        hourly = entry.spot
    elif capacity == CapacityType.RESERVED:
        if entry.reserved is None:
            notes = [*notes, "reserved capacity priced at the on-demand rate (no reserved rate)"]
        hourly = entry.reserved or entry.on_demand
    else:
        hourly = entry.on_demand
    return Offering(
        provider=entry.provider,
        region=entry.region,
        instance_type=entry.instance_type,
        gpu_model=entry.gpu_model,
        node_gpus=entry.gpu_count,
        capacity=capacity,
        hourly=hourly,
        on_demand_hourly=entry.on_demand,
        spot_hourly=entry.spot,
        source=entry.source,
        effective_date=entry.effective_date,
        assumptions=tuple(notes),
        vcpu=entry.vcpu,
        memory_gib=entry.memory_gib,
    )


def _per_gpu(rate: GPUHourPrice, notes: list[str]) -> Offering:
    return Offering(
        provider=ONPREM,
        region="-",
        instance_type=None,
        gpu_model=rate.gpu_model,
        node_gpus=1,
        capacity=CapacityType.ON_DEMAND,
        hourly=rate.per_gpu_hour,
        on_demand_hourly=rate.per_gpu_hour,
        spot_hourly=None,
        source=rate.source,
        effective_date=rate.effective_date,
        assumptions=tuple(notes),
    )


def _on_premises(labels: Mapping[str, str], provider: str | None, catalog: PriceCatalog) -> bool:
    """Whether a node is priced per GPU-hour: it says it is on premises (costgov.io/provider),
    or it names no cloud and no instance type and the pricing file's default is on premises."""
    if provider is not None:
        return provider == ONPREM
    has_type = first_label(labels, INSTANCE_TYPE_LABELS) is not None
    return not has_type and catalog.defaults.provider == ONPREM


def offering_for_node(labels: Mapping[str, str], catalog: PriceCatalog) -> Offering | Unpriced:
    """Price a node from its labels: instance type, region, capacity type, GPU product."""
    capacity, _ = capacity_from_labels(labels)
    instance_type = first_label(labels, INSTANCE_TYPE_LABELS)
    region = first_label(labels, REGION_LABELS)
    provider = provider_from_labels(labels)
    product = first_label(labels, GPU_PRODUCT_LABELS)
    gpu_model = normalize_gpu_model(product)
    if instance_type and provider != ONPREM:
        entry, notes = catalog.instance(instance_type, provider, region)
        if entry is not None:
            return _from_instance(entry, capacity, notes)
    if _on_premises(labels, provider, catalog):
        if gpu_model is None:
            what = (
                f"GPU product {product!r} is not a model costgov knows"
                if product
                else ("the node has no GPU product label (nvidia.com/gpu.product)")
            )
            return Unpriced(f"on premises, {what}: no $/GPU-hour applies")
        rate = catalog.gpu_hour(gpu_model)
        if rate is None:
            return Unpriced(f"no on-prem $/GPU-hour for {gpu_model}; add it in a pricing file")
        return _per_gpu(rate, [f"on premises: priced per {gpu_model} GPU-hour"])
    if instance_type:
        return Unpriced(
            f"instance type {instance_type!r} is not in the price catalog "
            f"(version {catalog.version}); add it in a pricing file"
        )
    return Unpriced(
        "the node has no instance-type label; if it is on premises, label it "
        f"{PROVIDER_LABEL}={ONPREM} (or set defaults.provider: {ONPREM} in the pricing file) "
        "to price it per GPU-hour"
    )


def _by_instance_type(
    catalog: PriceCatalog,
    instance_type: str,
    gpus: int,
    capacity: CapacityType,
    provider: str | None,
    region: str | None,
) -> Offering | Unpriced:
    entry, notes = catalog.instance(instance_type, provider, region)
    if entry is None:
        return Unpriced(
            f"instance type {instance_type!r} is not in the price catalog "
            f"(version {catalog.version}); add it in a pricing file"
        )
    if gpus > entry.gpu_count:
        return Unpriced(f"a pod asks for {gpus} GPUs but {instance_type} has {entry.gpu_count}")
    return _from_instance(entry, capacity, notes)


def _by_gpu_model(
    catalog: PriceCatalog,
    gpu_model: str,
    gpus: int,
    capacity: CapacityType,
    provider: str,
    region: str,
) -> Offering | Unpriced:
    if provider == ONPREM:
        rate = catalog.gpu_hour(gpu_model)
        if rate is None:
            return Unpriced(f"no on-prem $/GPU-hour for {gpu_model}; add it in a pricing file")
        spot_note = ["on premises there is no spot capacity: priced at the GPU-hour rate"]
        return _per_gpu(rate, spot_note if capacity == CapacityType.SPOT else [])
    fitting = sorted(
        (e for e in catalog.instances_with(gpu_model, provider, region) if e.gpu_count >= gpus),
        key=lambda e: (e.gpu_count, e.on_demand),
    )
    if fitting:
        chosen = fitting[0]
        note = (
            f"assumed {chosen.instance_type}: the smallest {gpu_model} instance in "
            f"{provider} {region} with {gpus} GPU(s)"
        )
        return _from_instance(chosen, capacity, [note])
    elsewhere = sorted(
        {f"{e.provider} {e.region}" for e in catalog.instances if e.gpu_model == gpu_model}
    )
    listed = f"; the catalog lists {gpu_model} in {', '.join(elsewhere[:6])}" if elsewhere else ""
    return Unpriced(
        f"no instance with {gpus} {gpu_model} GPU(s) in {provider} {region} in the price "
        f"catalog (version {catalog.version}){listed}. Name the region or instance type, or "
        "add an instance in a pricing file (on-prem GPU-hour rates apply only on premises)"
    )


def offering_for_request(
    catalog: PriceCatalog,
    *,
    gpus: int,
    gpu_model: str | None = None,
    instance_type: str | None = None,
    capacity: CapacityType = CapacityType.ON_DEMAND,
    provider: str | None = None,
    region: str | None = None,
) -> Offering | Unpriced:
    """Price the node a pod would land on, from what its spec says (offline estimates).

    An instance type wins. Else, with a GPU model: on premises the per-GPU-hour rate, in a
    cloud the smallest instance of that model in the provider/region that fits the pod's GPUs
    (cheapest on a tie), as a cluster autoscaler would pick.
    """
    key = (gpus, gpu_model, instance_type, capacity, provider, region)
    cache = catalog.offerings
    found = cache.get(key)
    if isinstance(found, Offering | Unpriced):
        return found
    if len(cache) > 4096:  # bounded: hostile input cannot grow it without limit
        cache.clear()
    cache[key] = found = _offering(
        catalog, gpus, gpu_model, instance_type, capacity, provider, region
    )
    return found


def _offering(
    catalog: PriceCatalog,
    gpus: int,
    gpu_model: str | None,
    instance_type: str | None,
    capacity: CapacityType,
    provider: str | None,
    region: str | None,
) -> Offering | Unpriced:
    if instance_type:
        return _by_instance_type(catalog, instance_type, gpus, capacity, provider, region)
    if gpu_model is None:
        return Unpriced(
            "neither an instance type nor a GPU model is known; set a nodeSelector "
            "(node.kubernetes.io/instance-type or nvidia.com/gpu.product) or a budget hint"
        )
    where = (provider or catalog.defaults.provider, region or catalog.defaults.region)
    return _by_gpu_model(catalog, gpu_model, gpus, capacity, *where)
