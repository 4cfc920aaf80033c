"""What the operator knows of the cluster, as small records built from raw objects.

The kopf indexes (handlers/indexing.py) store these records; the services read them through
an `Inventory`, which is a plain, frozen view that tests build by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from costgov.api import CostPolicy, InferenceDeployment, TrainingJobBudget
from costgov.domain.workloads import ManifestError, Workload, workload_from_object

__all__ = [
    "SUSPENDED_BY",
    "Inventory",
    "JobRecord",
    "PodRecord",
    "job_record",
    "parse_resource",
    "pod_record",
]

SUSPENDED_BY = "costgov.io/suspended-by"
"""Annotation the operator puts on Jobs it suspends (value: the TrainingJobBudget's name)."""


@dataclass(frozen=True)
class PodRecord:
    namespace: str
    name: str
    node: str
    gpus: int
    labels: Mapping[str, str]
    owner_job: str | None
    phase: str


@dataclass(frozen=True)
class JobRecord:
    workload: Workload
    active: int
    finished: bool
    started: datetime | None
    suspended_by: str | None

    @property
    def name(self) -> str:
        return self.workload.name

    @property
    def namespace(self) -> str:
        return self.workload.namespace


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def pod_record(body: Mapping[str, Any]) -> PodRecord | None:
    """A pod that requests GPUs, or None (no GPUs, or unreadable: nothing to price)."""
    try:
        workload = workload_from_object({**body, "apiVersion": "v1", "kind": "Pod"})
    except ManifestError:
        return None
    if workload.gpus_per_pod == 0:
        return None
    meta = body.get("metadata") or {}
    owner = next(
        (o.get("name") for o in meta.get("ownerReferences") or [] if o.get("kind") == "Job"), None
    )
    return PodRecord(
        namespace=workload.namespace,
        name=workload.name,
        node=str((body.get("spec") or {}).get("nodeName") or ""),
        gpus=workload.gpus_per_pod,
        labels=dict(workload.labels),
        owner_job=owner,
        phase=str((body.get("status") or {}).get("phase") or "Pending"),
    )


def job_record(body: Mapping[str, Any]) -> JobRecord | None:
    """A Job that requests GPUs, or None."""
    try:
        workload = workload_from_object({**body, "apiVersion": "batch/v1", "kind": "Job"})
    except ManifestError:
        return None
    if workload.gpus_per_pod == 0:
        return None
    status = body.get("status") or {}
    conditions = status.get("conditions") or []
    finished = any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions
    )
    return JobRecord(
        workload=workload,
        active=int(status.get("active") or 0),
        finished=finished,
        started=_time(status.get("startTime")),
        suspended_by=workload.annotations.get(SUSPENDED_BY),
    )


def parse_resource(
    model: type[CostPolicy] | type[TrainingJobBudget] | type[InferenceDeployment],
    body: Mapping[str, Any],
) -> Any:
    """A costgov object as its model (status left out: it is ours, and judged by nobody), or
    None when the spec does not validate (the reconcile handler reports why)."""
    try:
        return model.model_validate(
            {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
        )
    except ValidationError:
        return None


@dataclass(frozen=True)
class Inventory:
    """A read-only view of the cluster for one decision."""

    namespaces: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    nodes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    pods: tuple[PodRecord, ...] = ()
    jobs: tuple[JobRecord, ...] = ()
    policies: tuple[CostPolicy, ...] = ()
    budgets: tuple[TrainingJobBudget, ...] = ()
    inference: tuple[InferenceDeployment, ...] = ()
    statuses: Mapping[tuple[str, str, str], Mapping[str, Any]] = field(default_factory=dict)
    """(kind, namespace, name) -> the object's status as last seen (accounting cursors)."""

    def status_of(self, kind: str, namespace: str, name: str) -> Mapping[str, Any]:
        return self.statuses.get((kind, namespace, name), {})

    def namespace_labels(self, name: str) -> dict[str, str]:
        return {**self.namespaces.get(name, {}), "kubernetes.io/metadata.name": name}

    def jobs_in(self, namespace: str) -> Iterable[JobRecord]:
        return (j for j in self.jobs if j.namespace == namespace)
