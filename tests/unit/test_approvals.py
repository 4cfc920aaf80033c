"""Approvals: who may write a signature (authentication) and whether signatures approve a
workload when used (validity), including tiers that need several sign-offs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from costgov.api.approvals import Approval
from costgov.api.costpolicy import ApprovalTier
from costgov.api.errors import describe_validation_error
from costgov.domain.approvals import Candidate, Grant, assess, authenticate, required_tier

TIERS = [
    ApprovalTier.model_validate(
        {"above": 1000, "approvers": {"users": ["alice"], "groups": ["ml-leads"]}}
    ),
    ApprovalTier.model_validate({"above": 10000, "approvers": {"groups": ["finops"]}}),
    # The governance model of the issue: above $50k a manager and a director sign, above
    # $100k also a VP; above $500k nothing is approved.
    ApprovalTier.model_validate(
        {
            "above": 50000,
            "signoffs": [
                {"name": "manager", "groups": ["managers"]},
                {"name": "director", "groups": ["directors"]},
            ],
        }
    ),
    ApprovalTier.model_validate(
        {
            "above": 100000,
            "signoffs": [
                {"name": "manager", "groups": ["managers"]},
                {"name": "director", "groups": ["directors"]},
                {"name": "vp", "users": ["victor"]},
            ],
        }
    ),
    ApprovalTier.model_validate({"above": 500000, "deny": True}),
]
POLICY = [Candidate("ml-platform", TIERS)]
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
EXP = datetime(2027, 1, 1, tzinfo=UTC)


def sig(by: str, amount: int, group: str | None = None, **kw: object) -> Approval:
    return Approval.model_validate(
        {
            "approvedBy": by,
            "amount": amount,
            "expires": kw.pop("expires", EXP),
            "group": group,
            **kw,
        }
    )


@pytest.mark.parametrize(
    ("amount", "above"),
    [(999, None), (1000, None), (1001, 1000), (10001, 10000), (60000, 50000), (600000, 500000)],
)
def test_required_tier_is_the_highest_strictly_exceeded(amount: int, above: int | None) -> None:
    tier = required_tier(TIERS, Decimal(amount))
    assert (tier.above if tier else None) == above


# ----------------------------------------------------------------------------- written


@pytest.mark.parametrize(
    ("user", "groups", "new", "ok", "why"),
    [
        ("alice", [], sig("alice", 5000), True, ""),
        ("dave", ["ml-leads"], sig("dave", 5000, "ml-leads"), True, ""),
        # qualifying through a group: the signature must name it, so it can be re-checked
        ("dave", ["ml-leads"], sig("dave", 5000), False, "sign with group: ml-leads"),
        ("dave", ["devs"], sig("dave", 5000, "ml-leads"), False, "not a member of it"),
        ("bob", ["ml-leads"], sig("bob", 5000, "ml-leads"), False, "nobody approves their own"),
        ("eve", ["devs"], sig("eve", 5000), False, "may not approve $5,000.00"),
        ("eve", ["devs"], sig("alice", 5000), False, "their own name"),
        ("alice", [], sig("alice", 20000), False, "need approver (group finops)"),
        ("frank", ["finops"], sig("frank", 20000, "finops"), True, ""),
        ("mary", ["managers"], sig("mary", 60000, "managers"), True, ""),
        ("frank", ["finops"], sig("frank", 60000, "finops"), False, "manager (group managers)"),
        ("victor", [], sig("victor", 600000), False, "denied by CostPolicy ml-platform"),
        ("alice", [], sig("alice", 5000, policy="other"), False, "does not govern"),
    ],
)
def test_who_may_write_a_signature(
    user: str, groups: list[str], new: Approval, ok: bool, why: str
) -> None:
    check = authenticate(
        old=[], new=[new], user=user, groups=groups, requester="bob", candidates=POLICY
    )
    assert check.ok is ok, check.reason
    assert why in check.reason


def test_a_requester_never_approves_their_own_request_even_under_no_policy() -> None:
    # The example: bob writes his own approval where no policy is found.
    check = authenticate(
        old=[], new=[sig("bob", 5000)], user="bob", groups=[], requester="bob", candidates=[]
    )
    assert not check.ok and "own" in check.reason


def test_nobody_signs_where_no_policy_governs() -> None:
    check = authenticate(
        old=[], new=[sig("alice", 5000)], user="alice", groups=[], requester="bob", candidates=[]
    )
    assert not check.ok and "no CostPolicy governs" in check.reason


def test_requested_by_is_needed_before_anyone_signs() -> None:
    check = authenticate(
        old=[], new=[sig("alice", 5000)], user="alice", groups=[], requester=None, candidates=POLICY
    )
    assert not check.ok and "requestedBy" in check.reason


def test_removing_or_keeping_signatures_needs_nobody() -> None:
    old = [sig("alice", 5000), sig("mary", 60000, "managers")]
    for new in ([], old[:1], old):
        assert authenticate(
            old=old, new=new, user="eve", groups=[], requester="bob", candidates=POLICY
        ).ok


def test_changing_anothers_signature_is_writing_it() -> None:
    lowered = sig("alice", 2000)
    check = authenticate(
        old=[sig("alice", 5000)], new=[lowered], user="eve", groups=[], requester="bob",
        candidates=POLICY,
    )  # fmt: skip
    assert not check.ok and "their own name" in check.reason


def test_what_a_signature_covers_changed_so_it_must_be_given_again() -> None:
    old = [sig("alice", 5000), sig("mary", 60000, "managers")]
    kept = authenticate(
        old=old, new=old, user="bob", groups=[], requester="bob", candidates=POLICY,
        changed=["spec.amount (raised)"],
    )  # fmt: skip
    assert not kept.ok
    assert "alice, mary no longer hold" in kept.reason and "spec.amount" in kept.reason
    dropped = authenticate(
        old=old, new=[], user="bob", groups=[], requester="bob", candidates=POLICY,
        changed=["spec.amount (raised)"],
    )  # fmt: skip
    assert dropped.ok
    # the signer herself, present now, gives hers again; mary's must still go
    again = authenticate(
        old=old, new=old[:1], user="alice", groups=[], requester="bob", candidates=POLICY,
        changed=["spec.selector"],
    )  # fmt: skip
    assert again.ok, again.reason


# --------------------------------------------------------------------------------- used


def grant(*signatures: Approval, requester: str | None = "bob") -> Grant:
    return Grant("TrainingJobBudget ml/run-a", requester, signatures)


def test_one_signoff_tier_met_by_a_named_user_or_a_group_member() -> None:
    for s in (sig("alice", 5000), sig("dave", 5000, "ml-leads")):
        found = assess("ml-platform", TIERS[0], grant(s), amount=Decimal("3962.88"), now=NOW)
        assert found.satisfied and found.filled[0][0] == "approver"


@pytest.mark.parametrize(
    ("signature", "amount", "submitter", "why"),
    [
        (sig("alice", 5000, expires=NOW), 3000, None, "expired at 2026-11-22 12:00Z"),
        (sig("alice", 2000), 3000, None, "less than the estimate of $3,000.00"),
        (sig("alice", 5000), 3000, "alice", "the signer is the requester"),
        (sig("eve", 5000), 3000, None, "not an approver of the $1,000.00 tier"),
        (sig("alice", 5000, policy="other"), 3000, None, "given under CostPolicy other"),
    ],
)
def test_a_signature_counts_only_if_valid_when_used(
    signature: Approval, amount: int, submitter: str | None, why: str
) -> None:
    found = assess(
        "ml-platform", TIERS[0], grant(signature), amount=Decimal(amount), now=NOW,
        submitter=submitter,
    )  # fmt: skip
    assert not found.satisfied
    assert [r for _, r in found.rejected] == [found.rejected[0][1]] and why in found.rejected[0][1]


def test_no_requester_no_approval() -> None:
    found = assess(
        "ml-platform", TIERS[0], grant(sig("alice", 5000), requester=None),
        amount=Decimal(3000), now=NOW,
    )  # fmt: skip
    assert not found.satisfied and "no requestedBy" in found.rejected[0][1]


def test_several_signoffs_each_by_a_different_signer() -> None:
    tier = TIERS[3]  # manager, director, vp above $100k
    amount = Decimal(150000)
    manager, director = sig("mary", 200000, "managers"), sig("dan", 200000, "directors")
    vp = sig("victor", 200000)
    partial = assess("ml-platform", tier, grant(manager, director), amount=amount, now=NOW)
    assert not partial.satisfied
    assert [s.name for s in partial.missing] == ["vp"]
    assert dict(partial.filled) == {"manager": manager, "director": director}
    full = assess("ml-platform", tier, grant(manager, director, vp), amount=amount, now=NOW)
    assert full.satisfied


def test_one_person_cannot_fill_two_signoffs() -> None:
    tier = TIERS[2]  # manager and director above $50k
    both = [sig("max", 60000, "managers"), sig("max", 60000, "directors")]
    found = assess("ml-platform", tier, grant(*both), amount=Decimal(55000), now=NOW)
    assert not found.satisfied and len(found.missing) == 1
    assert any("same signer" in why for _, why in found.rejected)


def test_matching_finds_the_assignment_that_fills_every_signoff() -> None:
    # carol is a manager *and* a director; dan only a director. Greedy matching that gives
    # carol the director sign-off first would leave the manager one empty.
    tier = ApprovalTier.model_validate(
        {
            "above": 0,
            "signoffs": [
                {"name": "director", "groups": ["directors"], "users": ["carol"]},
                {"name": "manager", "users": ["carol"]},
            ],
        }
    )
    signatures = grant(sig("carol", 10, "directors"), sig("dan", 10, "directors"))
    found = assess("p", tier, signatures, amount=Decimal(5), now=NOW)
    assert found.satisfied, found
    assert {name: s.approved_by for name, s in found.filled} == {
        "director": "dan",
        "manager": "carol",
    }


# ------------------------------------------------------------------------- timezones


@pytest.mark.parametrize("expires", ["2030-01-01T00:00:00", "2030-01-01 00:00"])
def test_an_expiry_without_a_timezone_is_refused_naming_the_field(expires: str) -> None:
    with pytest.raises(ValidationError) as caught:
        sig("alice", 5000, expires=expires)
    (line,) = describe_validation_error(caught.value, root="CostApproval/ok.spec.approval")
    assert line.startswith("CostApproval/ok.spec.approval.expires: a timezone is required (Z or")


def test_a_naive_expiry_that_slipped_in_does_not_count_and_does_not_crash() -> None:
    naive = Approval.model_construct(
        approved_by="alice", group=None, policy=None, amount=Decimal(5000),
        expires=datetime(2030, 1, 1), note="",
    )  # fmt: skip
    found = assess(
        "ml-platform", TIERS[0], grant(naive), amount=Decimal(3000), now=NOW, submitter="bob"
    )
    assert not found.satisfied and "no timezone" in found.rejected[0][1]


def test_a_policy_needing_no_approval_makes_nobody_an_approver() -> None:
    """Found by random test order: a second policy over the namespace with no approval
    tiers (an audit policy) let eve sign $5,000 that ml-platform wants alice or ml-leads
    for; the signature was accepted because the other policy asked for nothing."""
    relaxed = [*POLICY, Candidate("audit-only", ())]
    check = authenticate(
        old=[], new=[sig("eve", 5000)], user="eve", groups=["devs"], requester="bob",
        candidates=relaxed,
    )  # fmt: skip
    assert not check.ok and "eve may not approve $5,000.00" in check.reason
    # where no policy needs an approval for the amount, a signature is harmless: accepted
    check = authenticate(
        old=[], new=[sig("eve", 500)], user="eve", groups=["devs"], requester="bob",
        candidates=relaxed,
    )  # fmt: skip
    assert check.ok
