"""Which replica reconciles: a coordination.k8s.io/v1 Lease, taken and renewed over the
operator's own Kubernetes client (docs/adr/0003-high-availability.md).

`Leadership` is what the handlers ask (`leading`) and what reconcile work runs under
(`guarded`): when the Lease is lost, every guarded cycle is cancelled before it writes.
`Elector` keeps it: it tries to take the Lease every `retry` seconds, renews it every
`renew` seconds while it holds it, stops leading once a renewal is `deadline` late, and
releases it on the way out so another replica takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from costgov.domain.leases import Lease, Observed, Timings, claim, lost, may_claim, observe
from costgov.domain.leases import released as released_record

__all__ = ["Elector", "Leadership", "LeaseApi"]

T = TypeVar("T")
log = logging.getLogger("costgov")


class LeaseApi(Protocol):
    async def read_lease(self, namespace: str, name: str, timeout: float) -> Lease | None: ...

    async def write_lease(
        self, namespace: str, name: str, lease: Lease, timeout: float
    ) -> Lease: ...


class Leadership:
    """Whether this replica reconciles now; the reconcile work to drop when it stops.

    `leading` is also fenced by time: while holding a Lease it is true only until `deadline`
    after the start of the last successful renewal, even if the elector has not run since
    (a stalled event loop, a paused process): a write checked against it never goes out
    once another replica may have taken over. A request already sent cannot be recalled."""

    def __init__(
        self, identity: str, *, leading: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.identity, self._leading, self.clock = identity, leading, clock
        self._until: float | None = None
        self._work: set[asyncio.Task[Any]] = set()
        self._hooks: list[Callable[[bool], None]] = []

    @property
    def leading(self) -> bool:
        return self._leading and (self._until is None or self.clock() < self._until)

    def hold_until(self, moment: float) -> None:
        """The Lease was renewed: leading stays true until `moment` (monotonic seconds)."""
        self._until = moment

    def on_change(self, hook: Callable[[bool], None]) -> None:
        self._hooks.append(hook)

    def _set(self, leading: bool, why: str) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        if leading:
            log.info(f"{self.identity} leads: it reconciles from now on ({why})")
        else:
            log.warning(f"{self.identity} no longer leads: reconciling stops ({why})")
        for task in list(self._work):
            task.cancel()
        for hook in self._hooks:
            try:  # a failing hook must not leave the elector dead with leading set
                hook(leading)
            except Exception:
                log.exception(f"leadership hook failed ({why})")

    def gain(self, why: str) -> None:
        self._set(True, why)

    def lose(self, why: str) -> None:
        self._set(False, why)

    async def guarded(self, work: Callable[[], Awaitable[T]]) -> T | None:
        """`work`'s result while this replica leads; None, with the work cancelled where it
        stood, when it does not lead or stops leading before the work is done."""
        if not self.leading:
            return None
        task: asyncio.Task[T] = asyncio.ensure_future(work())
        self._work.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the caller itself is cancelled (shutdown, object deleted)
            return None  # dropped: the lease was lost
        finally:
            self._work.discard(task)


class Elector:
    """Takes, renews and releases one Lease for `leadership`."""

    def __init__(
        self,
        api: LeaseApi,
        namespace: str,
        name: str,
        leadership: Leadership,
        timings: Timings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api, self.namespace, self.name = api, namespace, name
        self.leadership, self.timings, self.clock = leadership, timings, clock
        self.seen: Observed | None = None

    @property
    def me(self) -> str:
        return self.leadership.identity

    async def attempt(self) -> bool:
        """One try to take or renew the Lease: True when this replica holds it now."""
        timeout, started = self.timings.retry * 2, self.clock()
        old = await self.api.read_lease(self.namespace, self.name, timeout)
        if old is not None:
            self.seen = observe(self.seen, old, self.clock())
        # a Lease deleted while another replica held it is held by it still, as last seen:
        # that replica renews only every `renew` seconds and would not notice at once
        held = self.seen is not None and (old is not None or self.seen.lease.holder != self.me)
        if held and self.seen is not None and not may_claim(self.seen, self.me, self.clock()):
            return False
        wanted = claim(old, self.me, datetime.now(UTC), self.timings.lease)
        stored = await self.api.write_lease(self.namespace, self.name, wanted, timeout)
        self.seen = observe(self.seen, stored, self.clock())
        # from when the request went out: the others count the lease from no earlier
        self.leadership.hold_until(started + self.timings.deadline)
        return True

    async def _try(self, budget: float) -> bool:
        try:
            # not asyncio.wait_for: on 3.11 it returns the attempt's result when this task is
            # cancelled in the step the attempt finishes (bpo-42130), and a stopped elector
            # would renew on, keeping every other replica from taking over
            async with asyncio.timeout(max(budget, 0.001)):
                return await self.attempt()
        except Exception as exc:  # logged: the next try may succeed
            what = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            log.warning(f"Lease {self.namespace}/{self.name}: {what}")
            return False

    async def run(self) -> None:
        """Forever: wait to lead, lead until a renewal is too late, start again. Whatever
        ends it (cancelled, or a bug) ends leading too: never a replica that leads on with
        nobody renewing its Lease."""
        try:
            while True:
                while not await self._try(self.timings.retry):
                    await asyncio.sleep(self.timings.retry)
                self.leadership.gain(f"Lease {self.namespace}/{self.name} taken")
                await self._lead()
        finally:
            self.leadership.lose("leader election stopped")

    async def _lead(self) -> None:
        renewed, pause = self.clock(), self.timings.renew
        while True:
            await asyncio.sleep(pause)
            left = renewed + self.timings.deadline - self.clock()
            if left > 0 and await self._try(left):
                renewed, pause = self.clock(), self.timings.renew
                continue
            holder = self.seen.lease.holder if self.seen is not None else ""
            if holder not in ("", self.me):
                self.leadership.lose(f"{holder} holds the Lease")
                return
            if lost(renewed, self.clock(), self.timings):
                self.leadership.lose(f"no renewal for {self.timings.deadline:.0f} s")
                return
            pause = min(self.timings.retry, renewed + self.timings.deadline - self.clock())

    async def release(self) -> None:
        """Stop leading (cancelling reconcile work first), then free the Lease if it is
        still ours, so another replica takes over without waiting for it to expire."""
        self.leadership.lose("shutting down")
        # ours as last seen (the elector may have stopped leading already when its task was
        # cancelled); written at that version, so a Lease another replica has taken since
        # is refused, never freed
        if self.seen is None or self.seen.lease.holder != self.me:
            return
        with contextlib.suppress(Exception):  # it expires anyway, a lease later
            free = released_record(self.seen.lease, datetime.now(UTC))
            await self.api.write_lease(self.namespace, self.name, free, self.timings.retry * 2)
            log.info(f"{self.me} released Lease {self.namespace}/{self.name}")
