"""Approvals on the wire: signatures given by approvers, and what status says of them.

A signature is one approver's sign-off: who, for how many dollars, until when, and through
which group (when the approver qualifies as a member of a group). The admission webhook
authenticates every signature when it is written (the request's user must be the signer,
a member of the group named, and not the requester); the engine judges it again when it is
used (an approver of a policy governing the workload then, unexpired, for at least the
estimate). See docs/adr/0002-approval-trust-model.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

from costgov.api.fields import Money, Spec

__all__ = ["Approval", "ApprovalState", "SignatureState", "ZonedTime"]

MAX_SIGNATURES = 8
_ZONE_PATTERN = r"^.*([Zz]|[+-][0-9]{2}:[0-9]{2})$"


def _zoned(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError(
            "a timezone is required (Z or an offset, e.g. 2030-01-01T00:00:00Z or "
            "2030-01-01T00:00:00+02:00): without one the moment it expires is unknown"
        )
    return value


ZonedTime = Annotated[
    datetime,
    AfterValidator(_zoned),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _ZONE_PATTERN}),
]
"""An RFC 3339 timestamp with its timezone (Z or an offset), refused without one, by
pydantic and (through `pattern`) by the apiserver."""


class Approval(Spec):
    """One approver's signature. Only an approver a governing policy names may write it,
    under their own name; nobody approves their own request."""

    approved_by: str = Field(
        min_length=1, max_length=253, description="User name of the approver (the signer)."
    )
    group: str | None = Field(
        default=None,
        max_length=253,
        description="The approver group the signer signs as, when they qualify through a "
        "group (they must be a member when signing).",
    )
    policy: str | None = Field(
        default=None,
        max_length=253,
        description="Optional: the CostPolicy this signature is given under; it then counts "
        "only under that policy.",
    )
    amount: Money = Field(description="USD approved: the most one covered workload may cost.")
    expires: ZonedTime = Field(
        description="When the signature stops counting (RFC 3339, with Z or an offset)."
    )
    note: str = Field(default="", max_length=1024, description="Why it was approved.")


class SignatureState(Spec):
    """How one signature was judged for the workload shown."""

    approved_by: str = Field(description="The signer.")
    group: str | None = Field(default=None, description="The group signed as.")
    amount: Money = Field(description="USD signed for.")
    expires: datetime = Field(description="When it stops counting.")
    counts: bool = Field(description="Whether it counts now.")
    fills: str | None = Field(default=None, description="The sign-off it fills, when it counts.")
    reason: str = Field(default="", max_length=1024, description="Why it does not count.")


class ApprovalState(Spec):
    """What one policy's approval tier asks of a workload, who signed, and what is missing."""

    policy: str = Field(description="The CostPolicy whose tier applies.")
    workload: str = Field(description="The workload judged (kind/namespace/name).")
    estimate: Money = Field(description="The workload's estimate, USD.")
    tier: Money = Field(description="The tier: estimates above this need the sign-offs.")
    required: list[str] = Field(
        default_factory=list, max_length=8, description="The sign-offs the tier requires."
    )
    signed: list[SignatureState] = Field(default_factory=list, max_length=16)
    missing: list[str] = Field(
        default_factory=list, max_length=8, description="Sign-offs still missing."
    )
    satisfied: bool = Field(description="Whether every required sign-off is given.")
