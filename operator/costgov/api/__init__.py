"""The costgov API: pydantic models of the three CRDs, the single source of truth.

`crds/` is generated from these models (see `costgov.api.crdgen`).
"""

from costgov.api.approvals import Approval, ApprovalState
from costgov.api.common import API_VERSION, GROUP, VERSION, ObjectMeta, ObjectRef, ViolationRecord
from costgov.api.costapproval import CostApproval, CostApprovalSpec, CostApprovalStatus
from costgov.api.costpolicy import CostPolicy, CostPolicySpec, CostPolicyStatus
from costgov.api.fields import Condition, LabelSelector, parse_duration, parse_money
from costgov.api.inferencedeployment import (
    InferenceDeployment,
    InferenceDeploymentSpec,
    InferenceDeploymentStatus,
)
from costgov.api.trainingjobbudget import (
    BUDGET_LABEL,
    TrainingJobBudget,
    TrainingJobBudgetSpec,
    TrainingJobBudgetStatus,
)

RESOURCES = (CostPolicy, TrainingJobBudget, InferenceDeployment, CostApproval)

__all__ = [
    "API_VERSION",
    "BUDGET_LABEL",
    "GROUP",
    "RESOURCES",
    "VERSION",
    "Approval",
    "ApprovalState",
    "Condition",
    "CostApproval",
    "CostApprovalSpec",
    "CostApprovalStatus",
    "CostPolicy",
    "CostPolicySpec",
    "CostPolicyStatus",
    "InferenceDeployment",
    "InferenceDeploymentSpec",
    "InferenceDeploymentStatus",
    "LabelSelector",
    "ObjectMeta",
    "ObjectRef",
    "TrainingJobBudget",
    "TrainingJobBudgetSpec",
    "TrainingJobBudgetStatus",
    "ViolationRecord",
    "parse_duration",
    "parse_money",
]
