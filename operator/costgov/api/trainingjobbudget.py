"""TrainingJobBudget: a dollar budget for a training effort spanning many Jobs (namespaced)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from costgov.api.advice import MAX_RECOMMENDATIONS, Recommendation
from costgov.api.approvals import MAX_SIGNATURES, Approval, ApprovalState
from costgov.api.common import Accounting, Resource, ResourceInfo, StatusBase
from costgov.api.fields import Duration, LabelSelector, Money, SignedMoney, Spec
from costgov.api.gpus import GPUModelName

__all__ = [
    "BUDGET_LABEL",
    "Approval",
    "BudgetPhase",
    "CapacityPreference",
    "JobLine",
    "SpotRecommendation",
    "TrainingHints",
    "TrainingJobBudget",
    "TrainingJobBudgetSpec",
    "TrainingJobBudgetStatus",
]

CapacityPreference = Literal["spot", "on-demand", "any"]
BudgetPhase = Literal["Pending", "Approved", "Active", "Exhausted", "Completed"]

BUDGET_LABEL = "costgov.io/budget"
"""Jobs opt in to a TrainingJobBudget by carrying this label with the budget's name."""


class TrainingHints(Spec):
    """What the Jobs are expected to run on, used to price them before they are scheduled."""

    gpu_model: GPUModelName | None = Field(
        default=None, max_length=128, description="Expected GPU model, e.g. H100."
    )
    instance_type: str | None = Field(
        default=None, description="Expected instance type, e.g. p5.48xlarge."
    )
    capacity_type: CapacityPreference = Field(
        default="any", description="Expected capacity: spot, on-demand or any."
    )
    provider: str | None = Field(default=None, description="Cloud provider: aws, gcp, azure.")
    region: str | None = Field(default=None, description="Region, e.g. us-east-1.")


class TrainingJobBudgetSpec(Spec):
    """The budget and the Jobs it covers."""

    amount: Money = Field(description="Budget in USD for the whole training effort.")
    selector: LabelSelector = Field(
        description=f"Jobs covered, by label; Jobs opt in with the label {BUDGET_LABEL}=<name>."
    )
    hints: TrainingHints = Field(
        default_factory=TrainingHints, description="Pricing hints for unscheduled Jobs."
    )
    checkpointing: bool = Field(
        default=False,
        description="The Jobs checkpoint and survive preemption, so they are spot candidates.",
    )
    max_duration: Duration | None = Field(
        default=None,
        description="Longest a covered Job may run (Go duration or seconds); prices Jobs "
        "without activeDeadlineSeconds.",
    )
    approval: Approval | None = Field(
        default=None, description="One approver's signature (shorthand for one-signer tiers)."
    )
    approvals: list[Approval] = Field(
        default_factory=list,
        max_length=MAX_SIGNATURES,
        description="Signatures, one per approver, for tiers that need several sign-offs; "
        "spec.approval counts as one of them.",
    )
    requested_by: str | None = Field(
        default=None,
        max_length=253,
        description="Who asked for the budget (the creating user); nobody approves their "
        "own request. Required before anyone can approve.",
    )


class JobLine(Spec):
    """One covered Job's cost."""

    name: str = Field(description="Job name.")
    gpus: int = Field(ge=0, description="GPUs held across the Job's pods.")
    hours: str = Field(description="Hours run (estimated before the Job runs).")
    cost: Money = Field(description="USD.")
    priced_as: str = Field(default="", description="Instance type and capacity priced.")


class SpotRecommendation(Spec):
    """What spot capacity would save."""

    instance_type: str = Field(description="Instance type priced.")
    on_demand_cost: Money = Field(description="USD on demand.")
    spot_cost: Money = Field(description="USD on spot, including the interruption overhead.")
    saving: Money = Field(description="USD saved.")
    saving_percent: int = Field(description="Percent saved.")
    assumption: str = Field(description="The interruption overhead assumed.")


class TrainingJobBudgetStatus(StatusBase):
    """What the operator observed for a TrainingJobBudget."""

    phase: BudgetPhase | None = Field(default=None, description="For humans.")
    estimated: Money | None = Field(default=None, description="Estimated USD of covered Jobs.")
    spent: Money | None = Field(default=None, description="USD spent to date.")
    remaining: SignedMoney | None = Field(
        default=None, description="amount - spent, in USD; negative when overspent."
    )
    burn_rate_per_hour: Money | None = Field(default=None, description="USD per hour now.")
    projected_total: Money | None = Field(default=None, description="USD projected in total.")
    projected_exhaustion: datetime | None = Field(
        default=None, description="When the budget runs out at the current burn rate."
    )
    idle_gpu_cost: Money | None = Field(default=None, description="USD paid for idle GPUs.")
    last_threshold_crossed: int | None = Field(
        default=None, description="The highest of 50/80/95/100 % of the budget spent so far."
    )
    approvals: list[ApprovalState] = Field(
        default_factory=list,
        max_length=8,
        description="Per governing policy: the sign-offs required, given and missing.",
    )
    suspended_jobs: list[str] = Field(
        default_factory=list, max_length=200, description="Jobs the operator suspended."
    )
    jobs: list[JobLine] = Field(default_factory=list, max_length=200, description="Per Job.")
    spot_recommendation: SpotRecommendation | None = Field(default=None)
    recommendations: list[Recommendation] = Field(
        default_factory=list,
        max_length=MAX_RECOMMENDATIONS,
        description="Right-sizing for its running Jobs' GPUs, with evidence and monthly dollars.",
    )
    figures_as_of: datetime | None = Field(
        default=None, description="When the spend figures were last computed."
    )
    accounting: Accounting | None = Field(
        default=None, description="Internal: exact running totals behind the figures."
    )


class TrainingJobBudget(Resource):
    """A TrainingJobBudget object."""

    INFO = ResourceInfo(
        kind="TrainingJobBudget",
        plural="trainingjobbudgets",
        singular="trainingjobbudget",
        short_names=["tjb"],
        scope="Namespaced",
        description="A dollar budget for a training effort that may span many Jobs.",
        printer_columns=[
            {"name": "Budget", "type": "string", "jsonPath": ".spec.amount", "description": "USD"},
            {
                "name": "Spent",
                "type": "string",
                "jsonPath": ".status.spent",
                "description": "USD spent to date",
            },
            {
                "name": "Remaining",
                "type": "string",
                "jsonPath": ".status.remaining",
                "description": "USD left",
            },
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )

    kind: Literal["TrainingJobBudget"]
    spec: TrainingJobBudgetSpec
    status: TrainingJobBudgetStatus = Field(default_factory=TrainingJobBudgetStatus)
