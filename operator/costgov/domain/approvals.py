"""Approvals as pure functions: which tier an amount needs, who may approve, whether an
approval still counts, and whether a change to an approval is allowed (for the webhook).

Time always comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from costgov.api.costpolicy import ApprovalTier
from costgov.api.trainingjobbudget import Approval
from costgov.domain.money import usd

__all__ = [
    "ApprovalCheck",
    "approval_covers",
    "check_approval_change",
    "may_approve",
    "required_tier",
]


@dataclass(frozen=True)
class ApprovalCheck:
    """The answer to "does this approval hold?" with the reason when it does not."""

    ok: bool
    reason: str = ""


def required_tier(tiers: Sequence[ApprovalTier], amount: Decimal) -> ApprovalTier | None:
    """The highest tier whose threshold the amount exceeds (strictly), or None."""
    applicable = [tier for tier in tiers if amount > tier.above]
    return max(applicable, key=lambda t: t.above) if applicable else None


def may_approve(tier: ApprovalTier, user: str, groups: Iterable[str]) -> bool:
    """Whether this identity is an approver of the tier (by name or by a group)."""
    if tier.deny:
        return False
    return user in tier.approvers.users or bool(set(groups) & set(tier.approvers.groups))


def approval_covers(approval: Approval | None, amount: Decimal, now: datetime) -> ApprovalCheck:
    """Whether an approval (already authenticated when it was set) covers this amount now."""
    if approval is None:
        return ApprovalCheck(False, "no approval")
    if approval.expires <= now:
        return ApprovalCheck(
            False,
            f"the approval by {approval.approved_by} expired at {approval.expires:%Y-%m-%d %H:%M}Z",
        )
    if approval.amount < amount:
        return ApprovalCheck(
            False,
            f"{approval.approved_by} approved {usd(approval.amount)}, less than the "
            f"estimate of {usd(amount)}",
        )
    return ApprovalCheck(True)


def check_approval_change(
    *,
    old: Approval | None,
    new: Approval | None,
    user: str,
    groups: Iterable[str],
    tiers: Sequence[ApprovalTier],
    requester: str | None,
) -> ApprovalCheck:
    """May `user` (in `groups`) change the approval from `old` to `new`?

    Removing or lowering an approval is always allowed. Setting or raising one (a new
    approver, a larger amount, a later expiry) needs: the approver named in the object is
    the user making the request (nobody writes another's name), the user is not the
    requester (nobody approves their own request), and the user is an approver of the tier
    the approved amount falls in.
    """
    if new is None or new == old:
        return ApprovalCheck(True)
    raised = (
        old is None
        or new.approved_by != old.approved_by
        or new.amount > old.amount
        or new.expires > old.expires
    )
    if not raised:
        return ApprovalCheck(True)
    if new.approved_by != user:
        return ApprovalCheck(
            False,
            f"approval.approvedBy is {new.approved_by!r} but the request comes from {user!r}: "
            "approvers set approvals under their own name",
        )
    if requester is not None and requester == user:
        return ApprovalCheck(False, f"{user} requested this budget and cannot approve it")
    tier = required_tier(tiers, new.amount)
    if tier is None:
        return ApprovalCheck(True)
    if tier.deny:
        return ApprovalCheck(
            False, f"amounts above {usd(tier.above)} are denied by policy and cannot be approved"
        )
    if not may_approve(tier, user, groups):
        names = [*tier.approvers.users, *(f"group {g}" for g in tier.approvers.groups)]
        return ApprovalCheck(
            False,
            f"{user} may not approve {usd(new.amount)}: amounts above {usd(tier.above)} need "
            f"one of {', '.join(names)}",
        )
    return ApprovalCheck(True)
