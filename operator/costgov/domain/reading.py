"""Read workloads from Kubernetes objects: Jobs, CronJobs, Pods, Deployments, StatefulSets,
ReplicaSets, and the kinds whose pods come in groups (Kubeflow training jobs, JobSets,
LeaderWorkerSets, RayJobs and RayClusters; see `costgov.domain.kinds`).

Pure: takes the object as a mapping (from YAML or from the API), returns a `Workload` or
raises `ManifestError` naming the field path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from costgov.domain.kinds import composite_shape, cronjob_schedule, job_pods
from costgov.domain.podspecs import (
    INT64_MAX,
    listing,
    mapping,
    pod_group,
    str_map,
    template_spec,
    whole,
)
from costgov.domain.workloads import (
    COMPOSITE_KINDS,
    LONG_RUNNING_KINDS,
    WORKLOAD_KINDS,
    ManifestError,
    Owner,
    PodGroup,
    Schedule,
    Workload,
)

__all__ = ["at_scale", "controller_owner", "workload_from_object"]

_Shape = tuple[tuple[PodGroup, ...], int | None, bool, Schedule | None]


def controller_owner(meta: Mapping[str, Any]) -> Owner | None:
    """The ownerReference marked controller: true, if any."""
    for ref in listing(meta.get("ownerReferences"), "metadata.ownerReferences"):
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return Owner(
                str(ref.get("apiVersion", "")),
                str(ref.get("kind", "")),
                str(ref.get("name", "")),
                str(ref.get("uid", "")),
            )
    return None


def _created(meta: Mapping[str, Any]) -> datetime | None:
    stamp = meta.get("creationTimestamp")
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def _simple(kind: str, spec: Mapping[str, Any]) -> _Shape:
    """One pod template: (its group, activeDeadlineSeconds, suspended, schedule)."""
    schedule = None
    if kind == "CronJob":
        schedule = cronjob_schedule(spec)
        template = mapping(spec.get("jobTemplate"), "spec.jobTemplate")
        job = mapping(template.get("spec"), "spec.jobTemplate.spec")
        pod_spec, path = template_spec(job, "spec.jobTemplate.spec")
        pods, holder, where = job_pods(job, "spec.jobTemplate.spec"), job, "spec.jobTemplate.spec"
    elif kind == "Pod":
        pod_spec, path, pods, holder, where = spec, "spec", 1, spec, "spec"
    else:
        pod_spec, path = template_spec(spec, "spec")
        holder, where = spec, "spec"
        if kind == "Job":
            pods = job_pods(spec, "spec")
        else:
            pods = whole(spec.get("replicas"), "spec.replicas", 1) or 0
    deadline = None
    if kind in ("Job", "Pod", "CronJob"):
        field = f"{where}.activeDeadlineSeconds"
        deadline = whole(holder.get("activeDeadlineSeconds"), field, None, INT64_MAX)
    suspended = kind in ("Job", "CronJob") and spec.get("suspend") is True
    return (pod_group(kind, pods, pod_spec, path),), deadline, suspended, schedule


def _shape(api_version: str, kind: str, spec: Mapping[str, Any]) -> _Shape:
    if (api_version, kind) in COMPOSITE_KINDS:
        groups, deadline, suspended = composite_shape(kind, spec)
        return groups, deadline, suspended, None
    return _simple(kind, spec)


def _main(groups: tuple[PodGroup, ...]) -> PodGroup:
    """The group that holds the most GPUs (the first on a tie): the workload's face."""
    return max(groups, key=lambda g: g.pods * g.gpu_equivalents)


def _generated(prefix: Any) -> str | None:
    """The name of an object created with metadata.generateName (not yet given one)."""
    return f"{prefix}<generated>" if isinstance(prefix, str) and prefix else None


def workload_from_object(obj: Mapping[str, Any]) -> Workload:
    """Read any kind costgov prices; ManifestError when malformed."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    if (api_version, kind) not in WORKLOAD_KINDS:
        known = ", ".join(f"{a} {k}" for a, k in sorted(WORKLOAD_KINDS))
        raise ManifestError(
            "kind", f"{api_version} {kind} is not a workload costgov prices ({known})"
        )
    meta = mapping(obj.get("metadata"), "metadata")
    name = meta.get("name") or _generated(meta.get("generateName"))
    if not isinstance(name, str) or not name:
        raise ManifestError("metadata.name", "required field is missing")
    groups, deadline, suspended, schedule = _shape(
        api_version, kind, mapping(obj.get("spec"), "spec")
    )
    main = _main(groups)
    return Workload(
        api_version=api_version,
        kind=kind,
        name=name,
        namespace=str(meta.get("namespace") or "default"),
        labels=str_map(meta.get("labels"), "metadata.labels"),
        annotations=str_map(meta.get("annotations"), "metadata.annotations"),
        pods=sum(g.pods for g in groups),
        gpus_per_pod=main.gpus_per_pod,
        hints=main.hints,
        max_runtime_seconds=deadline,
        suspended=suspended,
        long_running=kind in LONG_RUNNING_KINDS,
        placement=main.placement,
        owner=controller_owner(meta),
        created=_created(meta),
        uid=meta["uid"] if isinstance(meta.get("uid"), str) else None,
        stateful=kind in ("StatefulSet", "LeaderWorkerSet", "RayCluster"),
        mig_share=main.mig_share,
        claims=main.claims,
        groups=groups if len(groups) > 1 or (api_version, kind) in COMPOSITE_KINDS else (),
        schedule=schedule,
    )


def at_scale(workload: Workload, replicas: int) -> Workload:
    """The workload a scale request asks for (`replicas`, the Scale's spec.replicas): the
    apps kinds' pods; the groups of a kind whose groups scale (each pod group by the pods a
    replica adds; an elastic PyTorchJob's workers stay at maxReplicas when that is more)."""
    if not workload.groups:
        return replace(workload, pods=replicas)
    groups = tuple(
        replace(g, pods=max(g.pods, g.per_replica * replicas)) if g.per_replica else g
        for g in workload.groups
    )
    main = _main(groups)
    return replace(
        workload,
        groups=groups,
        pods=sum(g.pods for g in groups),
        gpus_per_pod=main.gpus_per_pod,
        hints=main.hints,
        placement=main.placement,
        mig_share=main.mig_share,
        claims=main.claims,
    )
