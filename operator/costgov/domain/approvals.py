"""Approvals as pure functions: which tier an amount needs, whether a signature may be
written (authentication, at admission of the object that carries it), and whether the
signatures given approve a workload now (validity, every time the approval is used).

The trust model (docs/adr/0002-approval-trust-model.md):

- written: a signature is accepted only from the user it names, who is not the requester,
  who is a member of the group it names, and who qualifies as an approver of the tier its
  amount falls in, under a policy that may govern what it covers;
- used: it counts only if, now, it is unexpired, for at least the estimate, not by the
  requester nor by whoever submits the workload, and its signer qualifies for a sign-off of
  the tier of a policy that governs the workload now (and is the policy it names, if any);
- a tier with several sign-offs needs a different signer for each.

Time always comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from costgov.api.approvals import Approval
from costgov.api.costapproval import CostApproval
from costgov.api.costpolicy import ApprovalTier, Signoff
from costgov.domain.money import usd

__all__ = [
    "ApprovalCheck",
    "Assessment",
    "Candidate",
    "Grant",
    "assess",
    "authenticate",
    "describe_signoff",
    "qualifies",
    "required_tier",
]


@dataclass(frozen=True, slots=True)
class ApprovalCheck:
    """The answer to "may this be written?", with the reason when not."""

    ok: bool
    reason: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Grant:
    """Signatures that may approve a workload, all from one object."""

    source: str
    """Where they are, e.g. "TrainingJobBudget ml/run-a"."""
    requester: str | None
    signatures: tuple[Approval, ...]
    binds: CostApproval | None = None
    """A CostApproval whose selector target approves one workload and is bound to none yet:
    using these signatures binds them to the workload (`scoping.bindings`)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A policy that may govern what an approval covers, with its tiers."""

    name: str
    tiers: Sequence[ApprovalTier]


@dataclass(frozen=True, slots=True)
class Assessment:
    """How one tier's sign-offs are met by the best grant available."""

    policy: str
    tier: ApprovalTier
    estimate: Decimal
    grant: Grant | None
    filled: tuple[tuple[str, Approval], ...] = ()
    missing: tuple[Signoff, ...] = ()
    rejected: tuple[tuple[Approval, str], ...] = field(default=())

    @property
    def satisfied(self) -> bool:
        return not self.missing


def required_tier(tiers: Sequence[ApprovalTier], amount: Decimal) -> ApprovalTier | None:
    """The highest tier whose threshold the amount exceeds (strictly), or None."""
    applicable = [tier for tier in tiers if amount > tier.above]
    return max(applicable, key=lambda t: t.above) if applicable else None


def qualifies(signoff: Signoff, signature: Approval) -> bool:
    """Whether a signature's signer may give this sign-off: named, or signing as a group of
    it (group membership was authenticated when the signature was written)."""
    return signature.approved_by in signoff.users or (
        signature.group is not None and signature.group in signoff.groups
    )


def describe_signoff(signoff: Signoff) -> str:
    """ "manager (group managers or user carol)" for messages."""
    who = [*(f"group {g}" for g in signoff.groups), *(f"user {u}" for u in signoff.users)]
    return f"{signoff.name} ({' or '.join(who)})"


# ------------------------------------------------------------------------------ used


def _problem(
    signature: Approval,
    *,
    amount: Decimal,
    now: datetime,
    requesters: Iterable[str | None],
    policy: str,
) -> str | None:
    """Why a signature does not count for this workload now, or None."""
    who = signature.approved_by
    if signature.expires.utcoffset() is None:  # refused when written; never compared naive
        return "its expiry has no timezone (Z or an offset): it cannot be judged"
    if signature.expires <= now:
        return f"expired at {signature.expires:%Y-%m-%d %H:%M}Z"
    if signature.amount < amount:
        return f"signed for {usd(signature.amount)}, less than the estimate of {usd(amount)}"
    if who in {r for r in requesters if r}:
        return "the signer is the requester: nobody approves their own request"
    if signature.policy is not None and signature.policy != policy:
        return f"given under CostPolicy {signature.policy}, which does not govern this workload"
    return None


def _match(signoffs: Sequence[Signoff], valid: Sequence[Approval]) -> dict[int, Approval]:
    """Assign a signature to as many sign-offs as possible, a different signer each
    (Kuhn's augmenting paths; a handful of sign-offs and signatures)."""
    if len(signoffs) == 1:  # the common tier: the first qualifying signature
        found = next((s for s in valid if qualifies(signoffs[0], s)), None)
        return {} if found is None else {0: found}
    signers = sorted({s.approved_by for s in valid})
    by_signer = {who: [s for s in valid if s.approved_by == who] for who in signers}
    owner: dict[str, int] = {}  # signer -> sign-off index

    def augment(i: int, seen: set[str]) -> bool:
        for who in signers:
            if who in seen or not any(qualifies(signoffs[i], s) for s in by_signer[who]):
                continue
            seen.add(who)
            if who not in owner or augment(owner[who], seen):
                owner[who] = i
                return True
        return False

    for i in range(len(signoffs)):
        augment(i, set())
    return {
        i: next(s for s in by_signer[who] if qualifies(signoffs[i], s)) for who, i in owner.items()
    }


def assess(
    policy: str,
    tier: ApprovalTier,
    grant: Grant | None,
    *,
    amount: Decimal,
    now: datetime,
    submitter: str | None = None,
) -> Assessment:
    """How far `grant`'s signatures meet the tier's sign-offs for this workload now."""
    signoffs = tier.required_signoffs()
    if grant is None:
        return Assessment(policy, tier, amount, None, missing=tuple(signoffs))
    requesters = (grant.requester, submitter)
    rejected: list[tuple[Approval, str]] = []
    valid: list[Approval] = []
    for signature in grant.signatures:
        problem = _problem(signature, amount=amount, now=now, requesters=requesters, policy=policy)
        if problem is None and grant.requester is None:
            problem = f"{grant.source} has no requestedBy, so costgov cannot tell who asked"
        if problem is None and not any(qualifies(s, signature) for s in signoffs):
            problem = f"not an approver of the {usd(tier.above)} tier of CostPolicy {policy}"
        if problem is None:
            valid.append(signature)
        else:
            rejected.append((signature, problem))
    matched = _match(signoffs, valid)
    used = {id(s) for s in matched.values()}
    rejected += [(s, "another signature by the same signer already counts") for s in valid
                 if id(s) not in used and any(m.approved_by == s.approved_by for m in matched.values())]  # fmt: skip
    return Assessment(
        policy,
        tier,
        amount,
        grant,
        filled=tuple((signoffs[i].name, s) for i, s in sorted(matched.items())),
        missing=tuple(s for i, s in enumerate(signoffs) if i not in matched),
        rejected=tuple(rejected),
    )


def best_assessment(
    policy: str,
    tier: ApprovalTier,
    grants: Sequence[Grant],
    *,
    amount: Decimal,
    now: datetime,
    submitter: str | None = None,
) -> Assessment:
    """The grant that meets the tier, or else the one that comes closest (signatures from
    different objects are never combined)."""
    found = [
        assess(policy, tier, g, amount=amount, now=now, submitter=submitter) for g in grants
    ] or [assess(policy, tier, None, amount=amount, now=now)]
    # of grants that do equally well, one that would use up a selector approval comes last
    return min(found, key=lambda a: (len(a.missing), -len(a.filled), _uses_up(a.grant)))


def _uses_up(grant: Grant | None) -> bool:
    return grant is not None and grant.binds is not None


# --------------------------------------------------------------------------- written


def _eligible_under(
    candidate: Candidate, signature: Approval, groups: frozenset[str]
) -> tuple[bool, str]:
    """(may sign, why not) for one policy: the tier of the signed amount."""
    tier = required_tier(candidate.tiers, signature.amount)
    if tier is None:
        return True, ""
    if tier.deny:
        return False, (
            f"amounts above {usd(tier.above)} are denied by CostPolicy {candidate.name} "
            "and cannot be approved"
        )
    signoffs = tier.required_signoffs()
    if any(qualifies(s, signature) for s in signoffs):
        return True, ""
    via = sorted({g for s in signoffs for g in s.groups} & groups)
    if via and signature.group is None:
        return False, (
            f"you approve as a member of group {via[0]}: sign with group: {via[0]} "
            "(costgov records the group it authenticated)"
        )
    wanted = " or ".join(describe_signoff(s) for s in signoffs)
    return False, (
        f"{signature.approved_by} may not approve {usd(signature.amount)}: under CostPolicy "
        f"{candidate.name}, amounts above {usd(tier.above)} need {wanted}"
    )


def _check_written(
    signature: Approval,
    *,
    user: str,
    groups: frozenset[str],
    requester: str,
    candidates: Sequence[Candidate],
) -> str | None:
    """Why a newly written signature is refused, or None."""
    if signature.approved_by != user:
        return (
            f"approvedBy is {signature.approved_by!r} but the request comes from {user!r}: "
            "approvers sign under their own name"
        )
    if signature.group is not None and signature.group not in groups:
        return f"{user} signs as group {signature.group!r} but is not a member of it"
    if user == requester:
        return f"{user} requested this and cannot approve it: nobody approves their own request"
    if not candidates:
        return (
            "no CostPolicy governs this namespace, so nobody is an approver here and an "
            "approval would count for nothing"
        )
    pinned = [c for c in candidates if signature.policy in (None, c.name)]
    if signature.policy is not None and not pinned:
        return f"CostPolicy {signature.policy} does not govern this namespace"
    # a policy that needs no approval for this amount makes no one an approver of it: the
    # signer must qualify under a policy that does need one (if any does)
    needing = [c for c in pinned if required_tier(c.tiers, signature.amount) is not None]
    reasons = []
    for candidate in needing:
        ok, why = _eligible_under(candidate, signature, groups)
        if ok:
            return None
        reasons.append(why)
    return "; ".join(reasons) or None


def authenticate(
    *,
    old: Sequence[Approval],
    new: Sequence[Approval],
    user: str,
    groups: Iterable[str],
    requester: str | None,
    candidates: Sequence[Candidate],
    changed: Sequence[str] = (),
) -> ApprovalCheck:
    """May `user` (in `groups`) change an object's signatures from `old` to `new`?

    Removing a signature is always allowed. A signature written by this request must pass
    `_check_written`. When `changed` names fields that change what the signatures cover,
    signatures kept from before no longer hold and must be removed (or given again).
    """
    written = [s for s in new if s not in old]
    kept = [s for s in new if s in old]
    if changed:  # what is kept must be given again: only its signer, present now, can
        written += [s for s in kept if s.approved_by == user]
        kept = [s for s in kept if s.approved_by != user]
    if changed and kept:
        signers = ", ".join(sorted({s.approved_by for s in kept}))
        return ApprovalCheck(
            False,
            f"{', '.join(changed)} changed what the approval covers: the signatures of "
            f"{signers} no longer hold; remove them in this update and ask for them again",
        )
    if not written:
        return ApprovalCheck(True)
    if requester is None:
        return ApprovalCheck(
            False,
            "spec.requestedBy is not set, so costgov cannot tell that the approver is not the "
            "requester; it must be set when the object is created",
        )
    member_of = frozenset(groups)
    for signature in written:
        problem = _check_written(
            signature, user=user, groups=member_of, requester=requester, candidates=candidates
        )
        if problem:
            return ApprovalCheck(False, problem)
    return ApprovalCheck(
        True,
        warnings=tuple(
            f"{s.approved_by} approved {usd(s.amount)} until {s.expires:%Y-%m-%d %H:%M}Z"
            for s in written
        ),
    )
