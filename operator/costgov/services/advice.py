"""Recommendations in status and in the report: advice from domain/ (recommending.py,
advising.py) on a workload's running pods, rendered once, most dollars first."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace

from costgov.api.advice import MAX_RECOMMENDATIONS, Recommendation, RecommendationEvidence
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.money import cents
from costgov.domain.recommending import Advice
from costgov.services.accounting import Snapshot
from costgov.services.evidence import PodEvidence, advice_for, seasoned

__all__ = [
    "EVIDENCE_KINDS",
    "budget_advice",
    "covers",
    "job_pods",
    "keeps_standing",
    "recommendations",
    "with_evidence",
    "workload_advice",
]

PodKey = tuple[str, str]
EVIDENCE_KINDS = frozenset({"idle-gpu", "smaller-gpu", "mig", "share-gpu", "batching",
                            "quantisation", "scale-to-zero", "prefix-caching"})  # fmt: skip
"""Kinds that rest on the evidence read in the background (domain/advising.py)."""


def covers(evidence: PodEvidence | None, pods: Collection[PodKey]) -> bool:
    """The evidence was read and knows at least one of these pods old enough for advice
    (new pods after a rollout are not in it until the next read)."""
    if evidence is None or evidence.error is not None:
        return False
    known = ("busy", "idle", "running", "prompt", "generated")
    old_enough = seasoned(evidence, pods)
    return any(k in evidence.figures.get(n, {}) for n in known for k in old_enough)


def keeps_standing(evidence: PodEvidence | None, pods: Collection[PodKey]) -> bool:
    """Whether a status's evidence-based entries stand although no evidence covers the
    workload now: yes while evidence is not read yet or does not know its pods yet; no once
    it has no running pods, or the evidence is stale."""
    return bool(pods) and not (evidence is not None and evidence.stale)


def with_evidence(
    fresh: list[Advice], more: list[Advice] | None, old: Iterable[Recommendation], keep: bool
) -> list[Recommendation]:
    """`fresh` advice with the evidence's (`more`); while no evidence covers the workload
    (None), the evidence-based entries of its last status stand if `keep`."""
    if more is not None:
        return recommendations(fresh + more)
    standing = [r for r in old if r.kind in EVIDENCE_KINDS] if keep else []
    if any(r.kind == "batching" for r in standing):
        fresh = [a for a in fresh if a.kind != "fewer-replicas"]
    ordered = sorted(recommendations(fresh) + standing, key=lambda r: -(r.monthly_saving or -1))
    return ordered[:MAX_RECOMMENDATIONS]


def budget_advice(
    snapshot: Snapshot,
    namespace: str,
    jobs: Iterable[str],
    evidence: PodEvidence | None,
    catalog: PriceCatalog,
) -> list[Advice] | None:
    """Each running Job's own advice, named after it; None when the evidence covers none of
    them (the last recommendations then stand)."""
    found: list[Advice] = []
    running: set[PodKey] = set()
    for job in sorted(set(jobs)):
        pods = job_pods(snapshot, namespace, [job])
        running |= pods
        found += [replace(a, subject=f"Job/{job}")
                  for a in workload_advice(pods, snapshot, evidence, catalog)]  # fmt: skip
    if snapshot.error or (not covers(evidence, running) and keeps_standing(evidence, running)):
        return None
    return found


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
    hourly = [c for key in pods for c in snapshot.hourly_by_pod.get(key, ())]
    return advice_for(pods, hourly, snapshot.nodes, evidence, catalog, min_replicas=min_replicas)


def job_pods(snapshot: Snapshot, namespace: str, jobs: Iterable[str]) -> set[PodKey]:
    """The running pods of these Jobs."""
    found: set[PodKey] = set()
    for job in set(jobs):
        found |= snapshot.running_by_job.get((namespace, job), frozenset())
    return found


def recommendations(advice: Iterable[Advice]) -> list[Recommendation]:
    """Status entries, most dollars first (no figure last); one per kind and workload (the
    largest), and no fewer-replicas beside batching (the same replicas saved twice)."""
    found: dict[tuple[str, str], Advice] = {}
    for a in sorted(advice, key=lambda a: -(a.monthly_saving or -1)):
        found.setdefault((a.subject, a.kind), a)
    for subject in {s for s, kind in found if kind == "batching"}:
        found.pop((subject, "fewer-replicas"), None)
    ordered = sorted(found.values(), key=lambda a: -(a.monthly_saving or -1))

    def evidence(a: Advice) -> list[RecommendationEvidence]:
        return [RecommendationEvidence(metric=e.metric[:128], window=e.window[:32],
                                       value=e.value[:64]) for e in a.evidence[:8]]  # fmt: skip

    return [
        Recommendation(
            kind=a.kind,
            workload=a.subject[:253] or None,
            message=a.message[:512],
            monthly_saving=None if a.monthly_saving is None else cents(a.monthly_saving),
            evidence=evidence(a),
        )
        for a in ordered[:MAX_RECOMMENDATIONS]
    ]
