"""InferenceDeployment: a model server the operator runs and prices (namespaced)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from costgov.api.advice import MAX_RECOMMENDATIONS, Recommendation
from costgov.api.approvals import MAX_SIGNATURES, Approval, ApprovalState
from costgov.api.common import Resource, ResourceInfo, StatusBase
from costgov.api.fields import Money, Percent, Spec
from costgov.api.gpus import GPUModelName
from costgov.api.trainingjobbudget import CapacityPreference

__all__ = [
    "GPURequest",
    "InferenceDeployment",
    "InferenceDeploymentSpec",
    "InferenceDeploymentStatus",
    "Recommendation",
    "Replicas",
    "TokenMetrics",
]


class Replicas(Spec):
    """How many model-server replicas may run."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self.min <= self.max", "message": "replicas.min must not exceed max"}
            ]
        }
    )

    min: int = Field(default=1, ge=0, le=1000, description="Fewest replicas, never capped below.")
    max: int = Field(default=1, ge=0, le=1000, description="Most replicas.")

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Replicas:
        if self.min > self.max:
            raise ValueError(f"replicas.min ({self.min}) must not exceed replicas.max ({self.max})")
        return self


class GPURequest(Spec):
    """GPUs per replica."""

    model: GPUModelName = Field(
        min_length=1, max_length=128, description="GPU model, e.g. L4, A10G, H100."
    )
    count: int = Field(default=1, ge=1, le=16, description="GPUs per replica.")
    instance_type: str | None = Field(
        default=None, description="Pin an instance type; otherwise the smallest that fits."
    )


class TokenMetrics(Spec):
    """PromQL that counts tokens and requests; defaults read vLLM's metrics."""

    tokens_query: str | None = Field(
        default=None,
        description="PromQL giving tokens per second for this server; default sums "
        "vllm:prompt_tokens_total and vllm:generation_tokens_total rates.",
    )
    requests_query: str | None = Field(
        default=None,
        description="PromQL giving requests per second; default rates vllm:request_success_total.",
    )


class InferenceDeploymentSpec(Spec):
    """The model server to run, and what it may cost."""

    image: str = Field(min_length=1, description="Container image of the server (vLLM-style).")
    args: list[str] = Field(default_factory=list, description="Container arguments.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the server listens on.")
    replicas: Replicas = Field(default_factory=Replicas, description="Replica bounds.")
    gpu: GPURequest = Field(description="GPU model and count per replica.")
    capacity_type: CapacityPreference = Field(default="any", description="spot, on-demand or any.")
    monthly_budget: Money | None = Field(
        default=None, description="USD per month (730 h); replicas are capped to fit it."
    )
    target_cost_per_million_tokens: Money | None = Field(
        default=None, description="Target USD per 1M tokens."
    )
    hosted_api_price_per_million_tokens: Money | None = Field(
        default=None, description="A hosted API's USD per 1M tokens, for comparison."
    )
    model: str | None = Field(
        default=None,
        max_length=253,
        description="The model served, as its hub names it (e.g. "
        "meta-llama/Llama-3.1-8B-Instruct); default: the --model argument in args. Without "
        "replacesHostedModel, status.buildVsBuy compares the server with the cheapest hosted "
        "model nearest to it by family and size.",
    )
    replaces_hosted_model: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[a-zA-Z0-9._-]+/[a-zA-Z0-9._:/-]+$",
        description="The hosted model this server replaces, provider/model (e.g. "
        "openai/gpt-4o-mini): status.buildVsBuy compares them at the measured volume.",
    )
    hosted_input_share_percent: Percent = Field(
        default=75,
        description="Share of input (prompt) tokens assumed when pricing the hosted model "
        "per 1M tokens (hosted models charge input and output apart).",
    )
    metrics: TokenMetrics = Field(default_factory=TokenMetrics, description="Token metrics.")
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
        description="Who asked for it (the creating user); nobody approves their own request.",
    )


class BuildVsBuyStatus(Spec):
    """Self-hosting against the hosted model it replaces, at the measured volume."""

    hosted_model: str = Field(description="provider/model as priced.")
    picked: str | None = Field(
        default=None,
        max_length=512,
        description="How the operator picked the hosted model when spec.replacesHostedModel "
        "names none.",
    )
    price_source: str | None = Field(default=None, description="Where the hosted price is from.")
    note: str | None = Field(default=None, description="Why a figure is missing.")
    priced_as: str | None = Field(
        default=None, description="provider/model the price list matched (genai-prices ids)."
    )
    hosted_per_million_tokens: str | None = Field(
        default=None,
        pattern=r"^[0-9]+\.[0-9]{4}$",
        description="Hosted USD per 1M tokens at hostedInputSharePercent, to 4 places (the "
        "figure the monthly cost and the crossover are computed with).",
    )
    self_hosted_per_million_tokens: Money | None = Field(default=None, description="Measured.")
    monthly_tokens: int | None = Field(
        default=None, ge=0, description="Tokens a month at the trailing hour's volume."
    )
    hosted_monthly_cost: Money | None = Field(default=None, description="That volume, hosted.")
    self_hosted_monthly_cost: Money | None = Field(default=None, description="$/h now x 730.")
    cheaper: Literal["self-hosted", "hosted", "neither"] | None = Field(default=None)
    monthly_difference: Money | None = Field(
        default=None, description="USD a month the cheaper option saves at this volume."
    )
    crossover_monthly_tokens: int | None = Field(
        default=None, ge=0, description="Monthly tokens above which self-hosting is cheaper."
    )


class InferenceDeploymentStatus(StatusBase):
    """What the operator observed for an InferenceDeployment."""

    ready_replicas: int = Field(default=0, ge=0, description="Replicas ready.")
    replicas: int = Field(default=0, ge=0, description="Replicas wanted (after any cap).")
    capped_replicas: int | None = Field(
        default=None, description="Replicas the budget affords, when it caps."
    )
    hourly_cost: Money | None = Field(default=None, description="USD per hour now.")
    projected_monthly_cost: Money | None = Field(default=None, description="USD per 730 h.")
    cost_per_million_tokens: Money | None = Field(default=None, description="Measured.")
    cost_per_thousand_requests: Money | None = Field(default=None, description="Measured.")
    gpu_utilization_percent: int | None = Field(default=None, ge=0, le=100)
    idle_gpu_cost: Money | None = Field(
        default=None, description="USD per month paid for idle GPUs at the current utilisation."
    )
    figures_as_of: datetime | None = Field(
        default=None, description="When the figures were last computed."
    )
    approvals: list[ApprovalState] = Field(
        default_factory=list,
        max_length=8,
        description="Per governing policy: the sign-offs required, given and missing.",
    )
    recommendations: list[Recommendation] = Field(
        default_factory=list,
        max_length=MAX_RECOMMENDATIONS,
        description="Ways to spend less, with their evidence and monthly dollars.",
    )
    build_vs_buy: BuildVsBuyStatus | None = Field(
        default=None, description="Against spec.replacesHostedModel, when set."
    )


class InferenceDeployment(Resource):
    """An InferenceDeployment object."""

    INFO = ResourceInfo(
        kind="InferenceDeployment",
        plural="inferencedeployments",
        singular="inferencedeployment",
        short_names=["idep"],
        scope="Namespaced",
        description="A model server the operator runs and prices.",
        printer_columns=[
            {"name": "GPU", "type": "string", "jsonPath": ".spec.gpu.model"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
            {"name": "$/Hour", "type": "string", "jsonPath": ".status.hourlyCost"},
            {"name": "$/Month", "type": "string", "jsonPath": ".status.projectedMonthlyCost"},
            {"name": "Budget", "type": "string", "jsonPath": ".spec.monthlyBudget"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )

    kind: Literal["InferenceDeployment"]
    spec: InferenceDeploymentSpec
    status: InferenceDeploymentStatus = Field(default_factory=InferenceDeploymentStatus)
