"""Pieces every costgov resource shares: metadata, violations in status, the resource shell."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from costgov.api.fields import Condition, Spec

__all__ = [
    "API_VERSION",
    "GROUP",
    "MAX_UNPRICED",
    "MAX_VIOLATIONS",
    "VERSION",
    "Accounting",
    "JobAccount",
    "ObjectMeta",
    "ObjectRef",
    "ResourceInfo",
    "StatusBase",
    "ViolationRecord",
]

GROUP = "costgov.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MAX_VIOLATIONS = 50
"""Status keeps at most this many violations, newest first, so objects stay small."""
MAX_UNPRICED = 100
"""Accounting remembers at most this many unpriced pods; beyond, counts are "at least"."""


class ObjectMeta(BaseModel):
    """The part of metadata costgov reads; everything else is kept as it is."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None


class ObjectRef(Spec):
    """Names the object a violation is about."""

    api_version: str = Field(default="", description="apiVersion of the object.")
    kind: str = Field(description="Kind of the object, e.g. Job.")
    namespace: str = Field(default="", description="Namespace; empty for cluster objects.")
    name: str = Field(description="Name of the object.")


class ViolationRecord(Spec):
    """A rule broken by an object, as kept in status (bounded list, newest first)."""

    object: ObjectRef = Field(description="The object that breaks the rule.")
    rule: str = Field(description="The rule, e.g. limits.maxGPUsPerWorkload or approval.required.")
    severity: Literal["error", "warning"] = Field(
        description="error blocks in enforce mode; warning never blocks."
    )
    message: str = Field(max_length=4096, description="What is wrong and what to do next.")
    since: datetime = Field(description="When the violation was first seen.")


class StatusBase(Spec):
    """Fields every costgov status has."""

    model_config = ConfigDict(extra="ignore")

    observed_generation: int = Field(
        default=0, ge=0, description="The metadata.generation the status was computed from."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Ready, MetricsAvailable and resource-specific conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    violations: list[ViolationRecord] = Field(
        default_factory=list,
        max_length=MAX_VIOLATIONS,
        description=f"Rules broken, newest first, at most {MAX_VIOLATIONS}.",
    )


class JobAccount(Spec):
    """Exact running totals for one Job (not rounded, so cycles add up without drift)."""

    name: str = Field(description="Job name.")
    cost: str = Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", description="USD, exact.")
    gpu_hours: str = Field(pattern=r"^[0-9]+(\.[0-9]+)?$", description="GPU-hours, exact.")


class Accounting(Spec):
    """Where incremental accounting stands: each cycle adds the spend since `cursor`.

    Kept in status so a restarted operator resumes where it left off, and exact (decimal
    strings) so that thousands of cycles add up to the cent.
    """

    cursor: datetime = Field(description="Spend is accounted up to this time.")
    spent: str = Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", description="USD, exact.")
    idle: str = Field(
        default="0", pattern=r"^[0-9]+(\.[0-9]+)?$", description="USD paid for idle GPUs, exact."
    )
    api_spent: str = Field(
        default="0",
        pattern=r"^[0-9]+(\.[0-9]+)?$",
        description="USD of hosted-API spend in scope, exact (policies).",
    )
    jobs: list[JobAccount] = Field(default_factory=list, max_length=200)
    unpriced: list[str] = Field(
        default_factory=list,
        max_length=MAX_UNPRICED,
        description="Pods left out of `spent` since the period (or budget) began because "
        "they could not be priced, one note each (namespace/pod: why).",
    )


class ResourceInfo(BaseModel):
    """How a model maps to a Kubernetes resource; read by the CRD generator."""

    model_config = ConfigDict(frozen=True)

    kind: str
    plural: str
    singular: str
    short_names: list[str]
    scope: Literal["Namespaced", "Cluster"]
    categories: list[str] = Field(default_factory=lambda: ["costgov"])
    printer_columns: list[dict[str, Any]] = Field(default_factory=list)
    description: str = ""


class Resource(BaseModel):
    """A whole costgov object: apiVersion, kind, metadata, spec and status."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    INFO: ClassVar[ResourceInfo]

    api_version: Literal["costgov.io/v1alpha1"] = Field(alias="apiVersion")
    metadata: ObjectMeta
