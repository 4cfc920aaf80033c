"""`costgov prices`: the price catalog as a table or JSON, filtered by provider, region and
GPU model, so a reviewer sees what a figure rests on (and its source and date)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from costgov.api.gpus import normalize_gpu_model, unknown_gpu_model
from costgov.domain.catalogs import GPUHourPrice, InstancePrice, PriceCatalog

__all__ = ["PriceFilter", "render_prices", "select"]


@dataclass(frozen=True, slots=True)
class PriceFilter:
    """Which entries to list; None lists all."""

    provider: str | None = None
    region: str | None = None
    gpu: str | None = None

    @property
    def gpu_model(self) -> str | None:
        """The filter's GPU model, checked; ValueError (naming the closest) when unknown."""
        if self.gpu is None:
            return None
        model = normalize_gpu_model(self.gpu)
        if model is None:
            raise ValueError(unknown_gpu_model(self.gpu, "--gpu"))
        return model


def select(
    catalog: PriceCatalog, wanted: PriceFilter
) -> tuple[list[InstancePrice], list[GPUHourPrice]]:
    """Instances, then on-prem GPU-hour rates, that match the filter (sorted)."""
    model = wanted.gpu_model
    provider = wanted.provider.strip().lower() if wanted.provider else None  # AWS = aws
    region = wanted.region.strip().lower() if wanted.region else None
    instances = [
        e
        for e in catalog.instances
        if (provider is None or e.provider == provider)
        and (region is None or e.region.lower() == region)
        and (model is None or e.gpu_model == model)
    ]
    instances.sort(
        key=lambda e: (e.provider, e.region, e.gpu_model or "", e.gpu_count, e.on_demand)
    )
    onprem = provider in (None, "onprem") and region is None
    hourly = [g for g in catalog.gpu_hourly if onprem and model in (None, g.gpu_model)]
    return instances, hourly


def _per_gpu(entry: InstancePrice) -> str | None:
    if not entry.gpu_count:
        return None
    return _num((entry.on_demand / entry.gpu_count).quantize(Decimal("0.0001")))


def _num(value: Decimal | None) -> str:
    return "-" if value is None else format(value.normalize(), "f")


def _instance(e: InstancePrice) -> dict[str, Any]:
    return {
        "provider": e.provider,
        "region": e.region,
        "instanceType": e.instance_type,
        "gpuModel": e.gpu_model,
        "gpuCount": e.gpu_count,
        "vcpu": e.vcpu,
        "memoryGiB": _num(e.memory_gib),
        "onDemand": _num(e.on_demand),
        "spot": None if e.spot is None else _num(e.spot),
        "onDemandPerGPU": _per_gpu(e),
        "source": e.source,
        "effectiveDate": e.effective_date.isoformat(),
    }


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*headers).rstrip(), *(fmt.format(*r).rstrip() for r in rows)]


def render_prices(catalog: PriceCatalog, wanted: PriceFilter, output: str) -> str:
    """The matching entries as a table (with sources below) or as JSON."""
    instances, hourly = select(catalog, wanted)
    if output == "json":
        doc = {
            "catalogVersion": catalog.version,
            "currency": catalog.currency,
            "instances": [_instance(e) for e in instances],
            "onPremGPUHourly": [
                {
                    "gpuModel": g.gpu_model,
                    "perGPUHour": _num(g.per_gpu_hour),
                    "source": g.source,
                    "effectiveDate": g.effective_date.isoformat(),
                }
                for g in hourly
            ],
        }
        return json.dumps(doc, indent=2) + "\n"
    out = [f"Price catalog {catalog.version}. USD per hour, Linux.", ""]
    if instances:
        rows = [
            [r["provider"], r["region"], r["instanceType"], r["gpuModel"] or "-",
             str(r["gpuCount"]), r["onDemand"], r["spot"] or "-", r["onDemandPerGPU"] or "-",
             r["effectiveDate"]]
            for r in map(_instance, instances)
        ]  # fmt: skip
        headers = ["PROVIDER", "REGION", "INSTANCE", "GPU", "GPUS", "ON-DEMAND", "SPOT"]
        out += _table([*headers, "PER GPU", "DATE"], rows)
    if hourly:
        out += ["", "On premises (per GPU-hour, all-in):"]
        out += _table(
            ["GPU", "PER GPU-HOUR", "DATE"],
            [[g.gpu_model, _num(g.per_gpu_hour), g.effective_date.isoformat()] for g in hourly],
        )
    if not instances and not hourly:
        out.append("No catalog entry matches.")
    sources = sorted({e.source for e in instances} | {g.source for g in hourly})
    out += ["", "Sources:", *(f"  - {s}" for s in sources)]
    return "\n".join(out) + "\n"
