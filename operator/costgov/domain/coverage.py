"""What an approval covers, and which changes to the object carrying it need it again.

An approval is given for an object as it stands: a TrainingJobBudget's amount, the Jobs it
selects and the hints that price them; an InferenceDeployment's GPUs, replicas, capacity
and budget; a CostApproval's target. Changing any of these (raising, for amounts) makes
the signatures given before no longer hold.
"""

from __future__ import annotations

from costgov.api.costapproval import CostApprovalSpec
from costgov.api.inferencedeployment import InferenceDeploymentSpec
from costgov.api.trainingjobbudget import TrainingJobBudgetSpec

__all__ = ["covered_changes"]

Covering = TrainingJobBudgetSpec | InferenceDeploymentSpec | CostApprovalSpec


def _budget(old: TrainingJobBudgetSpec, new: TrainingJobBudgetSpec) -> list[str]:
    out = []
    if new.amount > old.amount:
        out.append("spec.amount (raised)")
    for name, wire in (
        ("selector", "spec.selector"),
        ("hints", "spec.hints"),
        ("max_duration", "spec.maxDuration"),
        ("checkpointing", "spec.checkpointing"),
        ("requested_by", "spec.requestedBy"),
    ):
        if getattr(old, name) != getattr(new, name):
            out.append(wire)
    return out


def _inference(old: InferenceDeploymentSpec, new: InferenceDeploymentSpec) -> list[str]:
    out = []
    if old.gpu != new.gpu:
        out.append("spec.gpu")
    if new.replicas.max > old.replicas.max:
        out.append("spec.replicas.max (raised)")
    if old.capacity_type != new.capacity_type:
        out.append("spec.capacityType")
    if (new.monthly_budget or 0) > (old.monthly_budget or 0) or (
        old.monthly_budget is not None and new.monthly_budget is None
    ):
        out.append("spec.monthlyBudget (raised)")
    if old.requested_by != new.requested_by:
        out.append("spec.requestedBy")
    return out


def covered_changes(old: Covering, new: Covering) -> list[str]:
    """The fields whose change voids the signatures given before (wire spelling)."""
    if isinstance(old, TrainingJobBudgetSpec) and isinstance(new, TrainingJobBudgetSpec):
        return _budget(old, new)
    if isinstance(old, InferenceDeploymentSpec) and isinstance(new, InferenceDeploymentSpec):
        return _inference(old, new)
    if isinstance(old, CostApprovalSpec) and isinstance(new, CostApprovalSpec):
        changed = [] if old.target == new.target else ["spec.target"]
        return changed + ([] if old.requested_by == new.requested_by else ["spec.requestedBy"])
    raise TypeError(f"cannot compare {type(old).__name__} with {type(new).__name__}")
