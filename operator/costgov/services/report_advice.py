"""`costgov report --recommendations`: advice for every GPU workload running at the
report's end, from evidence over its window (domain/advising.py via services/advice.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from costgov.adapters import promql
from costgov.adapters.prometheus import MetricsError, PrometheusSource, Sample
from costgov.api.advice import Recommendation
from costgov.domain.catalogs import PriceCatalog
from costgov.services.accounting import Snapshot
from costgov.services.advice import recommendations, workload_advice
from costgov.services.evidence import PodEvidence, collect_evidence

__all__ = ["WorkloadAdvice", "report_advice"]

PodKey = tuple[str, str]
REPLICASET_OWNERS = (
    'max by (namespace, replicaset, owner_name) (kube_replicaset_owner{owner_kind="Deployment"})'
)
"""Which Deployment owns each ReplicaSet (kube-state-metrics), so that a Deployment's pods
are one workload across a rollout."""


@dataclass(frozen=True)
class WorkloadAdvice:
    """A running workload's recommendations."""

    namespace: str
    workload: str
    hourly: Decimal
    recommendations: tuple[Recommendation, ...]


async def report_advice(
    source: PrometheusSource, snap: Snapshot, catalog: PriceCatalog, *, end: datetime, span: int
) -> tuple[tuple[WorkloadAdvice, ...], list[str]]:
    """The workloads' advice, and warnings (a figure that could not be read, and so the
    rules resting on it said nothing)."""
    evidence = await collect_evidence(source, end, span)
    if evidence.error:
        return (), [f"no recommendations: their evidence could not be read ({evidence.error})"]
    warnings = [f"recommendations without {m}" for m in evidence.missing]
    try:
        owners = await source.query(promql.pod_owners(span), end)
        sets = await source.query(REPLICASET_OWNERS, end)
    except MetricsError as exc:
        return (), [*warnings, f"no recommendations: pod owners unreadable ({exc})"]
    named = _owner_names(owners.samples, _deployments(sets.samples))
    return _advice(snap, evidence, catalog, named), warnings


def _deployments(samples: Sequence[Sample]) -> dict[PodKey, str]:
    return {
        (s.labels.get("namespace", ""), s.labels.get("replicaset", "")): s.labels["owner_name"]
        for s in samples
        if s.labels.get("owner_name")
    }


def _owner_names(samples: Sequence[Sample], deployments: Mapping[PodKey, str]) -> dict[PodKey, str]:
    """kind/name of each pod's controller owner (kube_pod_owner, else kube_pod_info), a
    ReplicaSet's Deployment where one owns it."""
    out = {}
    for s in samples:
        ns, kind, name = (
            s.labels.get("namespace", ""),
            s.labels.get("owner_kind"),
            s.labels.get("owner_name"),
        )
        if not kind or not name:
            continue
        if kind == "ReplicaSet" and (ns, name) in deployments:
            kind, name = "Deployment", deployments[(ns, name)]
        out[(ns, s.labels.get("pod", ""))] = f"{kind}/{name}"
    return out


def _advice(
    snap: Snapshot, evidence: PodEvidence, catalog: PriceCatalog, owners: Mapping[PodKey, str]
) -> tuple[WorkloadAdvice, ...]:
    """Each running workload (pods grouped by their controller owner; a pod without one
    alone), most dollars first."""
    workloads: dict[tuple[str, str], set[PodKey]] = {}
    hourly: dict[tuple[str, str], Decimal] = {}
    for c in snap.hourly:
        key = (c.usage.namespace, owners.get(c.usage.key) or f"Pod/{c.usage.pod}")
        workloads.setdefault(key, set()).add(c.usage.key)
        hourly[key] = hourly.get(key, Decimal(0)) + (c.cost or Decimal(0))
    out = []
    for (ns, name), pods in workloads.items():
        found = recommendations(workload_advice(pods, snap, evidence, catalog))
        if found:
            out.append(WorkloadAdvice(ns, name, hourly[(ns, name)], tuple(found)))
    best = {id(w): max((r.monthly_saving or 0 for r in w.recommendations), default=0)
            for w in out}  # fmt: skip
    return tuple(sorted(out, key=lambda w: (-best[id(w)], w.namespace, w.workload)))
