"""Admission decisions for GPU workloads and costgov's own resources.

Answers come from memory (the inventory and the ledger the reconcile loop keeps) through the
same domain engine as `costgov estimate`: no network call per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from costgov.api import CostPolicy, InferenceDeployment, TrainingJobBudget
from costgov.api.errors import describe_validation_error
from costgov.api.trainingjobbudget import Approval
from costgov.domain.approvals import check_approval_change
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.costing import estimate_workload
from costgov.domain.money import usd
from costgov.domain.policies import BudgetView, Subject, Verdict, evaluate, in_scope
from costgov.domain.resources import budget_hints, covers
from costgov.domain.workloads import ManifestError, workload_from_object
from costgov.services.conditions import ViolationSeen
from costgov.services.inventory import SUSPENDED_BY

__all__ = ["AdmissionContext", "Decision", "Ledger", "Request", "admit"]

_WORKLOADS = {"Job", "Pod", "Deployment", "StatefulSet"}
_MODELS: dict[str, type[CostPolicy] | type[TrainingJobBudget] | type[InferenceDeployment]] = {
    "CostPolicy": CostPolicy,
    "TrainingJobBudget": TrainingJobBudget,
    "InferenceDeployment": InferenceDeployment,
}


@dataclass
class Ledger:
    """Figures the reconcile loop leaves for admission: spend per policy and per budget."""

    policy_spent: dict[str, Decimal] = field(default_factory=dict)
    budget_spent: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    budget_committed: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    audit: list[tuple[str, ViolationSeen, datetime]] = field(default_factory=list)
    """Admitted-but-recorded violations (audit mode): policy, violation, when."""


@dataclass(frozen=True)
class AdmissionContext:
    catalog: PriceCatalog
    policies: tuple[CostPolicy, ...]
    budgets: tuple[TrainingJobBudget, ...]
    namespace_labels: Mapping[str, str]
    ledger: Ledger
    now: datetime


@dataclass(frozen=True)
class Request:
    kind: str
    operation: str
    obj: Mapping[str, Any]
    old: Mapping[str, Any] | None
    user: str
    groups: tuple[str, ...]
    dryrun: bool


@dataclass(frozen=True)
class Decision:
    allowed: bool
    message: str = ""
    code: int = 200
    warnings: tuple[str, ...] = ()
    audit: tuple[tuple[str, ViolationSeen], ...] = ()
    """(policy, violation) pairs to record; empty for dry-run requests."""
    verdicts: tuple[Verdict, ...] = ()

    @property
    def result(self) -> str:
        if not self.allowed:
            return "denied"
        if self.warnings:
            return "warned"
        return "audited" if self.audit else "allowed"


def _deny(message: str, code: int = 403) -> Decision:
    return Decision(False, message, code)


def admit(request: Request, ctx: AdmissionContext) -> Decision:
    """Judge one admission request."""
    if request.operation == "DELETE":
        return Decision(True)
    if request.kind in _WORKLOADS:
        return _admit_workload(request, ctx)
    if request.kind in _MODELS:
        return _admit_resource(request, ctx)
    return Decision(True)


def _scoped(ctx: AdmissionContext, namespace: str, labels: Mapping[str, str]) -> list[CostPolicy]:
    return [
        p
        for p in ctx.policies
        if in_scope(
            p.spec,
            namespace=namespace,
            namespace_labels=ctx.namespace_labels,
            workload_labels=labels,
        )
    ]


def _admit_workload(request: Request, ctx: AdmissionContext) -> Decision:
    obj = {
        **request.obj,
        "kind": request.kind,
        "apiVersion": request.obj.get("apiVersion") or _API[request.kind],
    }
    try:
        workload = workload_from_object(obj)
    except ManifestError as exc:
        return _deny(f"costgov cannot read this {request.kind}: {exc}", 400)
    if workload.gpus_per_pod == 0:
        return Decision(True)
    policies = _scoped(ctx, workload.namespace, workload.labels)
    tjb = next((b for b in ctx.budgets if covers(b, workload)), None)
    key = (workload.namespace, tjb.metadata.name) if tjb else None
    if request.old is not None and request.kind == "Job":
        old_spec, new_spec = request.old.get("spec") or {}, request.obj.get("spec") or {}
        by = (request.obj.get("metadata") or {}).get("annotations", {}).get(SUSPENDED_BY)
        if (
            old_spec.get("suspend")
            and not new_spec.get("suspend")
            and by
            and key
            and (
                ctx.ledger.budget_spent.get(key, Decimal(0)) >= tjb.spec.amount  # type: ignore[union-attr]
            )
        ):
            return _deny(
                f"costgov: {workload.ref} was suspended because TrainingJobBudget "
                f"{by} is exhausted; raise its spec.amount to resume it"
            )
    est = estimate_workload(
        workload,
        ctx.catalog,
        budget_hints=budget_hints(tjb.spec.hints) if tjb else None,
        max_duration=tjb.spec.max_duration if tjb else None,
        checkpointing=tjb.spec.checkpointing if tjb else False,
    )
    if request.old is not None:
        try:
            before = estimate_workload(
                workload_from_object(
                    {**request.old, "kind": request.kind, "apiVersion": obj["apiVersion"]}
                ),
                ctx.catalog,
                budget_hints=budget_hints(tjb.spec.hints) if tjb else None,
                max_duration=tjb.spec.max_duration if tjb else None,
            )
            if (
                est.amount is not None
                and before.amount is not None
                and (est.amount <= before.amount and (est.hourly or 0) <= (before.hourly or 0))
            ):
                return Decision(True)  # an update that costs no more: nothing new to judge
        except ManifestError:
            pass
    view = None
    if tjb is not None and key is not None:
        view = BudgetView(
            tjb.metadata.name,
            tjb.spec.amount,
            ctx.ledger.budget_spent.get(key),
            ctx.ledger.budget_committed.get(key, Decimal(0)),
        )
    subject = Subject(
        estimate=est, approval=tjb.spec.approval if tjb else None, training_budget=view
    )
    verdicts = tuple(
        evaluate(
            p.metadata.name,
            p.spec,
            subject,
            now=ctx.now,
            policy_spent=ctx.ledger.policy_spent.get(p.metadata.name),
        )
        for p in policies
    )
    return _combine(verdicts, workload.kind, workload.namespace, workload.name, request.dryrun)


def _combine(
    verdicts: tuple[Verdict, ...], kind: str, namespace: str, name: str, dryrun: bool
) -> Decision:
    denials, warnings, audit = [], [], []
    for v in verdicts:
        for x in v.violations:
            line = f"[CostPolicy {v.policy}, {v.mode}] {x.rule}: {x.message}"
            if v.action == "deny" and x.severity == "error":
                denials.append(line)
            elif v.action == "audit":
                audit.append(
                    (v.policy, ViolationSeen(kind, namespace, name, x.rule, x.severity, x.message))
                )
            else:
                warnings.append(f"costgov {line}")
    if denials:
        return Decision(
            False,
            "costgov denied this request: " + " | ".join(denials),
            403,
            tuple(warnings),
            (),
            verdicts,
        )
    return Decision(True, "", 200, tuple(warnings), () if dryrun else tuple(audit), verdicts)


_API = {"Job": "batch/v1", "Pod": "v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1"}


def _approval(obj: Mapping[str, Any] | None) -> Approval | None:
    raw = ((obj or {}).get("spec") or {}).get("approval")
    if not raw:
        return None
    try:
        return Approval.model_validate(raw)
    except ValidationError:
        return None


def _admit_resource(request: Request, ctx: AdmissionContext) -> Decision:
    model = _MODELS[request.kind]
    name = (request.obj.get("metadata") or {}).get("name", "?")
    try:
        resource = model.model_validate(
            {
                k: v
                for k, v in request.obj.items()
                if k in ("apiVersion", "kind", "metadata", "spec")
            }
        )
    except ValidationError as exc:
        problems = describe_validation_error(exc, root=f"{request.kind}/{name}")
        return _deny("costgov: invalid " + "; ".join(problems), 422)
    if isinstance(resource, CostPolicy):
        return Decision(True)
    spec = resource.spec
    old_spec = (request.old or {}).get("spec") or {}
    if request.operation == "CREATE" and spec.requested_by not in (None, request.user):
        return _deny(
            f"costgov: spec.requestedBy must be the requesting user ({request.user}), "
            f"not {spec.requested_by}"
        )
    if request.operation == "UPDATE" and old_spec.get("requestedBy") != spec.requested_by:
        return _deny("costgov: spec.requestedBy cannot change after creation")
    new, old = _approval(request.obj), _approval(request.old)
    if new is None or new == old:
        return Decision(True)
    requester = spec.requested_by or (request.user if request.operation == "CREATE" else None)
    if requester is None:
        return _deny(
            f"costgov: {request.kind}/{name} has no spec.requestedBy, so costgov cannot "
            "tell that the approver is not the requester; it must be set at creation"
        )
    namespace = resource.metadata.namespace or "default"
    policies = _scoped(ctx, namespace, resource.metadata.labels)
    if not policies:
        return Decision(
            True,
            warnings=(
                f"costgov: no CostPolicy governs namespace {namespace}; "
                "the approval is recorded but no tier applies",
            ),
        )
    for policy in policies:
        check = check_approval_change(
            old=old,
            new=new,
            user=request.user,
            groups=request.groups,
            tiers=policy.spec.approvals,
            requester=requester,
        )
        if not check.ok:
            return _deny(
                f"costgov: approval refused by CostPolicy {policy.metadata.name}: {check.reason}"
            )
    return Decision(
        True,
        warnings=(
            f"costgov: {request.user} approved {usd(new.amount)} until "
            f"{new.expires:%Y-%m-%d %H:%M}Z",
        ),
    )
