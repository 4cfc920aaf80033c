"""CostApproval: approvers' sign-off for one workload of any kind (namespaced).

Jobs can be approved on the TrainingJobBudget that covers them and an InferenceDeployment on
itself; a CostApproval approves anything a tier can deny, including Pods, Deployments and
StatefulSets, which have no costgov field of their own. The requester creates it, naming the
workload; each approver adds a signature under their own name; the workload is then admitted
while the signatures are valid.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import ConfigDict, Field, model_validator

from costgov.api.approvals import MAX_SIGNATURES, Approval, ApprovalState
from costgov.api.common import Resource, ResourceInfo, StatusBase
from costgov.api.fields import LabelSelector, Spec

__all__ = [
    "APPROVABLE_KINDS",
    "ApprovalTarget",
    "BoundWorkload",
    "CostApproval",
    "CostApprovalSpec",
    "CostApprovalStatus",
]

ApprovableKind = Literal[
    "Job", "CronJob", "Pod", "Deployment", "StatefulSet", "ReplicaSet", "InferenceDeployment",
    "PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "PaddleJob", "JAXJob", "JobSet",
    "LeaderWorkerSet", "RayJob", "RayCluster",
]  # fmt: skip
APPROVABLE_KINDS: tuple[str, ...] = get_args(ApprovableKind)
ApprovalPhase = Literal["Pending", "Approved", "Expired", "Used"]


class ApprovalTarget(Spec):
    """The workload approved: a kind and either its name or a label selector (for workloads
    whose names are generated)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.name) != has(self.selector)",
                    "message": "target names the workload by name or by selector, not both",
                }
            ]
        }
    )

    kind: ApprovableKind = Field(description="Kind of the workload, e.g. Deployment.")
    name: str | None = Field(
        default=None, min_length=1, max_length=253, description="Name of the workload."
    )
    selector: LabelSelector | None = Field(
        default=None, description="Or: the workloads of that kind whose labels match."
    )

    @model_validator(mode="after")
    def _name_or_selector(self) -> ApprovalTarget:
        if (self.name is None) == (self.selector is None):
            raise ValueError("target names the workload by name or by selector, not both")
        return self


class CostApprovalSpec(Spec):
    """What is approved, for whom, and the signatures."""

    target: ApprovalTarget = Field(description="The workload this approval is for.")
    requested_by: str = Field(
        min_length=1,
        max_length=253,
        description="Who asks (must be the creating user); nobody approves their own request.",
    )
    reason: str = Field(default="", max_length=1024, description="Why the work is needed.")
    approval: Approval | None = Field(
        default=None, description="One approver's signature (shorthand for one-signer tiers)."
    )
    approvals: list[Approval] = Field(
        default_factory=list,
        max_length=MAX_SIGNATURES,
        description="Signatures, one per approver; spec.approval counts as one of them.",
    )


class BoundWorkload(Spec):
    """The workload a selector-target CostApproval's signatures were used for."""

    name: str = Field(min_length=1, max_length=253, description="Its name.")
    uid: str | None = Field(default=None, max_length=128, description="Its metadata.uid.")

    def same(self, name: str, uid: str | None) -> bool:
        """Whether a workload is this one: the same uid when both are known, else name."""
        return self.uid == uid if self.uid and uid else self.name == name


class CostApprovalStatus(StatusBase):
    """What the operator judged of the approval."""

    phase: ApprovalPhase | None = Field(default=None, description="For humans.")
    approvals: list[ApprovalState] = Field(
        default_factory=list,
        max_length=8,
        description="Per governing policy: the sign-offs required, given and missing.",
    )
    bound_to: BoundWorkload | None = Field(
        default=None,
        description="For a selector target: the one workload these signatures approve, the "
        "first admitted on them (recorded by the webhook before it answers). They approve no "
        "other workload, ever (not another the selector matches, not a new object of the "
        "same name); another needs a CostApproval of its own.",
    )


class CostApproval(Resource):
    """A CostApproval object."""

    INFO = ResourceInfo(
        kind="CostApproval",
        plural="costapprovals",
        singular="costapproval",
        short_names=["capr"],
        scope="Namespaced",
        description="Approvers' sign-off for one workload (Job, Pod, Deployment, StatefulSet "
        "or InferenceDeployment).",
        printer_columns=[
            {"name": "Kind", "type": "string", "jsonPath": ".spec.target.kind"},
            {"name": "Target", "type": "string", "jsonPath": ".spec.target.name"},
            {"name": "Requested-By", "type": "string", "jsonPath": ".spec.requestedBy"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )

    kind: Literal["CostApproval"]
    spec: CostApprovalSpec
    status: CostApprovalStatus = Field(default_factory=CostApprovalStatus)
