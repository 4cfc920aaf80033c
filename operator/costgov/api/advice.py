"""Recommendations in status: a way to spend less, its dollars and what it rests on."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from costgov.api.fields import Money, Spec

__all__ = ["MAX_RECOMMENDATIONS", "ApiUnitCost", "Recommendation", "RecommendationEvidence"]

MAX_RECOMMENDATIONS = 10

RecommendationKind = Literal[
    "spot", "idle-gpu", "smaller-gpu", "mig", "share-gpu", "fewer-replicas", "batching", "quantisation",
    "scale-to-zero", "prefix-caching", "hosted-api",
]  # fmt: skip


class RecommendationEvidence(Spec):
    """A measured figure a recommendation rests on."""

    metric: str = Field(max_length=128, description="The metric (and how it was reduced).")
    window: str = Field(max_length=32, description="How far back it was read, e.g. 24h.")
    value: str = Field(max_length=64, description="What it measured.")


class Recommendation(Spec):
    """A way to spend less."""

    kind: RecommendationKind = Field(description="What to change.")
    workload: str | None = Field(
        default=None, max_length=253, description="Which workload it is about (a budget's Job)."
    )
    message: str = Field(max_length=512, description="The recommendation in words.")
    monthly_saving: Money | None = Field(
        default=None,
        description="USD saved per month at the current rate (absent: not estimable, the "
        "message says why). Savings of one workload's recommendations do not add up.",
    )
    evidence: list[RecommendationEvidence] = Field(
        default_factory=list, max_length=8, description="What it rests on."
    )


class ApiUnitCost(Spec):
    """A gateway team's hosted-API spend over the last hour, and its unit costs."""

    team: str = Field(max_length=253, description="The gateway team (empty: none named).")
    gateway: str = Field(max_length=32, description="litellm, opentelemetry, agentgateway, kong.")
    hourly_cost: Money = Field(description="USD over the last hour (priced lines).")
    tokens: int = Field(ge=0, description="Input (cached included) plus output tokens.")
    requests: int | None = Field(
        default=None, ge=0, description="Requests its gateway counted (absent: not read)."
    )
    cost_per_million_tokens: str | None = Field(
        default=None, pattern=r"^[0-9]+\.[0-9]{4}$", description="USD per 1M tokens."
    )
    cost_per_thousand_requests: str | None = Field(
        default=None, pattern=r"^[0-9]+\.[0-9]{4}$", description="USD per 1k requests."
    )
