"""Leader election on the real apiserver, under the chart's ServiceAccount and Role.

The electors are costgov's own (services.leadership), with the chart's Lease; the Lease is
short (3 s: renew 1 s, deadline 2 s, retry 0.4 s) unless a test needs it long to prove a
hand-over could only come from a release. Order, not wall-clock time, is asserted: a
leader that cannot renew stops before anyone else starts. Figures are printed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime

import pytest

from costgov.adapters.kubernetes import KubeClient, LeaseConflictError
from costgov.domain.leases import Lease, Timings, claim
from costgov.services.leadership import Elector, Leadership

from .controlplane import ControlPlane
from .operating import LEASE, NS, SA, install_chart

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def token(cp: ControlPlane) -> str:
    install_chart(cp)
    return cp.kubectl("create", "token", SA, "-n", NS, "--duration=1h").stdout.strip()


@pytest.fixture
def fresh(cp: ControlPlane) -> Iterator[None]:
    """No Lease before or after (the operators of other modules elect with it too)."""
    cp.kubectl("delete", "lease", LEASE, "-n", NS, "--ignore-not-found")
    yield
    cp.kubectl("delete", "lease", LEASE, "-n", NS, "--ignore-not-found")


class Switch:
    """The Lease API through the operator's client, until `cut` makes every call hang (a
    partitioned replica: requests never answer)."""

    def __init__(self, api: KubeClient) -> None:
        self.api, self.cut = api, False

    async def _hang(self) -> None:
        while self.cut:
            await asyncio.sleep(3600)

    async def read_lease(self, namespace: str, name: str, timeout: float) -> Lease | None:
        await self._hang()
        return await self.api.read_lease(namespace, name, timeout)

    async def write_lease(self, namespace: str, name: str, lease: Lease, timeout: float) -> Lease:
        await self._hang()
        return await self.api.write_lease(namespace, name, lease, timeout)


def _client(cp: ControlPlane, token: str) -> KubeClient:
    return KubeClient(host=cp.url, token=token, verify_ssl=False)


def _elector(api: object, name: str, seconds: int) -> Elector:
    return Elector(api, NS, LEASE, Leadership(name, leading=False), Timings.of(seconds))  # type: ignore[arg-type]


async def _until(check: Callable[[], bool], what: str, timeout: float = 60) -> float:
    """Seconds until `check` holds; fails after a generous `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def _holder(cp: ControlPlane) -> dict[str, object]:
    out = cp.kubectl("get", "lease", LEASE, "-n", NS, "-o", "json").stdout
    spec = json.loads(out)["spec"]
    assert isinstance(spec, dict)
    return spec


async def _stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_one_of_two_leads_and_the_other_takes_over_when_it_dies(
    cp: ControlPlane, token: str, fresh: None
) -> None:
    a, b = _elector(_client(cp, token), "pod-a", 3), _elector(_client(cp, token), "pod-b", 3)
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    try:
        await _until(lambda: a.leadership.leading or b.leadership.leading, "a leader")
        await asyncio.sleep(2)  # several renewals: still exactly one
        leader, other = (a, b) if a.leadership.leading else (b, a)
        assert not other.leadership.leading
        assert _holder(cp)["holderIdentity"] == leader.me
        tasks[[a, b].index(leader)].cancel()  # dies: no release, no more renewals
        took = await _until(lambda: other.leadership.leading, "the survivor leads")
        print(f"\nfailover after the leader died, 3 s lease: {took:.2f} s")
        spec = _holder(cp)
        assert spec["holderIdentity"] == other.me and spec["leaseTransitions"] == 1
    finally:
        await _stop(*tasks)


async def test_a_leader_that_cannot_renew_stops_before_another_starts(
    cp: ControlPlane, token: str, fresh: None
) -> None:
    switch = Switch(_client(cp, token))
    a, b = _elector(switch, "pod-a", 3), _elector(_client(cp, token), "pod-b", 3)
    order: list[tuple[str, bool, float]] = []
    for e in (a, b):
        e.leadership.on_change(lambda on, me=e.me: order.append((me, on, time.monotonic())))
    task_a = asyncio.create_task(a.run())
    await _until(lambda: a.leadership.leading, "pod-a leads")
    task_b = asyncio.create_task(b.run())
    written: list[str] = []

    async def cycle() -> str:
        await asyncio.sleep(3600)  # a reconcile cycle waiting on Prometheus
        written.append("status")
        return "done"

    try:
        in_flight = asyncio.create_task(a.leadership.guarded(cycle))
        await asyncio.sleep(0.5)
        switch.cut = True  # pod-a's requests hang from now on
        assert await asyncio.wait_for(in_flight, 30) is None  # dropped where it stood
        await _until(lambda: b.leadership.leading, "pod-b leads")
    finally:
        switch.cut = False
        await _stop(task_a, task_b)
    assert written == []
    assert [(who, on) for who, on, _ in order][:3] == [
        ("pod-a", True), ("pod-a", False), ("pod-b", True)
    ]  # fmt: skip
    # and stopping pod-b's elector ends its leading (nobody renews for it any more)
    assert [(who, on) for who, on, _ in order][3:] == [("pod-b", False)]
    gap = order[2][2] - order[1][2]
    print(f"\npod-a stopped {gap:.2f} s before pod-b started (3 s lease, 2 s deadline)")


async def test_a_released_lease_is_taken_at_once_not_after_it_expires(
    cp: ControlPlane, token: str, fresh: None
) -> None:
    # a 300 s lease: pod-b can only lead within the test's minute if pod-a released it
    a, b = _elector(_client(cp, token), "pod-a", 300), _elector(_client(cp, token), "pod-b", 300)
    task_a = asyncio.create_task(a.run())
    await _until(lambda: a.leadership.leading, "pod-a leads")
    task_b = asyncio.create_task(b.run())
    try:
        await asyncio.sleep(1)
        assert not b.leadership.leading
        await _stop(task_a)
        await a.release()
        assert not a.leadership.leading
        took = await _until(lambda: b.leadership.leading, "pod-b leads after the release")
        print(f"\nhand-over after a release: {took:.2f} s (300 s lease, 2 s retry)")
        assert _holder(cp)["holderIdentity"] == "pod-b"
    finally:
        await _stop(task_b)


async def _race(first: Awaitable[Lease], second: Awaitable[Lease]) -> list[object]:
    return list(await asyncio.gather(first, second, return_exceptions=True))


async def test_two_writes_at_one_version_one_wins(
    cp: ControlPlane, token: str, fresh: None
) -> None:
    api = _client(cp, token)
    at = datetime.now(UTC)
    created = await _race(
        api.write_lease(NS, LEASE, claim(None, "pod-a", at, 15), 5),
        api.write_lease(NS, LEASE, claim(None, "pod-b", at, 15), 5),
    )
    assert sorted(type(r).__name__ for r in created) == ["Lease", "LeaseConflictError"]
    read = await api.read_lease(NS, LEASE, 5)
    assert read is not None and read.version
    later = datetime.now(UTC)  # a renewal that changes nothing would be a no-op write
    replaced = await _race(
        api.write_lease(NS, LEASE, claim(read, "pod-a", later, 15), 5),
        api.write_lease(NS, LEASE, claim(read, "pod-b", later, 15), 5),
    )
    assert sum(isinstance(r, LeaseConflictError) for r in replaced) == 1
    assert sum(isinstance(r, Lease) for r in replaced) == 1


async def test_the_role_names_the_lease_and_nothing_else(cp: ControlPlane, token: str) -> None:
    who = f"--as=system:serviceaccount:{NS}:{SA}"

    def can(*args: str) -> str:
        return cp.kubectl("auth", "can-i", *args, who, check=False).stdout.strip()

    assert can("update", f"leases.coordination.k8s.io/{LEASE}", "-n", NS) == "yes"
    assert can("create", "leases.coordination.k8s.io", "-n", NS) == "yes"
    assert can("update", "leases.coordination.k8s.io/kube-scheduler", "-n", NS) == "no"
    assert can("delete", f"leases.coordination.k8s.io/{LEASE}", "-n", NS) == "no"
    assert can("update", f"leases.coordination.k8s.io/{LEASE}", "-n", "kube-system") == "no"
