"""The elector and the fence on leading, against an in-memory Lease store (found by review:
a paused leader wrote after another held the Lease; a deleted Lease gave two leaders; an
elector that died left `leading` true; a Lease naming a holder for a year stopped
reconciling for a year)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from costgov.domain.leases import MAX_LEASE_SECONDS, Lease, Timings, may_claim, observe
from costgov.services.leadership import Elector, Leadership

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Store:
    """A Lease that refuses a write at a stale resourceVersion, as the apiserver does."""

    def __init__(self, lease: Lease | None = None) -> None:
        self.lease, self.version = lease, 1

    async def read_lease(self, namespace: str, name: str, timeout: float) -> Lease | None:
        return self.lease

    async def write_lease(self, namespace: str, name: str, lease: Lease, timeout: float) -> Lease:
        current = self.lease.version if self.lease is not None else ""
        if lease.version != current:
            raise RuntimeError("409 Conflict")
        self.version += 1
        self.lease = replace(lease, version=str(self.version))
        return self.lease


def _elector(store: Store, me: str, clock: Clock) -> Elector:
    leadership = Leadership(me, leading=False, clock=clock)
    return Elector(store, "ns", "lease", leadership, Timings.of(15), clock=clock)  # type: ignore[arg-type]


def test_leading_is_fenced_by_the_last_renewal_even_if_the_elector_never_runs() -> None:
    clock = Clock()
    leadership = Leadership("a", leading=False, clock=clock)
    leadership.gain("taken")
    leadership.hold_until(110.0)  # renewed at 100 with a 10 s deadline (15 s lease)
    clock.now = 109.9
    assert leadership.leading
    clock.now = 110.0  # the event loop stalled: nothing ran `lose`, yet no write may go out
    assert not leadership.leading


@pytest.mark.asyncio
async def test_the_fence_runs_from_when_the_renewal_was_sent() -> None:
    clock, store = Clock(), Store()
    elector = _elector(store, "a", clock)
    assert await elector.attempt()
    elector.leadership.gain("taken")
    clock.now = 100.0 + 9.99  # deadline 10 s after the attempt started at 100
    assert elector.leadership.leading
    clock.now = 110.0
    assert not elector.leadership.leading


@pytest.mark.asyncio
async def test_a_deleted_lease_is_held_by_its_last_holder_for_a_lease() -> None:
    clock, store = Clock(), Store()
    a, b = _elector(store, "a", clock), _elector(store, "b", clock)
    assert await a.attempt()  # a holds it from 100
    assert not await b.attempt()  # b sees a's record at 100
    store.lease = None  # someone deletes the Lease at 101
    clock.now = 101.0
    assert not await b.attempt(), "b took a deleted Lease while a still leads"
    clock.now = 114.9
    assert not await b.attempt()
    clock.now = 115.0  # a lease (15 s) after b last saw a's record move
    assert await b.attempt()


@pytest.mark.asyncio
async def test_an_elector_that_stops_for_any_reason_stops_leading() -> None:
    clock, store = Clock(), Store()
    elector = _elector(store, "a", clock)
    task = asyncio.create_task(elector.run())
    for _ in range(20):
        await asyncio.sleep(0)
        if elector.leadership.leading:
            break
    assert elector.leadership.leading
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not elector.leadership.leading


def test_a_failing_hook_does_not_leave_leadership_half_changed() -> None:
    leadership = Leadership("a", leading=True)
    seen: list[bool] = []

    def broken(leading: bool) -> None:
        raise RuntimeError("hook failed")

    leadership.on_change(broken)
    leadership.on_change(seen.append)
    leadership.lose("test")
    assert not leadership.leading and seen == [False]  # the later hook still ran


def test_a_lease_naming_a_holder_for_a_year_is_honoured_for_five_minutes_at_most() -> None:
    year = 365 * 86400
    seen = observe(None, Lease("mallory", year, T0, T0, 0, "7"), now=100.0)
    assert not may_claim(seen, "b", now=100.0 + MAX_LEASE_SECONDS - 1)
    assert may_claim(seen, "b", now=100.0 + MAX_LEASE_SECONDS)


class Gated(Store):
    """A Lease store whose reads wait for the test to open `gate` (one read at a time)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Future[None] | None = None

    async def read_lease(self, namespace: str, name: str, timeout: float) -> Lease | None:
        self.gate = asyncio.get_running_loop().create_future()
        await self.gate
        return self.lease


@pytest.mark.asyncio
async def test_an_elector_cancelled_as_its_try_for_the_lease_returns_stops() -> None:
    """Found by CI: the survivor never took over because the dead leader renewed on. Python
    3.11's asyncio.wait_for returns the inner result when the caller is cancelled in the
    step the inner finishes (bpo-42130), so the cancellation of the elector was lost."""
    store = Gated()
    elector = Elector(store, "ns", "lease", Leadership("a", leading=False), Timings.of(3))  # type: ignore[arg-type]
    task = asyncio.create_task(elector.run())
    for _ in range(50):  # the first read waits at the gate
        await asyncio.sleep(0)
        if store.gate is not None:
            break
    assert store.gate is not None
    store.gate.set_result(None)  # the read answers, the write needs no wait: attempt is done
    task.cancel()  # in the same step, before the elector's task has run again
    done, _ = await asyncio.wait({task}, timeout=2)  # a live elector would renew every 1 s
    assert done == {task} and task.cancelled()
    assert not elector.leadership.leading
