"""Which Job a GPU pod works for, and when that cannot be told.

Three sources, the most exact first: the pod's own ownerReferences (the operator watches
GPU pods), kube-state-metrics' `kube_pod_owner`, then `kube_pod_info`'s `created_by_kind`
/ `created_by_name` (the controller owner, for clusters where kube_pod_owner is not kept).
Pure: the sources' answers come in, an attribution goes out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Attribution", "Unattributed", "attribute", "unattributed"]

PodKey = tuple[str, str]


@dataclass(frozen=True)
class Attribution:
    jobs: Mapping[PodKey, str] = field(default_factory=dict)
    """The Job each pod belongs to."""
    known: frozenset[PodKey] = frozenset()
    """Pods some source described (a Job, another owner, or none): the others are unknown."""


def attribute(
    measured: Mapping[PodKey, tuple[str, str]], live: Mapping[PodKey, str | None]
) -> Attribution:
    """`measured`: (owner kind, owner name) by pod from Prometheus ("" kind: no owner);
    `live`: the Job named by the pod's controller ownerReference, or None, for pods the API
    shows now. The API is exact: where it knows the pod, it wins."""
    jobs = {key: name for key, (kind, name) in measured.items() if kind == "Job" and name}
    for key, job in live.items():
        if job:
            jobs[key] = job
        else:
            jobs.pop(key, None)
    return Attribution(jobs, frozenset(measured) | frozenset(live))


@dataclass(frozen=True)
class Unattributed:
    """Jobs running with no GPU pod attributed to them, and the GPU pods nobody owns."""

    jobs: tuple[str, ...]
    pods: tuple[PodKey, ...]

    @property
    def found(self) -> bool:
        return bool(self.jobs and self.pods)

    def message(self) -> str:
        pods = ", ".join(f"{ns}/{pod}" for ns, pod in self.pods[:10])
        more = f" and {len(self.pods) - 10} more" if len(self.pods) > 10 else ""
        return (
            f"Job(s) {', '.join(self.jobs)} running, but no running GPU pod is attributed to "
            f"them; GPU pod(s) {pods}{more} run with no owner in the API, kube_pod_owner or "
            "kube_pod_info (created_by_kind/created_by_name), so their spend is not counted "
            "here: keep kube_pod_owner or kube_pod_info's created_by_* labels in Prometheus"
        )


def unattributed(
    running_jobs: Iterable[str], running_pods: Iterable[PodKey], owners: Attribution
) -> Unattributed:
    """Running Jobs none of whose pods is attributed, and the running GPU pods whose owner
    no source knows. Only both together mean spend is going missing (a Job's pods may just
    be pending; an unknown pod may belong to no Job here)."""
    pods = list(running_pods)
    attributed = {owners.jobs[p] for p in pods if p in owners.jobs}
    jobs = tuple(sorted(j for j in set(running_jobs) if j not in attributed))
    unknown = tuple(sorted(p for p in set(pods) if p not in owners.known))
    return Unattributed(jobs, unknown)
