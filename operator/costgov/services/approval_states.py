"""What status shows of approvals: per governing policy, the sign-offs required, who signed
(and whether each signature counts, and why not), and what is still missing."""

from __future__ import annotations

from costgov.api.approvals import ApprovalState, SignatureState
from costgov.domain.approvals import Assessment, describe_signoff
from costgov.domain.judging import Judgement
from costgov.domain.money import cents

__all__ = ["approval_states"]


def _state(found: Assessment, workload: str) -> ApprovalState:
    filled = {id(sig): name for name, sig in found.filled}
    rejected = {id(sig): why for sig, why in found.rejected}
    signatures = found.grant.signatures if found.grant is not None else ()
    return ApprovalState(
        policy=found.policy,
        workload=workload,
        estimate=cents(found.estimate),
        tier=found.tier.above,
        required=[s.name for s in found.tier.required_signoffs()],
        signed=[
            SignatureState(
                approved_by=sig.approved_by,
                group=sig.group,
                amount=sig.amount,
                expires=sig.expires,
                counts=id(sig) in filled,
                fills=filled.get(id(sig)),
                reason=rejected.get(id(sig), "")[:1024],
            )
            for sig in signatures[:16]
        ],
        missing=[describe_signoff(s) for s in found.missing],
        satisfied=found.satisfied,
    )


def approval_states(found: Judgement) -> list[ApprovalState]:
    """One state per governing policy whose approval tier applies to the workload."""
    ref = found.submission.workload.ref
    return [_state(v.approval, ref) for v in found.verdicts if v.approval is not None][:8]
