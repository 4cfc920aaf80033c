"""Policy evaluation: a table test per rule, and the three modes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from costgov.api.approvals import Approval
from costgov.api.costpolicy import CostPolicy
from costgov.domain.approvals import Grant
from costgov.domain.budgets import BudgetView
from costgov.domain.costing import estimate_workload
from costgov.domain.policies import Subject, evaluate
from costgov.domain.reading import workload_from_object
from costgov.domain.scoping import in_scope
from costgov.domain.verdicts import worst_action

from .helpers import CATALOG, deployment, job

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def policy(**spec: Any) -> CostPolicy:
    return CostPolicy.model_validate(
        {
            "apiVersion": "costgov.io/v1alpha1",
            "kind": "CostPolicy",
            "metadata": {"name": "p"},
            "spec": {"mode": "enforce", **spec},
        }
    )


def subject(
    manifest: dict[str, Any] | None = None, approval: Approval | None = None, **extra: Any
) -> Subject:
    est = estimate_workload(workload_from_object(manifest or job()), CATALOG)
    grants = (Grant("TrainingJobBudget ml/run-a", "bob", (approval,)),) if approval else ()
    return Subject(estimate=est, grants=grants, **extra)


# The default Job: 8 H100 on a p5.48xlarge for 72 h = 72 x 55.04 = $3,962.88, $55.04/h.
CASES = [
    ("limits.allowedGPUModels", {"limits": {"allowedGPUModels": ["A100-80GB", "L4"]}}, "error"),
    (
        "limits.allowedInstanceTypes",
        {"limits": {"allowedInstanceTypes": ["p4d.24xlarge"]}},
        "error",
    ),
    ("limits.maxGPUsPerWorkload", {"limits": {"maxGPUsPerWorkload": 4}}, "error"),
    ("limits.maxHourlyCost", {"limits": {"maxHourlyCost": 50}}, "error"),  # 55.04 > 50
    (
        "approval.required",
        {"approvals": [{"above": 1000, "approvers": {"groups": ["leads"]}}]},
        "error",
    ),
    ("approval.denied", {"approvals": [{"above": 3000, "deny": True}]}, "error"),
    ("budget.exceeded", {"budget": {"amount": 3000, "onExceeded": "block-new"}}, "error"),
    ("budget.exceeded", {"budget": {"amount": 3000, "onExceeded": "alert"}}, "warning"),
]


@pytest.mark.parametrize(("rule", "spec", "severity"), CASES)
def test_each_rule_fires_with_its_severity(rule: str, spec: dict[str, Any], severity: str) -> None:
    verdict = evaluate(policy(**spec), subject(), now=NOW)
    assert [(v.rule, v.severity) for v in verdict.violations] == [(rule, severity)]


@pytest.mark.parametrize(("rule", "spec", "severity"), CASES)
def test_each_rule_is_quiet_when_the_workload_complies(
    rule: str, spec: dict[str, Any], severity: str
) -> None:
    small = job(gpus=1, deadline=3600)  # 1/8 x 55.04 = $6.88 for one hour
    relaxed = {**spec}
    if "limits" in spec:
        relaxed = {
            "limits": {
                "allowedGPUModels": ["H100"],
                "allowedInstanceTypes": ["p5.48xlarge"],
                "maxGPUsPerWorkload": 8,
                "maxHourlyCost": 50,
            }
        }
    verdict = evaluate(policy(**relaxed), subject(small), now=NOW)
    assert verdict.violations == ()
    assert verdict.action == "allow"


def test_require_max_runtime() -> None:
    spec = policy(limits={"requireMaxRuntime": True})
    verdict = evaluate(spec, subject(job(deadline=None)), now=NOW)
    assert [v.rule for v in verdict.violations] == ["limits.requireMaxRuntime"]
    assert "activeDeadlineSeconds" in verdict.violations[0].message
    assert evaluate(spec, subject(job(deadline=60)), now=NOW).violations == ()


def test_spot_required_for_checkpointing_work() -> None:
    spec = policy(spot={"requireForCheckpointing": True})
    ckpt = job(labels={"costgov.io/checkpointing": "true"})
    verdict = evaluate(spec, subject(ckpt), now=NOW)
    assert [v.rule for v in verdict.violations] == ["spot.requireForCheckpointing"]
    on_spot = job(
        labels={"costgov.io/checkpointing": "true"},
        node_selector={
            "node.kubernetes.io/instance-type": "p5.48xlarge",
            "karpenter.sh/capacity-type": "spot",
        },
    )
    assert evaluate(spec, subject(on_spot), now=NOW).violations == ()


def test_spot_is_recommended_only_above_the_policy_threshold() -> None:
    ckpt = subject(job(labels={"costgov.io/checkpointing": "true"}))  # saves 56.6 %
    assert evaluate(policy(spot={"recommendMinSavingsPercent": 50}), ckpt, now=NOW).spot
    assert evaluate(policy(spot={"recommendMinSavingsPercent": 60}), ckpt, now=NOW).spot is None


@pytest.mark.parametrize(
    ("mode", "action"), [("enforce", "deny"), ("warn", "warn"), ("audit", "audit")]
)
def test_modes_turn_errors_into_actions(mode: str, action: str) -> None:
    spec = policy(mode=mode, limits={"maxGPUsPerWorkload": 4})
    assert evaluate(spec, subject(), now=NOW).action == action


@pytest.mark.parametrize(
    ("mode", "action"), [("enforce", "warn"), ("warn", "warn"), ("audit", "audit")]
)
def test_warnings_never_deny(mode: str, action: str) -> None:
    spec = policy(mode=mode, budget={"amount": 3000, "onExceeded": "alert"})
    assert evaluate(spec, subject(), now=NOW).action == action


def test_denial_message_names_rule_estimate_limit_and_next_step() -> None:
    spec = policy(budget={"amount": 3000, "onExceeded": "block-new"})
    (violation,) = evaluate(spec, subject(), now=NOW).violations
    # 72 h x 55.04 = 3,962.88, all of it within one month
    assert violation.message == (
        "Job/ml/train costs $3,962.88 per month (72 h at $55.04/h); the policy's monthly "
        "budget has $3,000.00 left of $3,000.00 this month (spend so far unknown: judged "
        "against the whole budget). Raise the budget or wait for the next month"
    )
    assert violation.figures == {
        "periodCost": "$3,962.88",
        "period": "monthly",
        "remaining": "$3,000.00",
        "budget": "$3,000.00",
    }


def test_a_daily_budget_judges_a_day_of_a_rate_not_a_month() -> None:
    # The example: 3 x g5.xlarge = 3 x 1.006 = 3.018 $/h under $500/day. The old
    # code set a month against the day: 730 x 3.018 = 2,203.14, "440 % of budget". A day
    # of it is 24 x 3.018 = 72.432: well within.
    spec = policy(budget={"amount": 500, "period": "daily", "onExceeded": "block-new"})
    serve = subject(deployment(replicas=3, gpus=1, instance_type="g5.xlarge"))
    assert serve.estimate.hourly == Decimal("3.018")
    assert evaluate(spec, serve, now=NOW).violations == ()
    # $450 spent today leaves 50 < 72.43: over, and the message names the day
    (v,) = evaluate(spec, serve, now=NOW, policy_spent=Decimal(450)).violations
    assert v.rule == "budget.exceeded" and v.severity == "error"
    assert v.message.startswith("Deployment/ml/serve costs $72.43 per day (24 h at $3.02/h)")
    assert "daily budget has $50.00 left of $500.00 this day" in v.message


def test_a_run_shorter_than_the_period_costs_its_run() -> None:
    # 8 x H100 for 10 h: 10 x 55.04 = 550.40 against a daily budget of 600: fits;
    # for 72 h a day of it is 24 x 55.04 = 1,320.96: over.
    spec = policy(budget={"amount": 600, "period": "daily", "onExceeded": "block-new"})
    assert evaluate(spec, subject(job(deadline=36000)), now=NOW).violations == ()
    (v,) = evaluate(spec, subject(job(deadline=259200)), now=NOW).violations
    assert v.figures["periodCost"] == "$1,320.96"


def test_policy_spend_so_far_reduces_what_is_left() -> None:
    spec = policy(budget={"amount": 10000, "onExceeded": "block-new"})
    # 10,000 - 7,000 spent = 3,000 left < 3,962.88
    verdict = evaluate(spec, subject(), now=NOW, policy_spent=Decimal(7000))
    assert verdict.denied
    assert not evaluate(spec, subject(), now=NOW, policy_spent=Decimal(6000)).denied


def test_training_budget_counts_its_other_jobs() -> None:
    view = BudgetView("llama", Decimal(8000), spent=None, committed=Decimal(5000))
    verdict = evaluate(policy(), subject(training_budget=view), now=NOW)
    # 8,000 - 5,000 committed = 3,000 left < 3,962.88
    assert [v.rule for v in verdict.violations] == ["trainingJobBudget.exceeded"]
    assert "$3,000.00 left of $8,000.00 after $5,000.00 for its other Jobs" in (
        verdict.violations[0].message
    )


TIERS = {
    "approvals": [
        {"above": 1000, "approvers": {"users": ["alice"], "groups": ["ml-leads"]}},
        {"above": 10000, "approvers": {"groups": ["finops"]}},
        {"above": 50000, "deny": True},
    ]
}


@pytest.mark.parametrize(
    ("approval", "ok"),
    [
        (
            Approval(
                approved_by="alice", amount=Decimal(5000), expires=datetime(2027, 1, 1, tzinfo=UTC)
            ),
            True,
        ),
        (
            Approval(
                approved_by="alice",
                amount=Decimal(3000),  # less than 3,962.88
                expires=datetime(2027, 1, 1, tzinfo=UTC),
            ),
            False,
        ),
        (
            Approval(
                approved_by="alice",
                amount=Decimal(5000),  # expired yesterday
                expires=datetime(2026, 11, 21, tzinfo=UTC),
            ),
            False,
        ),
        (None, False),
    ],
)
def test_approval_tiers(approval: Approval | None, ok: bool) -> None:
    verdict = evaluate(policy(**TIERS), subject(approval=approval), now=NOW)
    assert (verdict.violations == ()) is ok
    if not ok:
        assert verdict.violations[0].rule == "approval.required"
        assert "sign-off of approver (group ml-leads or user alice)" in (
            verdict.violations[0].message
        )


def test_amounts_above_the_deny_tier_cannot_be_approved() -> None:
    # 16 pods x 8/8 x 55.04 x 72 h = 63,406.08 > 50,000
    big = subject(
        job(parallelism=16),
        approval=Approval(
            approved_by="carol", amount=Decimal(100000), expires=datetime(2027, 1, 1, tzinfo=UTC)
        ),
    )
    verdict = evaluate(policy(**TIERS), big, now=NOW)
    assert [v.rule for v in verdict.violations] == ["approval.denied"]


@pytest.mark.parametrize(
    ("unpriced", "mode", "found", "action"),
    [
        (None, "enforce", [("pricing.unpriced", "error")], "deny"),  # fails closed by default
        ("deny", "warn", [("pricing.unpriced", "error")], "warn"),
        ("warn", "enforce", [("pricing.unpriced", "warning")], "warn"),
        ("allow", "enforce", [], "allow"),
    ],
)
def test_unpriced_work_fails_closed_unless_the_policy_says(
    unpriced: str | None, mode: str, found: list[tuple[str, str]], action: str
) -> None:
    unknown = job(node_selector={"node.kubernetes.io/instance-type": "x9.huge"})
    spec = policy(mode=mode, **({"unpriced": unpriced} if unpriced else {}), **TIERS)
    verdict = evaluate(spec, subject(unknown), now=NOW)
    assert [(v.rule, v.severity) for v in verdict.violations] == found
    assert verdict.action == action
    if found:
        assert "add the instance type to a pricing file" in verdict.violations[0].message


def test_hintless_unpriced_work_says_what_to_add() -> None:
    hintless = job(node_selector={})
    (v,) = evaluate(policy(), subject(hintless), now=NOW).violations
    assert "add a nodeSelector (node.kubernetes.io/instance-type or nvidia.com/gpu.product)" in (
        v.message
    )
    assert "assumeInstanceType" in v.message


def test_scope_by_namespace_and_workload_labels() -> None:
    spec = policy(
        scope={
            "namespaceSelector": {"matchLabels": {"team": "ml"}},
            "workloadSelector": {
                "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["dev"]}]
            },
        }
    )
    s = spec.spec
    assert in_scope(s, namespace="a", namespace_labels={"team": "ml"}, workload_labels={})
    assert not in_scope(s, namespace="a", namespace_labels={"team": "web"}, workload_labels={})
    assert not in_scope(
        s, namespace="a", namespace_labels={"team": "ml"}, workload_labels={"tier": "dev"}
    )
    assert not in_scope(
        policy().spec, namespace="kube-system", namespace_labels={}, workload_labels={}
    )


def test_worst_action_orders_deny_over_warn_over_audit() -> None:
    deny = evaluate(policy(limits={"maxGPUsPerWorkload": 1}), subject(), now=NOW)
    warn = evaluate(policy(mode="warn", limits={"maxGPUsPerWorkload": 1}), subject(), now=NOW)
    audit = evaluate(policy(mode="audit", limits={"maxGPUsPerWorkload": 1}), subject(), now=NOW)
    assert worst_action([audit, warn, deny]) == "deny"
    assert worst_action([audit, warn]) == "warn"
    assert worst_action([]) == "allow"
