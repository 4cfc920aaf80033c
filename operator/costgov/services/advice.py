"""Recommendations in status and in the report: advice from domain/ (recommending.py,
advising.py) on a workload's running pods, rendered once, most dollars first."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from costgov.api.advice import MAX_RECOMMENDATIONS, Recommendation, RecommendationEvidence
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.money import cents
from costgov.domain.recommending import Advice
from costgov.services.accounting import Snapshot
from costgov.services.evidence import PodEvidence, advice_for

__all__ = ["job_pods", "recommendations", "workload_advice"]

PodKey = tuple[str, str]


def workload_advice(
    pods: Collection[PodKey],
    snapshot: Snapshot,
    evidence: PodEvidence | None,
    catalog: PriceCatalog,
    *,
    min_replicas: int = 0,
) -> list[Advice]:
    """Right-sizing and serving advice for these running pods (none without evidence)."""
    if snapshot.error or not pods:
        return []
    namespaces = {ns for ns, _ in pods}
    hourly = [c for ns in namespaces for c in snapshot.hourly_by_namespace.get(ns, ())]
    return advice_for(pods, hourly, snapshot.nodes, evidence, catalog, min_replicas=min_replicas)


def job_pods(snapshot: Snapshot, namespace: str, jobs: Iterable[str]) -> set[PodKey]:
    """The running pods of these Jobs."""
    names = set(jobs)
    return {
        c.usage.key
        for c in snapshot.hourly_by_namespace.get(namespace, ())
        if snapshot.owners.get(c.usage.key) in names
    }


def recommendations(advice: Iterable[Advice]) -> list[Recommendation]:
    """Status entries, most dollars first (no figure last); one per kind, and no
    fewer-replicas beside batching (the same replicas saved twice)."""
    found: dict[str, Advice] = {}
    for a in advice:
        if a.kind not in found:
            found[a.kind] = a
    if "batching" in found:
        found.pop("fewer-replicas", None)
    ordered = sorted(found.values(), key=lambda a: -(a.monthly_saving or -1))

    def evidence(a: Advice) -> list[RecommendationEvidence]:
        return [RecommendationEvidence(metric=e.metric, window=e.window, value=e.value)
                for e in a.evidence[:8]]  # fmt: skip

    return [
        Recommendation(
            kind=a.kind,
            message=a.message[:512],
            monthly_saving=None if a.monthly_saving is None else cents(a.monthly_saving),
            evidence=evidence(a),
        )
        for a in ordered[:MAX_RECOMMENDATIONS]
    ]
