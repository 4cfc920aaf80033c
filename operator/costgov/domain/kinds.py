"""Kinds whose pods come in groups, and CronJobs: read as one workload each.

A distributed training run is judged once, as a whole: a PyTorchJob's master and workers, a
JobSet's replicated Jobs, a LeaderWorkerSet's leaders and workers, a Ray cluster's head and
worker groups. Each group is read from its own pod template and replica count (field names
as the projects' API types spell them):

- Kubeflow training-operator (kubeflow.org/v1 PyTorchJob, TFJob, XGBoostJob, PaddleJob,
  JAXJob; kubeflow.org/v2beta1 MPIJob): `spec.<kind>ReplicaSpecs.<role>.{replicas,template}`,
  `spec.runPolicy.{activeDeadlineSeconds,suspend}`; a PyTorchJob's workers at
  `spec.elasticPolicy.maxReplicas` when it is elastic (what it may cost).
- JobSet (jobset.x-k8s.io/v1alpha2): `spec.replicatedJobs[].{name,replicas,template.spec}`,
  each a Job spec (parallelism capped by completions); `spec.suspend`.
- LeaderWorkerSet (leaderworkerset.x-k8s.io/v1): `spec.replicas` groups of
  `spec.leaderWorkerTemplate.size` pods, one leader (`leaderTemplate`, else the worker
  template) and size-1 workers (`workerTemplate`).
- RayJob / RayCluster (ray.io/v1): `headGroupSpec.template` and
  `workerGroupSpecs[].{groupName,replicas,minReplicas,maxReplicas,numOfHosts,template}`;
  with `enableInTreeAutoscaling` a group is priced at its maxReplicas.
- CronJob (batch/v1): one run is its `spec.jobTemplate.spec`; `spec.schedule` says how
  many runs a month.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from costgov.domain.podspecs import INT64_MAX, listing, mapping, pod_group, template_spec, whole
from costgov.domain.schedules import ScheduleError, schedule_runs
from costgov.domain.workloads import (
    KUBEFLOW_REPLICA_SPECS,
    SCALED_KINDS,
    ManifestError,
    PodGroup,
    Schedule,
)

__all__ = ["Shape", "composite_shape", "cronjob_schedule", "job_pods"]

Shape = tuple[tuple[PodGroup, ...], int | None, bool]
"""(pod groups, activeDeadlineSeconds, suspended)."""


def job_pods(spec: Mapping[str, Any], path: str) -> int:
    """Pods a Job spec runs at once: parallelism (default 1), capped by completions."""
    parallelism = whole(spec.get("parallelism"), f"{path}.parallelism", 1) or 0
    completions = whole(spec.get("completions"), f"{path}.completions", None)
    return min(parallelism, completions) if completions is not None else parallelism


def _deadline(holder: Mapping[str, Any], path: str) -> int | None:
    field = f"{path}.activeDeadlineSeconds"
    return whole(holder.get("activeDeadlineSeconds"), field, None, INT64_MAX)


def _kubeflow(kind: str, spec: Mapping[str, Any]) -> Shape:
    field = KUBEFLOW_REPLICA_SPECS[kind]
    specs = mapping(spec.get(field), f"spec.{field}")
    if not specs:
        raise ManifestError(f"spec.{field}", "required field is missing")
    elastic = mapping(spec.get("elasticPolicy"), "spec.elasticPolicy")
    groups = []
    for role, raw in specs.items():
        path = f"spec.{field}.{role}"
        replica = mapping(raw, path)
        count = whole(replica.get("replicas"), f"{path}.replicas", 1) or 0
        if kind == "PyTorchJob" and str(role) == "Worker" and "maxReplicas" in elastic:
            count = whole(elastic.get("maxReplicas"), "spec.elasticPolicy.maxReplicas", 0) or 0
        pod_spec, pod_path = template_spec(replica, path)
        group = pod_group(str(role), count, pod_spec, pod_path)
        if str(role) == "Worker" and kind in SCALED_KINDS:  # /scale maps to Worker.replicas
            group = replace(group, per_replica=1)
        groups.append(group)
    run = mapping(spec.get("runPolicy"), "spec.runPolicy")
    return tuple(groups), _deadline(run, "spec.runPolicy"), run.get("suspend") is True


def _jobset(spec: Mapping[str, Any]) -> Shape:
    jobs = listing(spec.get("replicatedJobs"), "spec.replicatedJobs")
    if not jobs:
        raise ManifestError("spec.replicatedJobs", "required field is missing")
    groups, deadlines = [], []
    for i, raw in enumerate(jobs):
        path = f"spec.replicatedJobs[{i}]"
        job = mapping(raw, path)
        replicas = whole(job.get("replicas"), f"{path}.replicas", 1) or 0
        template = mapping(job.get("template"), f"{path}.template")
        job_spec = mapping(template.get("spec"), f"{path}.template.spec")
        pods = replicas * job_pods(job_spec, f"{path}.template.spec")
        pod_spec, pod_path = template_spec(job_spec, f"{path}.template.spec")
        groups.append(pod_group(str(job.get("name") or i), pods, pod_spec, pod_path))
        deadlines.append(_deadline(job_spec, f"{path}.template.spec"))
    bound = None if None in deadlines else max(d for d in deadlines if d is not None)
    return tuple(groups), bound, spec.get("suspend") is True


def _leader_worker_set(spec: Mapping[str, Any]) -> Shape:
    replicas = whole(spec.get("replicas"), "spec.replicas", 1) or 0
    path = "spec.leaderWorkerTemplate"
    lwt = mapping(spec.get("leaderWorkerTemplate"), path)
    size = whole(lwt.get("size"), f"{path}.size", 1) or 1
    worker_spec, worker_path = _template(lwt, "workerTemplate", path)
    if "leaderTemplate" in lwt:
        leader_spec, leader_path = _template(lwt, "leaderTemplate", path)
    else:
        leader_spec, leader_path = worker_spec, worker_path
    groups = [replace(pod_group("leader", replicas, leader_spec, leader_path), per_replica=1)]
    if size > 1:
        workers = pod_group("worker", replicas * (size - 1), worker_spec, worker_path)
        groups.append(replace(workers, per_replica=size - 1))
    return tuple(groups), None, False


def _template(holder: Mapping[str, Any], key: str, path: str) -> tuple[Mapping[str, Any], str]:
    template = mapping(holder.get(key), f"{path}.{key}")
    if not template:
        raise ManifestError(f"{path}.{key}", "required field is missing")
    return mapping(template.get("spec"), f"{path}.{key}.spec"), f"{path}.{key}.spec"


def _ray_workers(cluster: Mapping[str, Any], path: str) -> list[PodGroup]:
    autoscaling = cluster.get("enableInTreeAutoscaling") is True
    groups = []
    for i, raw in enumerate(listing(cluster.get("workerGroupSpecs"), f"{path}.workerGroupSpecs")):
        where = f"{path}.workerGroupSpecs[{i}]"
        spec = mapping(raw, where)
        if spec.get("suspend") is True:
            continue
        replicas = whole(spec.get("replicas"), f"{where}.replicas", None)
        low = whole(spec.get("minReplicas"), f"{where}.minReplicas", 0) or 0
        count = max(replicas or 0, low)
        if autoscaling:
            count = whole(spec.get("maxReplicas"), f"{where}.maxReplicas", count) or 0
        hosts = whole(spec.get("numOfHosts"), f"{where}.numOfHosts", 1) or 1
        pod_spec, pod_path = template_spec(spec, where)
        name = str(spec.get("groupName") or f"workers[{i}]")
        groups.append(pod_group(name, count * hosts, pod_spec, pod_path))
    return groups


def _ray(kind: str, spec: Mapping[str, Any]) -> Shape:
    path = "spec.rayClusterSpec" if kind == "RayJob" else "spec"
    cluster = mapping(spec.get("rayClusterSpec"), path) if kind == "RayJob" else spec
    if not cluster:
        raise ManifestError(path, "required field is missing (a RayJob needs its cluster)")
    head = mapping(cluster.get("headGroupSpec"), f"{path}.headGroupSpec")
    head_spec, head_path = template_spec(head, f"{path}.headGroupSpec")
    groups = (pod_group("head", 1, head_spec, head_path), *_ray_workers(cluster, path))
    deadline = _deadline(spec, "spec") if kind == "RayJob" else None
    return groups, deadline, spec.get("suspend") is True


def composite_shape(kind: str, spec: Mapping[str, Any]) -> Shape:
    """The pod groups, runtime bound and suspension of a kind whose pods come in groups."""
    if kind in KUBEFLOW_REPLICA_SPECS:
        return _kubeflow(kind, spec)
    if kind == "JobSet":
        return _jobset(spec)
    if kind == "LeaderWorkerSet":
        return _leader_worker_set(spec)
    return _ray(kind, spec)


def cronjob_schedule(spec: Mapping[str, Any]) -> Schedule:
    """A CronJob's schedule: runs a month and on its busiest day, whether runs may overlap."""
    expression = spec.get("schedule")
    if not isinstance(expression, str) or not expression.strip():
        raise ManifestError("spec.schedule", "required field is missing")
    try:
        runs, daily = schedule_runs(expression)
    except ScheduleError as exc:
        raise ManifestError("spec.schedule", str(exc)) from exc
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy not in ("Allow", "Forbid", "Replace"):
        raise ManifestError("spec.concurrencyPolicy", "expected Allow, Forbid or Replace")
    return Schedule(expression.strip(), runs, policy == "Allow", daily)
