"""Who reconciles: the rules of a coordination.k8s.io/v1 Lease, as client-go keeps them.

Every replica serves admission; only the holder of the Lease reconciles. A candidate takes
the Lease when it is free (no holder: released, or never held), already its own, or when
its record has not changed for `leaseDurationSeconds` *as the candidate observed it* (its
own monotonic clock, never the holder's timestamps: clocks of two nodes may disagree). A
holder that has not renewed for `deadline` stops leading, a third of a lease before anyone
else may take over. Pure: the elector (services.leadership) does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

__all__ = [
    "MAX_LEASE_SECONDS",
    "Lease",
    "Observed",
    "Timings",
    "claim",
    "lost",
    "may_claim",
    "observe",
    "released",
]


@dataclass(frozen=True)
class Timings:
    """Seconds, derived from the lease duration as client-go's defaults are (15 s: renew 5,
    deadline 10, retry 2; retry never above 2 s, so a released Lease is taken at once)."""

    lease: int
    """How long a claim lasts unrenewed, as the other replicas observe it."""
    renew: float
    """The leader renews this often."""
    deadline: float
    """A leader that has not renewed for this long stops leading."""
    retry: float
    """Candidates, and a leader whose renewal failed, try again this often."""

    @classmethod
    def of(cls, lease_seconds: int) -> Timings:
        return cls(
            lease=lease_seconds,
            renew=lease_seconds / 3,
            deadline=lease_seconds * 2 / 3,
            retry=min(2.0, lease_seconds * 2 / 15),
        )


@dataclass(frozen=True)
class Lease:
    """A Lease's spec, and the resourceVersion it was read at ("" before it exists)."""

    holder: str
    """`holderIdentity`; "" when nobody holds it."""
    duration_seconds: int
    acquired: datetime | None
    renewed: datetime | None
    transitions: int
    version: str = ""


@dataclass(frozen=True)
class Observed:
    """A Lease as a replica last saw it change, and when (its own monotonic seconds)."""

    lease: Lease
    at: float


def observe(before: Observed | None, lease: Lease, now: float) -> Observed:
    """The observation after reading `lease`: its clock restarts only when the record moved."""
    if before is not None and before.lease.version == lease.version and lease.version:
        return before
    return Observed(lease, now)


MAX_LEASE_SECONDS = 300
"""The longest lease a candidate honours (the chart allows 3-300 s): anyone who may write
the Lease could otherwise name a holder for a year and stop reconciling that long."""


def may_claim(seen: Observed, me: str, now: float) -> bool:
    """Free, already mine, or unrenewed for a whole lease since this replica saw it move."""
    holder = seen.lease.holder
    duration = min(seen.lease.duration_seconds, MAX_LEASE_SECONDS)
    return holder in ("", me) or now - seen.at >= duration


def claim(old: Lease | None, me: str, now: datetime, seconds: int) -> Lease:
    """The record `me` writes to take or renew the Lease (written at `old`'s version)."""
    if old is None:
        return Lease(me, seconds, now, now, 0)
    if old.holder == me:
        return replace(old, duration_seconds=seconds, renewed=now)
    return Lease(me, seconds, now, now, old.transitions + 1, old.version)


def released(old: Lease, now: datetime) -> Lease:
    """The record a leader writes on its way out: nobody holds it, and it is free at once."""
    return replace(old, holder="", duration_seconds=1, renewed=now)


def lost(last_renewed: float, now: float, timings: Timings) -> bool:
    """A leader must stop when its last successful renewal is `deadline` old."""
    return now - last_renewed >= timings.deadline
