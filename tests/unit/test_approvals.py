"""Approval changes as the webhook will judge them: who may set or raise an approval."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from costgov.api.costpolicy import ApprovalTier
from costgov.api.trainingjobbudget import Approval
from costgov.domain.approvals import check_approval_change, may_approve, required_tier

TIERS = [
    ApprovalTier.model_validate(
        {"above": 1000, "approvers": {"users": ["alice"], "groups": ["ml-leads"]}}
    ),
    ApprovalTier.model_validate({"above": 10000, "approvers": {"groups": ["finops"]}}),
    ApprovalTier.model_validate({"above": 50000, "deny": True}),
]
EXP = datetime(2027, 1, 1, tzinfo=UTC)


def approval(by: str, amount: int, expires: datetime = EXP) -> Approval:
    return Approval(approved_by=by, amount=Decimal(amount), expires=expires)


@pytest.mark.parametrize(
    ("amount", "above"), [(999, None), (1000, None), (1001, 1000), (10001, 10000), (60000, 50000)]
)
def test_required_tier_is_the_highest_strictly_exceeded(amount: int, above: int | None) -> None:
    tier = required_tier(TIERS, Decimal(amount))
    assert (tier.above if tier else None) == above


def test_approvers_by_name_or_group() -> None:
    assert may_approve(TIERS[0], "alice", [])
    assert may_approve(TIERS[0], "dave", ["ml-leads"])
    assert not may_approve(TIERS[0], "dave", ["devs"])
    assert not may_approve(TIERS[2], "alice", ["finops"])  # deny tiers have no approvers


@pytest.mark.parametrize(
    ("user", "groups", "old", "new", "requester", "ok", "why"),
    [
        ("alice", [], None, approval("alice", 5000), "bob", True, ""),
        ("dave", ["ml-leads"], None, approval("dave", 5000), "bob", True, ""),
        ("bob", ["devs"], None, approval("bob", 5000), "bob", False, "cannot approve"),
        ("eve", ["devs"], None, approval("eve", 5000), "bob", False, "may not approve $5,000.00"),
        ("eve", ["devs"], None, approval("alice", 5000), "bob", False, "their own name"),
        ("alice", [], None, approval("alice", 20000), "bob", False, "need one of group finops"),
        ("frank", ["finops"], None, approval("frank", 20000), "bob", True, ""),
        ("frank", ["finops"], None, approval("frank", 60000), "bob", False, "denied by policy"),
        # raising an existing approval needs an approver again
        (
            "eve",
            [],
            approval("alice", 5000),
            approval("alice", 9000),
            "bob",
            False,
            "their own name",
        ),
        # lowering or removing is always allowed
        ("eve", [], approval("alice", 5000), approval("alice", 2000), "bob", True, ""),
        ("eve", [], approval("alice", 5000), None, "bob", True, ""),
        # extending the expiry is a raise
        (
            "eve",
            [],
            approval("alice", 5000),
            approval("alice", 5000, datetime(2028, 1, 1, tzinfo=UTC)),
            "bob",
            False,
            "own name",
        ),
    ],
)
def test_approval_changes(
    user: str,
    groups: list[str],
    old: Approval | None,
    new: Approval | None,
    requester: str,
    ok: bool,
    why: str,
) -> None:
    check = check_approval_change(
        old=old, new=new, user=user, groups=groups, tiers=TIERS, requester=requester
    )
    assert check.ok is ok, check.reason
    assert why in check.reason
