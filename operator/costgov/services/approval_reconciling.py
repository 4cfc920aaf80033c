"""Reconcile a CostApproval: who signed, what counts, what is missing for its target (when
costgov sees the target run), and a phase for humans."""

from __future__ import annotations

from costgov.api import CostApproval
from costgov.api.costapproval import BoundWorkload, CostApprovalStatus
from costgov.domain.judging import Situation, Submission, judge
from costgov.domain.resources import inference_workload
from costgov.domain.scoping import bound_workload, signatures
from costgov.domain.selectors import matches
from costgov.domain.workloads import Workload
from costgov.services.approval_states import approval_states
from costgov.services.conditions import condition, merge_conditions
from costgov.services.inventory import Inventory
from costgov.services.outcomes import Outcome

__all__ = ["reconcile_approval"]


def _target(approval: CostApproval, inv: Inventory, bound: BoundWorkload | None) -> Workload | None:
    """The running workload the approval names (for a selector, the one its signatures are
    bound to, or else the oldest it matches), when costgov watches its kind."""
    target, ns = approval.spec.target, approval.metadata.namespace or "default"
    candidates: list[Workload] = []
    if target.kind == "Job":
        candidates = [j.workload for j in inv.jobs_in(ns)]
    elif target.kind == "Pod":  # pods judged by themselves (a Job's are approved through it)
        candidates = [p.workload for p in inv.pods if p.namespace == ns and p.workload is not None]
    elif target.kind == "InferenceDeployment":
        candidates = [inference_workload(i) for i in inv.inference if i.metadata.namespace == ns]
    else:
        candidates = [w for w in inv.workloads if w.kind == target.kind and w.namespace == ns]
    if target.name is not None:
        return next((wl for wl in candidates if wl.name == target.name), None)
    if bound is not None:
        return next((wl for wl in candidates if bound.same(wl.name, wl.uid)), None)
    matching = [wl for wl in candidates if matches(target.selector, wl.labels)]
    return min(
        matching, key=lambda wl: (wl.created is None, wl.created or 0, wl.name), default=None
    )


def _judged_through_owner(approval: CostApproval, inv: Inventory) -> str | None:
    """The pod a Pod approval names (or its selector matches) that runs under a controller
    costgov judges it through (its record keeps no workload: services/inventory.py)."""
    target, ns = approval.spec.target, approval.metadata.namespace or "default"
    if target.kind != "Pod":
        return None
    for pod in inv.pods:
        if pod.namespace != ns or pod.workload is not None:
            continue
        if pod.name == target.name or (
            target.name is None and matches(target.selector, pod.labels)
        ):
            return pod.name
    return None


def reconcile_approval(
    approval: CostApproval, inv: Inventory, *, situation: Situation, old: CostApprovalStatus
) -> Outcome[CostApprovalStatus]:
    gen, now = approval.metadata.generation or 0, situation.now
    signed = signatures(approval.spec.approval, approval.spec.approvals)
    bound = old.bound_to or bound_workload(approval, situation.spend.bound)
    target = _target(approval, inv, bound)
    states = []
    if target is not None:
        idep = next((i for i in inv.inference if target.kind == "InferenceDeployment" and i.metadata.name == target.name and i.metadata.namespace == target.namespace), None)  # fmt: skip
        states = approval_states(judge(Submission(target, inference=idep), situation))
    if bound is not None and target is None:
        phase = "Used"
        message = f"its signatures were used for {approval.spec.target.kind} {bound.name}, which is not running: they approve no other workload"
    elif signed and all(s.expires <= now for s in signed):
        phase, message = "Expired", "every signature has expired"
    elif target is None and (owned := _judged_through_owner(approval, inv)) is not None:
        phase = "Pending"
        message = (
            f"pod {owned} runs under a controller whose pods costgov judges through it (a Job, "
            "ReplicaSet, StatefulSet...): approve the controller; signatures here count only "
            "for a pod its controller did not create"
        )
    elif target is None:
        phase = "Pending"
        message = "the target is not running (or its kind is not watched): signatures are judged when it is admitted"
    elif all(s.satisfied for s in states):
        phase, message = "Approved", "every required sign-off is given"
    else:
        phase, message = (
            "Pending",
            "; ".join(
                f"missing {', '.join(s.missing)} for CostPolicy {s.policy}"
                for s in states
                if not s.satisfied
            ),
        )
    ready = condition("Ready", phase == "Approved", phase, message, generation=gen, now=now)
    status = CostApprovalStatus(
        observed_generation=gen,
        phase=phase,
        approvals=states,
        conditions=merge_conditions(old.conditions, [ready]),
    )
    return Outcome(status)
