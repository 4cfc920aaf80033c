"""Admission decisions for GPU workloads and costgov's own resources.

Answers come from memory (the inventory and the ledger the reconcile loop keeps) through the
same engine as `costgov estimate` (`domain.judging.judge`): no network call here (the
caller re-reads what an answer turns on when it must: `services.rereading`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from costgov.api import CostApproval, CostPolicy, InferenceDeployment, TrainingJobBudget
from costgov.api.errors import describe_validation_error
from costgov.domain.approvals import authenticate
from costgov.domain.coverage import covered_changes
from costgov.domain.enforcing import guard_suspension
from costgov.domain.judging import Judgement, Situation, Submission, estimate_for, judge
from costgov.domain.reading import at_scale, workload_from_object
from costgov.domain.resources import inference_workload
from costgov.domain.scoping import (
    candidates,
    covering_budget,
    judged_through_owner,
    signatures,
)
from costgov.domain.verdicts import Verdict
from costgov.domain.workloads import COMPOSITE_KINDS, ManifestError, Workload
from costgov.services.conditions import ViolationSeen

__all__ = ["API_VERSIONS", "Decision", "Gate", "Request", "admit"]

API_VERSIONS = {
    "Job": "batch/v1",
    "Pod": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "CronJob": "batch/v1",
    **{kind: api_version for api_version, kind in COMPOSITE_KINDS if kind != "MPIJob"},
    "MPIJob": "kubeflow.org/v2beta1",
}
"""Kinds judged as workloads, and the API version assumed when an object omits its own."""
_MODELS: dict[str, type[Resource]] = {
    "CostPolicy": CostPolicy,
    "TrainingJobBudget": TrainingJobBudget,
    "InferenceDeployment": InferenceDeployment,
    "CostApproval": CostApproval,
}
Resource = CostPolicy | TrainingJobBudget | InferenceDeployment | CostApproval
Holder = TrainingJobBudget | InferenceDeployment | CostApproval
"""Resources that carry signatures."""


@dataclass(frozen=True, slots=True)
class Gate:
    """What admission knows besides the request: the situation, and whom it trusts."""

    situation: Situation
    trusted: frozenset[str] = frozenset()
    """Controller identities whose pods (and ReplicaSets) are judged through their owner."""
    self_user: str | None = None
    """costgov's own identity: the only one that resumes what it suspended."""
    workloads: Mapping[tuple[str, str, str], Workload] = field(default_factory=dict)
    """GPU Deployments, StatefulSets and ReplicaSets by (kind, namespace, name), for scale
    requests (the Scale object carries replicas, not the pod template)."""


@dataclass(frozen=True, slots=True)
class Request:
    kind: str
    operation: str
    obj: Mapping[str, Any]
    old: Mapping[str, Any] | None
    user: str
    groups: tuple[str, ...]
    dryrun: bool
    subresource: str | None = None

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The object's metadata, or {} when it is not a mapping (hostile input)."""
        meta = self.obj.get("metadata")
        return meta if isinstance(meta, Mapping) else {}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    message: str = ""
    code: int = 200
    warnings: tuple[str, ...] = ()
    audit: tuple[tuple[str, ViolationSeen], ...] = ()
    """(policy, violation) pairs to record; empty for dry-run requests."""
    verdicts: tuple[Verdict, ...] = ()
    admitted: tuple[tuple[str, str], str, Decimal] | None = None
    """(budget key, Job, estimate) when a Job is admitted against a TrainingJobBudget."""

    @property
    def result(self) -> str:
        if not self.allowed:
            return "denied"
        if self.warnings:
            return "warned"
        return "audited" if self.audit else "allowed"


def _deny(message: str, code: int = 403) -> Decision:
    return Decision(False, message, code)


def admit(request: Request, gate: Gate) -> Decision:
    """Judge one admission request."""
    if request.operation not in ("CREATE", "UPDATE"):
        return _deny(f"costgov judges CREATE and UPDATE, not {request.operation!r}", 400)
    if request.subresource == "scale":
        return _admit_scale(request, gate)
    if request.subresource is not None:
        return _deny(f"costgov has no admission rule for {request.subresource!r}", 400)
    if request.kind in API_VERSIONS:
        return _admit_workload(request, gate)
    if request.kind in _MODELS:
        return _admit_resource(request, gate)
    return _deny(f"costgov has no admission rule for kind {request.kind!r}", 400)


def _read(request: Request, obj: Mapping[str, Any]) -> Workload:
    return workload_from_object(
        {
            **obj,
            "kind": request.kind,
            "apiVersion": obj.get("apiVersion") or API_VERSIONS[request.kind],
        }
    )


def _costs_no_more(before: Workload, after: Workload, gate: Gate) -> bool:
    sit = gate.situation
    budget = covering_budget(sit.budgets, after) if after.kind == "Job" else None
    old, new = estimate_for(before, sit, budget), estimate_for(after, sit, budget)
    if new.amount is None or old.amount is None or new.hourly is None or old.hourly is None:
        return False
    return new.amount <= old.amount and new.hourly <= old.hourly


def _admit_workload(request: Request, gate: Gate) -> Decision:
    try:
        workload = _read(request, request.obj)
        before = _read(request, request.old) if request.old is not None else None
    except ManifestError as exc:
        return _deny(f"costgov cannot read this {request.kind}: {exc}", 400)
    if not workload.uses_gpus and (before is None or not before.uses_gpus):
        return Decision(True)
    by_costgov = gate.self_user is not None and request.user == gate.self_user
    if before is not None:
        guarded = guard_suspension(before, workload, by_costgov=by_costgov)
        if guarded is not None:
            return _deny(f"costgov denied this request: {guarded.rule}: {guarded.message}")
    if judged_through_owner(workload, request.user, trusted=gate.trusted, self_user=gate.self_user):
        return Decision(True)
    if before is not None and _costs_no_more(before, workload, gate):
        return Decision(True)  # an update that costs no more: nothing new to judge
    found = judge(Submission(workload, submitter=request.user), gate.situation)
    return _decide(found, request.dryrun)


def _replicas(obj: Mapping[str, Any] | None) -> int | None:
    spec = (obj or {}).get("spec")
    value = spec.get("replicas") if isinstance(spec, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _admit_scale(request: Request, gate: Gate) -> Decision:
    """`kubectl scale` and autoscalers: the workload judged at the new replica count."""
    meta = request.metadata
    key = (request.kind, str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
    workload = gate.workloads.get(key)
    wanted, before = _replicas(request.obj), _replicas(request.old)
    if wanted is None or wanted < 0:
        return _deny("costgov cannot read this Scale: spec.replicas: expected a whole number", 400)
    if workload is None or (before is not None and wanted <= before):
        return Decision(True)  # not GPU work costgov knows, or it costs no more
    scaled = at_scale(workload, wanted)
    return _decide(
        judge(Submission(scaled, submitter=request.user), gate.situation), request.dryrun
    )


def _decide(found: Judgement, dryrun: bool) -> Decision:
    wl = found.submission.workload
    denials, warnings, audit = [], [], []
    for v in found.verdicts:
        for x in v.violations:
            line = f"[CostPolicy {v.policy}, {v.mode}] {x.rule}: {x.message}"
            if v.action == "deny" and x.severity == "error":
                denials.append(line)
            elif v.action == "audit":
                seen = ViolationSeen(wl.kind, wl.namespace, wl.name, x.rule, x.severity, x.message)
                audit.append((v.policy, seen))
            else:
                warnings.append(f"costgov {line}")
    if denials:
        message = "costgov denied this request: " + " | ".join(denials)
        return Decision(False, message, 403, tuple(warnings), (), found.verdicts)
    admitted = None
    if found.budget is not None and found.estimate.amount is not None and not dryrun:
        key = (wl.namespace, found.budget.metadata.name)
        admitted = (key, wl.name, found.estimate.amount)
    return Decision(
        True, "", 200, tuple(warnings), () if dryrun else tuple(audit), found.verdicts, admitted
    )


def _model(request: Request, obj: Mapping[str, Any]) -> Resource:
    fields = {k: v for k, v in obj.items() if k in ("apiVersion", "kind", "metadata", "spec")}
    model: type[Resource] = _MODELS[request.kind]
    return model.model_validate({**fields, "kind": request.kind})


def _admit_resource(request: Request, gate: Gate) -> Decision:
    name = request.metadata.get("name", "?")
    try:
        resource = _model(request, request.obj)
    except ValidationError as exc:
        problems = describe_validation_error(exc, root=f"{request.kind}/{name}")
        return _deny("costgov: invalid " + "; ".join(problems), 422)
    if isinstance(resource, CostPolicy):
        return Decision(True)
    old: Holder | None = None
    if request.old is not None:
        try:
            stored = _model(request, request.old)
        except ValidationError:
            stored = None  # what was stored no longer validates: judge the new object alone
        old = stored if stored is not None and not isinstance(stored, CostPolicy) else None
    refused = _requester_rules(request, resource, old)
    if refused is not None:
        return refused
    check = _signatures(request, resource, old, gate)
    if not check.allowed:
        return check
    if isinstance(resource, InferenceDeployment):
        return _admit_inference(request, resource, old, gate, check.warnings)
    return check


def _requester_rules(request: Request, resource: Holder, old: Holder | None) -> Decision | None:
    requested_by = resource.spec.requested_by
    if request.operation == "CREATE" and requested_by not in (None, request.user):
        return _deny(
            f"costgov: spec.requestedBy must be the requesting user ({request.user}), "
            f"not {requested_by}"
        )
    if old is not None and old.spec.requested_by != requested_by:
        return _deny("costgov: spec.requestedBy cannot change after creation")
    return None


def _signatures(request: Request, resource: Holder, old: Holder | None, gate: Gate) -> Decision:
    spec = resource.spec
    requester = spec.requested_by or (request.user if request.operation == "CREATE" else None)
    sit, namespace = gate.situation, resource.metadata.namespace or "default"
    labels = resource.metadata.labels if isinstance(resource, InferenceDeployment) else None
    check = authenticate(
        old=signatures(old.spec.approval, old.spec.approvals) if old else (),
        new=signatures(spec.approval, spec.approvals),
        user=request.user,
        groups=request.groups,
        requester=requester,
        candidates=candidates(
            sit.policies, namespace, sit.namespace_labels(namespace), sit.excluded, labels
        ),
        changed=covered_changes(old.spec, spec) if old is not None else (),
    )
    if not check.ok:
        where = f"{request.kind}/{resource.metadata.name}"
        return _deny(f"costgov: approval refused on {where}: {check.reason}")
    return Decision(True, warnings=tuple(f"costgov: {w}" for w in check.warnings))


def _admit_inference(
    request: Request,
    idep: InferenceDeployment,
    old: Holder | None,
    gate: Gate,
    warnings: tuple[str, ...],
) -> Decision:
    workload = inference_workload(idep)
    if isinstance(old, InferenceDeployment) and _costs_no_more(
        inference_workload(old), workload, gate
    ):
        return Decision(True, warnings=warnings)
    found = judge(Submission(workload, submitter=request.user, inference=idep), gate.situation)
    decision = _decide(found, request.dryrun)
    return Decision(
        decision.allowed,
        decision.message,
        decision.code,
        warnings + decision.warnings,
        decision.audit,
        decision.verdicts,
    )
