"""The price catalog's types: instance prices per region, on-prem $/GPU-hour, the catalog."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from costgov.api.fields import parse_rate, wire_name
from costgov.api.gpus import normalize_gpu_model, unknown_gpu_model

__all__ = ["CatalogDefaults", "GPUHourPrice", "HostedModelPrice", "InstancePrice", "PriceCatalog"]


def _gpu_model(value: object) -> object:
    if isinstance(value, str):
        model = normalize_gpu_model(value)
        if model is None:
            raise ValueError(unknown_gpu_model(value))
        return model
    return value


GPUModel = Annotated[str, BeforeValidator(_gpu_model)]
Price = Annotated[Decimal, BeforeValidator(parse_rate)]


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


class HostedModelPrice(_Entry):
    """A hosted model's token prices (USD per 1M tokens) from a date on: a negotiated rate,
    a private deployment, or a model the bundled list (genai-prices) lacks. An entry wins
    over the bundled list for its provider and model from its effective date."""

    provider: str = Field(min_length=1, max_length=63, description="openai, anthropic, ...")
    model: str = Field(min_length=1, max_length=253, description="As gateways report it.")
    input_per_m_tokens: Price
    output_per_m_tokens: Price
    cached_input_per_m_tokens: Price | None = None
    cache_write_per_m_tokens: Price | None = None
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
    models: list[HostedModelPrice] = Field(default_factory=list)

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
        hosted = [(m.provider, m.model.lower(), m.effective_date) for m in self.models]
        if len(set(hosted)) != len(hosted):
            raise ValueError("a hosted model is listed twice for one effectiveDate in models")
        return self

    def merged(self, override: PriceCatalog) -> PriceCatalog:
        """This catalog with `override`'s entries replacing or extending ours."""
        instances = {(e.provider, e.region, e.instance_type): e for e in self.instances}
        instances.update({(e.provider, e.region, e.instance_type): e for e in override.instances})
        hourly = {g.gpu_model: g for g in self.gpu_hourly}
        hourly.update({g.gpu_model: g for g in override.gpu_hourly})
        defaults = override.defaults if "defaults" in override.model_fields_set else self.defaults
        hosted = {(m.provider, m.model.lower(), m.effective_date): m for m in self.models}
        hosted.update({(m.provider, m.model.lower(), m.effective_date): m for m in override.models})
        return PriceCatalog(
            version=f"{self.version}+{override.version}",
            defaults=defaults,
            instances=list(instances.values()),
            gpu_hourly=list(hourly.values()),
            models=list(hosted.values()),
        )

    @cached_property
    def _by_type(self) -> dict[str, list[InstancePrice]]:
        index: dict[str, list[InstancePrice]] = {}
        for entry in self.instances:
            index.setdefault(entry.instance_type.lower(), []).append(entry)
        return index

    @cached_property
    def offerings(self) -> dict[tuple[object, ...], object]:
        """Offerings already found for a request (they are immutable; the catalog is too)."""
        return {}

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
