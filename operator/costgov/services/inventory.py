"""What the operator knows of the cluster, as small records built from raw objects.

The kopf indexes (handlers/indexing.py) store these records; the services read them through
an `Inventory`, a plain, frozen view that tests build by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from costgov.api import CostApproval, CostPolicy, InferenceDeployment, TrainingJobBudget
from costgov.api.gpus import GPU_RESOURCES, SHARED_GPU_PREFIXES
from costgov.domain.enforcing import SUSPENDED_BY
from costgov.domain.placement import NodeInfo, Taint
from costgov.domain.quantities import QuantityError, parse_whole_count
from costgov.domain.reading import workload_from_object
from costgov.domain.scoping import JUDGED_OWNERS
from costgov.domain.workloads import ManifestError, Workload
from costgov.services.deployments import INFERENCE_LABEL

__all__ = [
    "SUSPENDED_BY",
    "Inventory",
    "JobRecord",
    "PodRecord",
    "job_record",
    "judged_fields",
    "node_info",
    "parse_resource",
    "pod_record",
    "problems_in",
    "workload_record",
]


@dataclass(frozen=True)
class PodRecord:
    namespace: str
    name: str
    node: str
    gpus: Decimal
    labels: Mapping[str, str]
    owner_job: str | None
    phase: str
    workload: Workload | None = None
    """The pod as a workload of its own: kept only for a pod judged by itself (no owner, or
    one whose pods are not judged through it: `scoping.JUDGED_OWNERS`). A Job's or a
    ReplicaSet's pods are judged, audited and approved through their owner, and at 10,000
    pods their workloads took 17 MB (and up to 20,000 deleted pods' records are kept)."""


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


def problems_in(problems: Mapping[str | None, str], namespaces: Iterable[str] | None) -> str | None:
    """The pod followers' problems (by scope: a namespace, or None for the whole cluster)
    that concern `namespaces` (None: all of them), joined; None when there are none."""
    wanted = None if namespaces is None else set(namespaces)
    found = [p for s, p in problems.items() if wanted is None or s is None or s in wanted]
    return "; ".join(found) or None


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
    if not workload.uses_gpus:
        return None
    owner = workload.owner
    return PodRecord(
        namespace=workload.namespace,
        name=workload.name,
        node=str((body.get("spec") or {}).get("nodeName") or ""),
        gpus=workload.gpus_per_pod + workload.mig_share,
        labels=workload.labels,
        owner_job=owner.name if owner is not None and owner.kind == "Job" else None,
        phase=str((body.get("status") or {}).get("phase") or "Pending"),
        workload=workload if owner is None or owner.kind not in JUDGED_OWNERS else None,
    )


def job_record(body: Mapping[str, Any]) -> JobRecord | None:
    """A Job that requests GPUs, or None."""
    try:
        workload = workload_from_object({**body, "apiVersion": "batch/v1", "kind": "Job"})
    except ManifestError:
        return None
    if not workload.uses_gpus:
        return None
    status = body.get("status") or {}
    conditions = status.get("conditions") or []
    finished = any(
        isinstance(c, Mapping)
        and c.get("type") in ("Complete", "Failed")
        and c.get("status") == "True"
        for c in conditions
    )
    return JobRecord(
        workload=workload,
        active=int(status.get("active") or 0),
        finished=finished,
        started=_time(status.get("startTime")),
        suspended_by=workload.annotations.get(SUSPENDED_BY),
    )


def workload_record(body: Mapping[str, Any]) -> Workload | None:
    """A Deployment, StatefulSet or ReplicaSet that requests GPUs, or None."""
    try:
        workload = workload_from_object(body)
    except ManifestError:
        return None
    return workload if workload.uses_gpus else None


def node_info(body: Mapping[str, Any]) -> NodeInfo:
    """A node's labels, allocatable GPUs (shared replicas counting one each, as pods holding
    them are priced) and taints."""
    meta, spec, status = (body.get(k) or {} for k in ("metadata", "spec", "status"))
    allocatable = status.get("allocatable") or {}
    gpus = 0
    shared = [str(k) for k in allocatable if str(k).startswith(SHARED_GPU_PREFIXES)]
    for resource in (*GPU_RESOURCES, *shared):
        try:
            gpus += parse_whole_count(allocatable.get(resource, 0))
        except QuantityError:
            continue
    taints = tuple(
        Taint(str(t.get("key", "")), str(t.get("value") or ""), str(t.get("effect", "")))
        for t in spec.get("taints") or []
        if isinstance(t, Mapping)
    )
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    return NodeInfo(str(meta.get("name", "")), labels, gpus, taints)


def parse_resource(
    model: type[CostPolicy]
    | type[TrainingJobBudget]
    | type[InferenceDeployment]
    | type[CostApproval],
    body: Mapping[str, Any],
) -> Any:
    """A costgov object as its model (status left out: it is ours, and judged by nobody, but
    for a CostApproval's `boundTo`, which admission judges by), or None when the spec does
    not validate (the reconcile handler reports why)."""
    try:
        return model.model_validate(judged_fields(body))
    except ValidationError:
        return None


def judged_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """What of a costgov object the engine reads: apiVersion, kind, metadata, spec, and a
    CostApproval's `status.boundTo`."""
    fields = {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
    status = body.get("status")
    if body.get("kind") == "CostApproval" and isinstance(status, Mapping) and status.get("boundTo"):
        fields["status"] = {"boundTo": status["boundTo"]}
    return fields


@dataclass(frozen=True)
class Inventory:
    """A read-only view of the cluster for one decision."""

    namespaces: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    nodes: Mapping[str, NodeInfo] = field(default_factory=dict)
    pods: tuple[PodRecord, ...] = ()
    pods_gone: tuple[PodRecord, ...] = ()
    """GPU pods deleted in the last minutes (services/gone_pods.py), as last seen:
    only their owners are read (the Job their GPU time in the cycle's windows is for)."""
    pods_problems: Mapping[str | None, str] = field(default_factory=dict)
    """Why the GPU pods cannot be followed now (they are as last seen), by scope: a
    namespace, or None for the whole cluster."""
    jobs: tuple[JobRecord, ...] = ()
    policies: tuple[CostPolicy, ...] = ()
    budgets: tuple[TrainingJobBudget, ...] = ()
    inference: tuple[InferenceDeployment, ...] = ()
    approvals: tuple[CostApproval, ...] = ()
    workloads: tuple[Workload, ...] = ()
    """GPU Deployments, StatefulSets and ReplicaSets."""
    statuses: Mapping[tuple[str, str, str], Mapping[str, Any]] = field(default_factory=dict)
    """(kind, namespace, name) -> the object's status as last seen (accounting cursors)."""
    gpu_node_list: tuple[NodeInfo, ...] | None = None
    """The GPU nodes, when the caller keeps them ready (else derived from `nodes`)."""

    def pods_problem(self, namespaces: Iterable[str]) -> str | None:
        """Why the GPU pods of these namespaces are not followed now, or None."""
        return problems_in(self.pods_problems, namespaces)

    def status_of(self, kind: str, namespace: str, name: str) -> Mapping[str, Any]:
        return self.statuses.get((kind, namespace, name), {})

    def namespace_labels(self, name: str) -> dict[str, str]:
        return {**self.namespaces.get(name, {}), "kubernetes.io/metadata.name": name}

    def jobs_in(self, namespace: str) -> Iterable[JobRecord]:
        return (j for j in self.jobs if j.namespace == namespace)

    def pod_owners(self) -> dict[tuple[str, str], str | None]:
        """The Job each GPU pod's controller ownerReference names (None: not a Job's), for
        the pods the API shows and those it showed until minutes ago (a live pod of the same
        name wins)."""
        return {(p.namespace, p.name): p.owner_job for p in (*self.pods_gone, *self.pods)}

    def serving_pods(self) -> frozenset[tuple[str, str]]:
        """The model servers costgov runs for InferenceDeployments (their pods' label): the
        only pods whose unit costs anything reads."""
        return frozenset((p.namespace, p.name) for p in self.pods if INFERENCE_LABEL in p.labels)

    def node_labels(self) -> dict[str, Mapping[str, str]]:
        return {name: node.labels for name, node in self.nodes.items()}

    def gpu_nodes(self) -> tuple[NodeInfo, ...]:
        if self.gpu_node_list is not None:
            return self.gpu_node_list
        return tuple(n for n in self.nodes.values() if n.gpus > 0)
