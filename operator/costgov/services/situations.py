"""The engine's `Situation` from what the operator holds: the inventory, the ledger, the
settings. Admission and the periodic audit judge from the same one."""

from __future__ import annotations

import logging
from datetime import datetime

from costgov.domain.catalogs import PriceCatalog
from costgov.domain.judging import Judgement, Situation, Spend, Submission, judge
from costgov.services.inventory import Inventory
from costgov.services.ledgers import Ledger

__all__ = ["audit_judgements", "situation_from"]

WorkKey = tuple[str, str, str]
log = logging.getLogger("costgov")


def situation_from(
    inv: Inventory,
    *,
    catalog: PriceCatalog,
    now: datetime,
    excluded: frozenset[str],
    ledger: Ledger | None = None,
) -> Situation:
    return Situation(
        catalog=catalog,
        now=now,
        policies=inv.policies,
        namespaces=inv.namespaces,
        budgets=inv.budgets,
        approvals=inv.approvals,
        spend=ledger.spend() if ledger is not None else Spend(),
        nodes=inv.gpu_nodes(),
        excluded=excluded,
    )


def audit_judgements(inv: Inventory, situation: Situation) -> dict[WorkKey, Judgement]:
    """Running GPU work judged as admission would have judged it when it was created: what
    slipped through while the webhook was down shows here. Running Jobs, Pods judged by
    themselves (bare, or under a controller costgov does not judge through, such as an Argo
    Workflow or a DaemonSet: their records keep a workload), Deployments, StatefulSets and
    ReplicaSets without a controller."""
    subs: list[Submission] = []
    for job in inv.jobs:
        if not job.finished:
            subs.append(Submission(job.workload, approvals_at=job.workload.created, audit=True))
    for pod in inv.pods:
        bare = pod.workload
        if bare is not None and pod.phase in ("Pending", "Running"):
            subs.append(Submission(bare, approvals_at=bare.created, audit=True))
    for wl in inv.workloads:
        if wl.owner is None:
            subs.append(Submission(wl, approvals_at=wl.created, audit=True))
    out: dict[WorkKey, Judgement] = {}
    for sub in subs:
        wl = sub.workload
        try:
            out[(wl.kind, wl.namespace, wl.name)] = judge(sub, situation)
        except Exception:  # one object the engine chokes on must not stop the whole audit
            log.exception("costgov could not judge %s in this audit cycle; skipped", wl.ref)
    return out
