"""The use-cases the kopf handlers call: one reconcile of each resource, one admission, and
applying an outcome's writes. The handlers stay a few lines of glue."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from costgov.adapters.metrics import RereadOutcome
from costgov.api import (
    CostApproval,
    CostPolicy,
    CostPolicyStatus,
    InferenceDeployment,
    InferenceDeploymentStatus,
    TrainingJobBudget,
    TrainingJobBudgetStatus,
)
from costgov.api.costapproval import CostApprovalStatus
from costgov.api.errors import describe_validation_error
from costgov.domain.verdicts import rests_on_recent_edits
from costgov.services.admitting import Decision, Gate, Request, admit
from costgov.services.advice import budget_advice, recommendations
from costgov.services.anomalies import with_anomalies
from costgov.services.claims import hold_first_use
from costgov.services.conditions import condition
from costgov.services.inventory import Inventory, judged_fields
from costgov.services.outcomes import Outcome
from costgov.services.reconciling import (
    reconcile_approval,
    reconcile_budget,
    reconcile_inference,
    reconcile_policy,
)
from costgov.services.runtime import Runtime
from costgov.services.statuses import read_status, render_status

__all__ = [
    "admission",
    "apply_writes",
    "approval_cycle",
    "budget_cycle",
    "inference_cycle",
    "load",
    "policy_cycle",
]

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("costgov")


def load(
    model: type[M], body: Mapping[str, Any], runtime: Runtime
) -> tuple[M | None, dict[str, Any]]:
    """The object as its model; when its spec is invalid, None and a status patch with a
    Ready=False condition naming the fields (kept until fixed, never a crash loop)."""
    try:
        return model.model_validate(judged_fields(body)), {}
    except ValidationError as exc:
        generation = (body.get("metadata") or {}).get("generation") or 0
        message = "; ".join(describe_validation_error(exc))[:2000]
        cond = condition(
            "Ready", False, "InvalidSpec", message, generation=generation, now=runtime.clock()
        )
        return None, {"conditions": [cond.model_dump(mode="json", by_alias=True)]}


async def policy_cycle(
    runtime: Runtime, policy: CostPolicy, inv: Inventory, old: Mapping[str, Any] | None
) -> Outcome[CostPolicyStatus]:
    snap = await runtime.snapshot(inv)
    situation = runtime.situation(inv, snap.at)
    outcome = reconcile_policy(
        policy,
        inv,
        snap,
        situation=situation,
        old=read_status(CostPolicyStatus, old),
        judgements=runtime.judgements(inv, situation),
        audit=runtime.audited(policy.metadata.name, snap.at),
        announced=runtime.announced.get(("CostPolicy", "", policy.metadata.name)),
    )
    outcome = with_anomalies(
        policy, outcome, await runtime.anomalies(snap), inv, excluded=situation.excluded,
        now=situation.now, announced=runtime.anomaly_announced,
    )  # fmt: skip
    runtime.record_policy(policy, outcome)
    return outcome


async def budget_cycle(
    runtime: Runtime, budget: TrainingJobBudget, inv: Inventory, old: Mapping[str, Any] | None
) -> Outcome[TrainingJobBudgetStatus]:
    snap = await runtime.snapshot(inv)
    previous = read_status(TrainingJobBudgetStatus, old)
    outcome = reconcile_budget(
        budget,
        inv,
        snap,
        situation=runtime.situation(inv, snap.at),
        old=previous,
        announced=runtime.threshold_of(budget),
    )
    ns, jobs = budget.metadata.namespace or "default", (j.name for j in outcome.status.jobs)
    advice = budget_advice(snap, ns, jobs, runtime.evidence.get(snap.at), runtime.catalog)
    # without figures or evidence the last recommendations stand
    found = previous.recommendations
    if not snap.error and advice is not None:
        found = recommendations(advice)
    outcome = replace(outcome, status=outcome.status.model_copy(update={"recommendations": found}))
    runtime.record_budget(budget, outcome)
    return outcome


async def inference_cycle(
    runtime: Runtime,
    idep: InferenceDeployment,
    inv: Inventory,
    old: Mapping[str, Any] | None,
    ready_replicas: int,
) -> Outcome[InferenceDeploymentStatus]:
    snap = await runtime.snapshot(inv)
    return reconcile_inference(
        idep,
        inv,
        snap,
        situation=runtime.situation(inv, snap.at),
        old=read_status(InferenceDeploymentStatus, old),
        ready_replicas=ready_replicas,
        evidence=runtime.evidence.get(snap.at),
    )


def approval_cycle(
    runtime: Runtime, approval: CostApproval, inv: Inventory, old: Mapping[str, Any] | None
) -> Outcome[CostApprovalStatus]:
    return reconcile_approval(
        approval,
        inv,
        situation=runtime.situation(inv, runtime.clock()),
        old=read_status(CostApprovalStatus, old),
    )


async def apply_writes(runtime: Runtime, outcome: Outcome[Any]) -> dict[str, Any]:
    """Patch Jobs and apply the owned Deployment (failures are logged and retried next
    cycle, never a crash loop); returns the status patch."""
    if runtime.kube is not None:
        for ns, name, job_patch in outcome.job_patches:
            if not runtime.leadership.leading:  # fenced: the Lease may be another's now
                break
            try:
                await runtime.kube.patch_job(ns, name, job_patch)
            except Exception as exc:
                log.warning(f"cannot patch Job {ns}/{name}: {exc}")
        if outcome.deployment is not None and runtime.leadership.leading:
            try:
                await runtime.kube.apply_deployment(outcome.deployment)
            except Exception as exc:
                log.warning(f"cannot apply Deployment: {exc}")
    return render_status(outcome.status)


async def admission(runtime: Runtime, request: Request, gate: Gate, namespace: str) -> Decision:
    """Judge one admission request (again against a fresh read when the answer turns on
    recent edits; a selector approval's first use recorded before it admits anything);
    record what it admitted, its audit findings, metrics."""
    started = time.perf_counter()
    decision = admit(request, gate)
    edited = runtime.rereads.edited_lately(namespace)
    if _reread(runtime, request, namespace) and rests_on_recent_edits(
        decision.verdicts, edited=edited
    ):
        fresh = await runtime.rereads.situation(gate.situation, namespace)
        # judged again in any case: other Jobs may have been admitted while this one
        # waited, and the ledger holds them (a budget must not be spent twice)
        gate = replace(
            gate, situation=replace(fresh or gate.situation, spend=runtime.ledger.spend())
        )
        cached, decision = decision, admit(request, gate)
        same = (cached.allowed, cached.message) == (decision.allowed, decision.message)
        outcome: RereadOutcome = "failed" if fresh is None else "unchanged" if same else "changed"
        runtime.metrics.rereads.labels(outcome).inc()
    decision = await hold_first_use(runtime, request, gate, decision)
    if not request.dryrun:
        if decision.allowed and request.kind in EDITS:
            runtime.rereads.edited(None if request.kind == "CostPolicy" else namespace)
        runtime.ledger.record_audit(list(decision.audit), runtime.clock())
        if decision.allowed and decision.admitted is not None:
            runtime.ledger.admitted(*decision.admitted, runtime.clock())
    runtime.metrics.admission(request.kind, decision.result, time.perf_counter() - started)
    return decision


EDITS = frozenset({"CostPolicy", "TrainingJobBudget", "CostApproval"})
"""Kinds whose changes admission answers turn on (signatures, amounts, tiers): admitting one
makes the next moments' signed admissions read fresh (`services.rereading`)."""


def _reread(runtime: Runtime, request: Request, namespace: str) -> bool:
    """Whether a fresh read may be made: not for dry-run requests (they change nothing, and
    must not be a free way to keep the reads busy), nor for a namespace the operator does
    not watch (it reconciles nothing there)."""
    watched = runtime.settings.namespaces
    return not request.dryrun and (not watched or namespace in watched)
