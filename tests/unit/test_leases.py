"""The Lease rules: who may take it, what is written, when a leader must stop."""

from __future__ import annotations

from datetime import UTC, datetime

from costgov.domain.leases import Lease, Timings, claim, lost, may_claim, observe, released

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 22, 10, 0, 5, tzinfo=UTC)


def test_timings_follow_client_go_at_fifteen_seconds() -> None:
    assert Timings.of(15) == Timings(lease=15, renew=5.0, deadline=10.0, retry=2.0)


def test_a_free_or_own_lease_may_be_taken_at_once_another_only_when_seen_unchanged() -> None:
    free = observe(None, Lease("", 15, T0, T0, 3, "7"), now=100.0)
    assert may_claim(free, "b", now=100.0)
    mine = observe(None, Lease("b", 15, T0, T0, 3, "7"), now=100.0)
    assert may_claim(mine, "b", now=100.0)
    held = observe(None, Lease("a", 15, T0, T0, 3, "7"), now=100.0)
    assert not may_claim(held, "b", now=114.9)
    assert may_claim(held, "b", now=115.0)


def test_expiry_runs_from_when_the_record_last_moved_not_from_its_timestamps() -> None:
    # renewTime far in the past (the holder's clock is behind): still held while it moves
    seen = observe(None, Lease("a", 15, T0, T0, 0, "7"), now=100.0)
    same = observe(seen, Lease("a", 15, T0, T0, 0, "7"), now=110.0)
    assert same.at == 100.0  # unchanged record: the clock keeps running
    moved = observe(same, Lease("a", 15, T0, T0, 0, "8"), now=112.0)
    assert moved.at == 112.0  # renewed: it starts again
    assert not may_claim(moved, "b", now=120.0)


def test_claims_keep_or_start_the_tenure() -> None:
    first = claim(None, "a", T0, 15)
    assert first == Lease("a", 15, T0, T0, 0, "")
    renewal = claim(Lease("a", 15, T0, T0, 0, "7"), "a", T1, 15)
    assert renewal == Lease("a", 15, T0, T1, 0, "7")  # written at the version read
    takeover = claim(Lease("a", 15, T0, T0, 0, "9"), "b", T1, 15)
    assert takeover == Lease("b", 15, T1, T1, 1, "9")


def test_a_released_lease_is_free_to_everyone_at_once() -> None:
    out = released(Lease("a", 15, T0, T0, 4, "9"), T1)
    assert out.holder == "" and out.duration_seconds == 1 and out.transitions == 4
    assert may_claim(observe(None, out, now=0.0), "b", now=0.0)


def test_a_leader_stops_before_anyone_may_take_over() -> None:
    timings = Timings.of(15)
    assert not lost(last_renewed=100.0, now=109.9, timings=timings)
    assert lost(last_renewed=100.0, now=110.0, timings=timings)
    assert timings.deadline < timings.lease
