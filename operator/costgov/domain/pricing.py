"""Prices: the catalog's types, GPU model names, capacity types from node labels, offerings.

An *offering* is what one node (or one expected node) costs per hour at one capacity type,
with the assumptions made to find it. Anything that cannot be priced is an `Unpriced` with
the reason, never a zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from costgov.api.fields import parse_rate, wire_name

__all__ = [
    "CAPACITY_LABELS",
    "KNOWN_GPU_MODELS",
    "CapacityType",
    "CatalogDefaults",
    "GPUHourPrice",
    "InstancePrice",
    "Offering",
    "PriceCatalog",
    "Unpriced",
    "capacity_from_labels",
    "gpu_share",
    "normalize_gpu_model",
    "offering_for_node",
    "offering_for_request",
    "provider_from_labels",
    "remainder_share",
]

INSTANCE_TYPE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
ONPREM = "onprem"


class CapacityType(StrEnum):
    """How a node is bought."""

    ON_DEMAND = "on-demand"
    SPOT = "spot"
    RESERVED = "reserved"


# label -> {label value (lower-cased) -> capacity type}; the first label present decides.
CAPACITY_LABELS: dict[str, dict[str, CapacityType]] = {
    "karpenter.sh/capacity-type": {
        "spot": CapacityType.SPOT,
        "on-demand": CapacityType.ON_DEMAND,
        "reserved": CapacityType.RESERVED,
    },
    "eks.amazonaws.com/capacityType": {
        "spot": CapacityType.SPOT,
        "on_demand": CapacityType.ON_DEMAND,
        "capacity_block": CapacityType.RESERVED,
    },
    "cloud.google.com/gke-spot": {"true": CapacityType.SPOT},
    "cloud.google.com/gke-preemptible": {"true": CapacityType.SPOT},
    "kubernetes.azure.com/scalesetpriority": {
        "spot": CapacityType.SPOT,
        "regular": CapacityType.ON_DEMAND,
    },
}

_PROVIDER_PREFIXES = (
    ("eks.amazonaws.com/", "aws"),
    ("karpenter.k8s.aws/", "aws"),
    ("cloud.google.com/", "gcp"),
    ("kubernetes.azure.com/", "azure"),
)


def capacity_from_labels(labels: Mapping[str, str]) -> tuple[CapacityType, str | None]:
    """The capacity type a node's labels declare, and the label that said so.

    Understands Karpenter, EKS managed node groups, GKE spot and preemptible, and AKS spot
    scale sets. A node with none of these labels is on demand.
    """
    for label, values in CAPACITY_LABELS.items():
        if label in labels:
            found = values.get(labels[label].strip().lower())
            if found is not None:
                return found, label
    return CapacityType.ON_DEMAND, None


def provider_from_labels(labels: Mapping[str, str]) -> str | None:
    """aws, gcp or azure when a provider-specific label is present, else None."""
    for key in labels:
        for prefix, provider in _PROVIDER_PREFIXES:
            if key.startswith(prefix):
                return provider
    return None


# ------------------------------------------------------------------------------ GPU models

KNOWN_GPU_MODELS = (
    "B200", "H200", "H100", "A100-80GB", "A100-40GB", "L40S", "L40", "L4", "A10G", "A10",
    "T4", "V100",
)  # fmt: skip


def normalize_gpu_model(text: str | None) -> str | None:
    """Map GPU product names to the catalog's model names.

    "NVIDIA-H100-80GB-HBM3" (GPU feature discovery), "NVIDIA H100 80GB HBM3" (DCGM
    modelName), "h100" and "H100" all give "H100"; an A100 is 80GB only when the name says
    so. None when the text names no GPU costgov knows.
    """
    if not text:
        return None
    name = re.sub(r"[^A-Z0-9]", "", text.upper()).replace("NVIDIA", "").replace("TESLA", "")
    if "A100" in name:
        return "A100-80GB" if "80G" in name else "A100-40GB"
    for model in ("B200", "H200", "H100", "L40S", "A10G", "V100"):
        if model in name:
            return model
    if re.search(r"L40(?!S)", name):
        return "L40"
    if re.search(r"(^|[^0-9])L4($|[^0-9])", name) or name == "L4":
        return "L4"
    if re.search(r"A10($|[^0-9G])", name):
        return "A10"
    if re.search(r"(^|[^0-9])T4($|[^0-9])", name):
        return "T4"
    return None


def _gpu_model(value: object) -> object:
    if isinstance(value, str):
        model = normalize_gpu_model(value)
        if model is None:
            raise ValueError(
                f"unknown GPU model {value!r}; expected one of {', '.join(KNOWN_GPU_MODELS)}"
            )
        return model
    return value


GPUModel = Annotated[str, BeforeValidator(_gpu_model)]
Price = Annotated[Decimal, BeforeValidator(parse_rate)]


# ------------------------------------------------------------------------ the catalog types


class _Entry(BaseModel):
    model_config = ConfigDict(
        alias_generator=wire_name, populate_by_name=True, extra="forbid", frozen=True
    )


class InstancePrice(_Entry):
    """One instance type's hourly prices in one region."""

    provider: str = Field(min_length=1, description="aws, gcp, azure, or another name.")
    region: str = Field(min_length=1)
    instance_type: str = Field(min_length=1)
    gpu_model: GPUModel | None = None
    gpu_count: int = Field(ge=0)
    vcpu: int = Field(ge=1)
    memory_gib: Decimal = Field(gt=0)
    on_demand: Price
    spot: Price | None = None
    reserved: Price | None = None
    source: str = Field(min_length=1, description="Where the figure comes from.")
    effective_date: date

    @model_validator(mode="after")
    def _gpu_model_with_gpus(self) -> InstancePrice:
        if (self.gpu_count > 0) != (self.gpu_model is not None):
            raise ValueError("gpuModel and a positive gpuCount go together")
        return self


class GPUHourPrice(_Entry):
    """On-premises pricing: dollars per GPU-hour for a GPU model (all-in: power, space, ops)."""

    gpu_model: GPUModel
    per_gpu_hour: Price
    source: str = Field(min_length=1)
    effective_date: date


class CatalogDefaults(_Entry):
    """Where workloads run when nothing says otherwise."""

    provider: str = "aws"
    region: str = "us-east-1"


class PriceCatalog(_Entry):
    """The bundled price list, or a user's file that overrides and extends it."""

    version: str = Field(min_length=1)
    currency: str = Field(default="USD", pattern="^USD$")
    defaults: CatalogDefaults = Field(default_factory=CatalogDefaults)
    instances: list[InstancePrice] = Field(default_factory=list)
    gpu_hourly: list[GPUHourPrice] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_keys(self) -> PriceCatalog:
        seen: set[tuple[str, str, str]] = set()
        for entry in self.instances:
            key = (entry.provider, entry.region, entry.instance_type)
            if key in seen:
                raise ValueError(f"instance {'/'.join(key)} is listed twice")
            seen.add(key)
        models = [g.gpu_model for g in self.gpu_hourly]
        if len(set(models)) != len(models):
            raise ValueError("a GPU model is listed twice in gpuHourly")
        return self

    def merged(self, override: PriceCatalog) -> PriceCatalog:
        """This catalog with `override`'s entries replacing or extending ours."""
        instances = {(e.provider, e.region, e.instance_type): e for e in self.instances}
        instances.update({(e.provider, e.region, e.instance_type): e for e in override.instances})
        hourly = {g.gpu_model: g for g in self.gpu_hourly}
        hourly.update({g.gpu_model: g for g in override.gpu_hourly})
        defaults = override.defaults if "defaults" in override.model_fields_set else self.defaults
        return PriceCatalog(
            version=f"{self.version}+{override.version}",
            defaults=defaults,
            instances=list(instances.values()),
            gpu_hourly=list(hourly.values()),
        )

    @cached_property
    def _by_type(self) -> dict[str, list[InstancePrice]]:
        index: dict[str, list[InstancePrice]] = {}
        for entry in self.instances:
            index.setdefault(entry.instance_type.lower(), []).append(entry)
        return index

    @cached_property
    def _by_gpu(self) -> dict[str, GPUHourPrice]:
        return {g.gpu_model: g for g in self.gpu_hourly}

    def instance(
        self, instance_type: str, provider: str | None = None, region: str | None = None
    ) -> tuple[InstancePrice | None, list[str]]:
        """The entry for an instance type, and the assumptions made to choose it."""
        candidates = [
            e
            for e in self._by_type.get(instance_type.lower(), [])
            if provider is None or e.provider == provider
        ]
        if not candidates:
            return None, []
        if region is not None:
            for entry in candidates:
                if entry.region == region:
                    return entry, []
        wanted = region or self.defaults.region
        preferred = [e for e in candidates if e.region == self.defaults.region] or candidates
        chosen = preferred[0]
        notes = []
        if region is not None:
            notes.append(f"no {instance_type} price for region {wanted}; used {chosen.region}'s")
        elif chosen.region != self.defaults.region:
            notes.append(f"region unknown; used {chosen.region}'s price")
        return chosen, notes

    def gpu_hour(self, gpu_model: str) -> GPUHourPrice | None:
        """The on-prem $/GPU-hour for a model, if any."""
        return self._by_gpu.get(gpu_model)

    def instances_with(self, gpu_model: str, provider: str, region: str) -> Iterable[InstancePrice]:
        """Instances in one provider/region that carry this GPU model."""
        return (
            e
            for e in self.instances
            if e.gpu_model == gpu_model and e.provider == provider and e.region == region
        )


# --------------------------------------------------------------------------------- offerings


@dataclass(frozen=True)
class Unpriced:
    """Why something has no price. Shown to users; never treated as $0."""

    reason: str


@dataclass(frozen=True)
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


def _first(labels: Mapping[str, str], keys: Iterable[str]) -> str | None:
    return next((labels[k] for k in keys if labels.get(k)), None)


def offering_for_node(labels: Mapping[str, str], catalog: PriceCatalog) -> Offering | Unpriced:
    """Price a node from its labels: instance type, region, capacity type, GPU product."""
    capacity, _ = capacity_from_labels(labels)
    instance_type = _first(labels, INSTANCE_TYPE_LABELS)
    region = _first(labels, REGION_LABELS)
    provider = provider_from_labels(labels)
    gpu_model = normalize_gpu_model(labels.get(GPU_PRODUCT_LABEL))
    if instance_type:
        entry, notes = catalog.instance(instance_type, provider, region)
        if entry is not None:
            return _from_instance(entry, capacity, notes)
    if gpu_model is not None:
        rate = catalog.gpu_hour(gpu_model)
        if rate is not None:
            why = f"instance type {instance_type} is not in the catalog; " if instance_type else ""
            return _per_gpu(rate, [f"{why}priced per {gpu_model} GPU-hour"])
    if instance_type:
        return Unpriced(
            f"instance type {instance_type!r} is not in the price catalog "
            f"(version {catalog.version}); add it in a pricing file"
        )
    product = labels.get(GPU_PRODUCT_LABEL)
    if product:
        return Unpriced(f"GPU product {product!r} has no per-GPU-hour price and no instance type")
    return Unpriced("the node has no instance-type label and no GPU product label")


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
    if instance_type:
        entry, notes = catalog.instance(instance_type, provider, region)
        if entry is None:
            return Unpriced(
                f"instance type {instance_type!r} is not in the price catalog "
                f"(version {catalog.version}); add it in a pricing file"
            )
        if gpus > entry.gpu_count:
            return Unpriced(f"a pod asks for {gpus} GPUs but {instance_type} has {entry.gpu_count}")
        return _from_instance(entry, capacity, notes)
    if gpu_model is None:
        return Unpriced(
            "neither an instance type nor a GPU model is known; set a nodeSelector "
            "(node.kubernetes.io/instance-type or nvidia.com/gpu.product) or a budget hint"
        )
    where_provider = provider or catalog.defaults.provider
    where_region = region or catalog.defaults.region
    if where_provider == ONPREM:
        rate = catalog.gpu_hour(gpu_model)
        if rate is None:
            return Unpriced(f"no on-prem $/GPU-hour for {gpu_model}; add it in a pricing file")
        spot_note = ["on premises there is no spot capacity: priced at the GPU-hour rate"]
        return _per_gpu(rate, spot_note if capacity == CapacityType.SPOT else [])
    fitting = sorted(
        (
            e
            for e in catalog.instances_with(gpu_model, where_provider, where_region)
            if e.gpu_count >= gpus
        ),
        key=lambda e: (e.gpu_count, e.on_demand),
    )
    if fitting:
        chosen = fitting[0]
        note = (
            f"assumed {chosen.instance_type}: the smallest {gpu_model} instance in "
            f"{where_provider} {where_region} with {gpus} GPU(s)"
        )
        return _from_instance(chosen, capacity, [note])
    rate = catalog.gpu_hour(gpu_model)
    if rate is not None:
        return _per_gpu(
            rate,
            [f"no {gpu_model} instance in {where_provider} {where_region}; priced per GPU-hour"],
        )
    return Unpriced(
        f"no instance with {gpus} {gpu_model} GPU(s) in {where_provider} {where_region} "
        "and no per-GPU-hour rate"
    )


# ------------------------------------------------------------------------------ pod shares


def gpu_share(pod_gpus: int, node_gpus: int) -> Decimal:
    """The fraction of a node's price a pod carries: its GPUs over the node's GPUs.

    A pod holding 4 of 8 GPUs carries half the node price, CPU and memory included: the GPUs
    are why the node exists. (OpenCost's default split would give it about a third.)
    """
    if node_gpus <= 0:
        raise ValueError("a GPU share needs a node with GPUs")
    return Decimal(pod_gpus) / Decimal(node_gpus)


def remainder_share(
    *,
    node_gpus: int,
    allocated_gpus: int,
    cpu: Decimal,
    memory_gib: Decimal,
    node_vcpu: int,
    node_memory_gib: Decimal,
) -> Decimal:
    """The fraction of a GPU node's price a CPU/RAM-only pod carries.

    What GPU pods leave unclaimed (the node's unallocated GPU share) is split by CPU and
    memory: the pod's share is the mean of its CPU and memory fractions of the node, times
    that remainder.
    """
    remainder = (
        Decimal(node_gpus - allocated_gpus) / Decimal(node_gpus) if node_gpus else Decimal(1)
    )
    usage = (cpu / Decimal(node_vcpu) + memory_gib / node_memory_gib) / 2
    return remainder * min(usage, Decimal(1))
