"""CostPolicy: the platform team's cost rules for a scope (cluster-scoped)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from costgov.api.advice import ApiUnitCost
from costgov.api.common import Accounting, Resource, ResourceInfo, StatusBase
from costgov.api.fields import LabelSelector, Money, Percent, Spec
from costgov.api.gpus import GPUModelName

__all__ = [
    "ApprovalTier",
    "Approvers",
    "Budget",
    "CostPolicy",
    "CostPolicySpec",
    "CostPolicyStatus",
    "Limits",
    "Mode",
    "OnExceeded",
    "Scope",
    "Signoff",
    "SpotRules",
    "Unpriced",
]

Mode = Literal["enforce", "warn", "audit"]
OnExceeded = Literal["alert", "block-new", "suspend"]
Unpriced = Literal["deny", "warn", "allow"]
Source = Literal["gpu", "api"]


def _strictly_ascending(values: Sequence[Decimal | int], what: str) -> None:
    for before, after in itertools.pairwise(values):
        if not before < after:
            raise ValueError(f"{what} must be strictly ascending, got {before} before {after}")


class Scope(Spec):
    """Which workloads a policy governs."""

    namespace_selector: LabelSelector = Field(
        default_factory=LabelSelector,
        description="Namespaces in scope, by their labels; empty means every namespace "
        "(kube-system and the operator's namespace are never governed).",
    )
    workload_selector: LabelSelector | None = Field(
        default=None,
        description="Optional: only workloads whose labels match are in scope.",
    )


def _gpu_only() -> list[Source]:
    return ["gpu"]


class Budget(Spec):
    """A dollar budget per period for everything in scope."""

    amount: Money = Field(description="Budget in USD per period.")
    period: Literal["monthly", "daily"] = Field(
        default="monthly", description="monthly (calendar month, UTC) or daily (UTC day)."
    )
    alert_thresholds: list[Percent] = Field(
        default_factory=lambda: [50, 80, 95, 100],
        min_length=1,
        max_length=10,
        description="Percentages of the budget at which an alert fires; strictly ascending.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(x, self.exists_one(y, y == x)) && self.isSorted()",
                    "message": "alertThresholds must be strictly ascending",
                }
            ]
        },
    )
    sources: list[Source] = Field(
        default_factory=_gpu_only,
        min_length=1,
        max_length=2,
        description="What the budget counts: gpu (GPU time of governed pods) and/or api "
        "(hosted LLM API spend that LLM gateways attribute to governed namespaces; see "
        "docs/api-spend.md). Status shows both apart either way.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(x, self.exists_one(y, y == x))",
                    "message": "sources must not repeat",
                }
            ]
        },
    )
    on_exceeded: OnExceeded = Field(
        default="alert",
        description="At 100 %: alert only; block-new denies new GPU work in scope at admission; "
        "suspend also sets spec.suspend on running Jobs in scope.",
    )

    @field_validator("alert_thresholds")
    @classmethod
    def _ascending(cls, value: list[int]) -> list[int]:
        _strictly_ascending(value, "alertThresholds")
        return value

    @field_validator("sources")
    @classmethod
    def _distinct(cls, value: list[Source]) -> list[Source]:
        if len(set(value)) != len(value):
            raise ValueError(f"sources must not repeat, got {value}")
        return value


class Approvers(Spec):
    """Users and groups allowed to give one sign-off; any one of them may."""

    users: list[str] = Field(default_factory=list, max_length=64, description="User names.")
    groups: list[str] = Field(default_factory=list, max_length=64, description="Group names.")


class Signoff(Approvers):
    """One sign-off a tier requires, e.g. a manager; given by any one of its users or groups."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="What the sign-off is called in status and messages, e.g. manager.",
    )


_TIER_RULE = (
    "(has(self.deny) && self.deny) != "
    "((has(self.approvers) && ((has(self.approvers.users) && size(self.approvers.users) > 0) || "
    "(has(self.approvers.groups) && size(self.approvers.groups) > 0))) || "
    "(has(self.signoffs) && size(self.signoffs) > 0))"
)


class ApprovalTier(Spec):
    """Workloads whose estimate is above `above` need the tier's sign-offs, or are denied.

    `approvers` asks for one sign-off from any of its users or groups; `signoffs` asks for
    several, each from a different person (e.g. a manager and a director).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": _TIER_RULE,
                    "message": "a tier either denies, or names approvers or signoffs",
                },
                {
                    "rule": "!(has(self.signoffs) && size(self.signoffs) > 0 && "
                    "has(self.approvers) && (has(self.approvers.users) || "
                    "has(self.approvers.groups)))",
                    "message": "use approvers (one sign-off) or signoffs (several), not both",
                },
            ]
        }
    )

    above: Money = Field(description="The tier applies to estimates strictly above this (USD).")
    approvers: Approvers = Field(
        default_factory=Approvers,
        description="One sign-off by any of these users or groups.",
    )
    signoffs: list[Signoff] = Field(
        default_factory=list,
        max_length=5,
        description="Several sign-offs, each by a different person, e.g. a manager and a "
        "director; all are required.",
    )
    deny: bool = Field(default=False, description="Workloads in this tier are denied outright.")

    @model_validator(mode="after")
    def _denies_or_names_approvers(self) -> ApprovalTier:
        named = bool(self.approvers.users or self.approvers.groups)
        if named and self.signoffs:
            raise ValueError("use approvers (one sign-off) or signoffs (several), not both")
        if self.deny == (named or bool(self.signoffs)):
            raise ValueError("a tier either sets deny: true, or names approvers or signoffs")
        names = [s.name for s in self.signoffs]
        if len(set(names)) != len(names):
            raise ValueError("signoffs must have distinct names")
        return self

    def required_signoffs(self) -> list[Signoff]:
        """What the tier asks for: its signoffs, or `approvers` as one sign-off."""
        return list(self._required)

    @cached_property
    def _required(self) -> tuple[Signoff, ...]:
        if self.deny:
            return ()
        if self.signoffs:
            return tuple(self.signoffs)
        return (Signoff(name="approver", users=self.approvers.users, groups=self.approvers.groups),)


class Limits(Spec):
    """Hard limits on one workload."""

    allowed_gpu_models: list[GPUModelName] = Field(
        default_factory=list,
        max_length=32,
        description="GPU models allowed (e.g. H100, A100-80GB, L4); empty allows all.",
    )
    allowed_instance_types: list[str] = Field(
        default_factory=list,
        max_length=128,
        description="Instance types allowed (e.g. p5.48xlarge); empty allows all.",
    )
    max_gpus_per_workload: int | None = Field(
        default=None, ge=1, description="Most GPUs one workload may hold across its pods."
    )
    max_hourly_cost: Money | None = Field(
        default=None, description="Most USD per hour one workload may cost."
    )
    require_max_runtime: bool = Field(
        default=False,
        description="GPU Jobs must declare spec.activeDeadlineSeconds.",
    )


class SpotRules(Spec):
    """When to recommend or require spot capacity."""

    recommend_min_savings_percent: Percent = Field(
        default=30,
        description="Recommend spot when it saves at least this percentage, after the "
        "interruption overhead costgov assumes.",
    )
    require_for_checkpointing: bool = Field(
        default=False,
        description="Workloads that declare checkpointing must run on spot capacity.",
    )


class CostPolicySpec(Spec):
    """The rules of a CostPolicy."""

    mode: Mode = Field(
        default="enforce",
        description="enforce denies violations; warn admits with warnings; audit admits "
        "and records violations.",
    )
    scope: Scope = Field(default_factory=Scope, description="Which workloads are governed.")
    budget: Budget | None = Field(default=None, description="Dollar budget for the scope.")
    approvals: list[ApprovalTier] = Field(
        default_factory=list,
        max_length=10,
        description="Approval tiers by estimated cost of one workload; ascending by `above`.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(t, self.exists_one(u, u.above == t.above))",
                    "message": "approval tiers must have distinct `above` amounts",
                }
            ]
        },
    )
    limits: Limits = Field(default_factory=Limits, description="Limits on one workload.")
    unpriced: Unpriced = Field(
        default="deny",
        description="GPU work costgov cannot price: deny (an error: enforce mode denies it, "
        "failing closed), warn (a warning) or allow (no violation).",
    )
    assume_instance_type: str | None = Field(
        default=None,
        max_length=63,
        description="Price GPU work that says nothing of its node as this instance type "
        "(e.g. p5.48xlarge) when nothing else prices it.",
    )
    spot: SpotRules = Field(default_factory=SpotRules, description="Spot capacity rules.")

    @field_validator("approvals")
    @classmethod
    def _tiers_ascending(cls, tiers: list[ApprovalTier]) -> list[ApprovalTier]:
        _strictly_ascending([t.above for t in tiers], "approvals[].above")
        return tiers


class CostPolicyStatus(StatusBase):
    """What the operator observed for a CostPolicy."""

    matched_namespaces: list[str] = Field(
        default_factory=list, max_length=1000, description="Namespaces in scope."
    )
    matched_workloads: int = Field(default=0, ge=0, description="GPU workloads in scope.")
    period: Literal["monthly", "daily"] | None = Field(
        default=None, description="The budget's period the figures are for."
    )
    period_start: datetime | None = Field(default=None, description="Start of the period.")
    spent: Money | None = Field(
        default=None, description="USD spent this period: the budget's sources, summed."
    )
    gpu_spent: Money | None = Field(
        default=None, description="USD of GPU time this period in scope (counted or not)."
    )
    api_spent: Money | None = Field(
        default=None,
        description="USD of hosted LLM API spend this period that gateways attribute to "
        "namespaces in scope (counted in `spent` when budget.sources has api).",
    )
    api_unit_costs: list[ApiUnitCost] = Field(
        default_factory=list,
        max_length=20,
        description="Hosted-API spend in scope over the last hour by gateway team (the 20 "
        "costliest), with $ per 1M tokens and per 1k requests.",
    )
    forecast: Money | None = Field(default=None, description="USD forecast at period end.")
    budget_utilization_percent: int | None = Field(
        default=None, ge=0, description="spent / budget in percent."
    )
    last_threshold_crossed: int | None = Field(
        default=None, description="The highest alert threshold crossed this period."
    )
    unpriced_pods: int | None = Field(
        default=None,
        ge=0,
        description="GPU pods in scope that could not be priced this period, left out of "
        "`spent` (a lower bound while this is above 0); the Priced condition names them.",
    )
    figures_as_of: datetime | None = Field(
        default=None, description="When the spend figures were last computed."
    )
    accounting: Accounting | None = Field(
        default=None, description="Internal: exact running totals behind `spent`."
    )


class CostPolicy(Resource):
    """A CostPolicy object."""

    INFO = ResourceInfo(
        kind="CostPolicy",
        plural="costpolicies",
        singular="costpolicy",
        short_names=["cpol"],
        scope="Cluster",
        description="Cost rules for a scope: a dollar budget, approval tiers, limits, spot rules.",
        printer_columns=[
            {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
            {"name": "Period", "type": "string", "jsonPath": ".spec.budget.period"},
            {
                "name": "Budget",
                "type": "string",
                "jsonPath": ".spec.budget.amount",
                "description": "USD per period",
            },
            {
                "name": "Spent",
                "type": "string",
                "jsonPath": ".status.spent",
                "description": "USD spent this period",
            },
            {
                "name": "Forecast",
                "type": "string",
                "jsonPath": ".status.forecast",
                "description": "USD forecast at period end",
            },
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )

    kind: Literal["CostPolicy"]
    spec: CostPolicySpec
    status: CostPolicyStatus = Field(default_factory=CostPolicyStatus)
