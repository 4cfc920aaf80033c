"""A fresh read of the objects people edit just before they submit work.

Admission judges from the watch cache, which lags the apiserver: an approval signed or a
budget raised a moment before `kubectl apply` may not be there yet, and a signature removed
a moment before may still be. When an answer turns on them
(`domain.verdicts.rests_on_recent_edits`: a denial under a signed rule, or an admission a
signature carries within `SETTLE` seconds of this webhook admitting an edit to the
namespace's budgets or approvals, or to a policy), the CostPolicies and the namespace's
TrainingJobBudgets and CostApprovals are listed from the apiserver and the request judged
again against them. Every other answer comes from memory, with no network call.

Bounds, so that a slow apiserver or a flood of such requests cannot hold admission:
- the LISTs run on this class's own threads (3 x `CONCURRENT`), never the event loop's
  shared pool, and are parsed there too;
- the whole read, waiting for a slot included, must finish within `DEADLINE` seconds, else
  the cached answer stands ("failed");
- requests for one namespace share a read that has not sent its LISTs yet (never one under
  way: it may have been served before the request's edit), and a read whose waiters all
  gave up before it got a slot is dropped;
- a namespace holding more than `MAX_ITEMS` budgets or approvals is not re-read ("failed").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from costgov.adapters.kubernetes import KubeClient
from costgov.api import CostApproval, CostPolicy, TrainingJobBudget
from costgov.domain.judging import Situation
from costgov.services.inventory import parse_resource

__all__ = ["CONCURRENT", "DEADLINE", "MAX_ITEMS", "SETTLE", "Rereads"]

CONCURRENT = 2
"""Reads (of three LISTs each) in flight at once, over all namespaces."""
DEADLINE = 0.5
"""Seconds a whole read may take. On loopback one takes 4-10 ms at the median and 11-86 ms
at p99 (`make bench-reread`, docs/benchmarks.md)."""
MAX_ITEMS = 1000
SETTLE = 10.0
"""Seconds after this webhook admits an edit to budgets, approvals or policies during which
signed admissions in its namespace (every namespace for a policy) read fresh: the watch
delivers an edit in milliseconds on an idle apiserver, seconds on a saturated one."""
log = logging.getLogger("costgov")

Fresh = tuple[tuple[CostPolicy, ...], tuple[TrainingJobBudget, ...], tuple[CostApproval, ...]]


class _Entry:
    """A read queued or under way for one namespace, and how many requests wait on it."""

    read: asyncio.Future[Fresh]

    def __init__(self) -> None:
        self.waiters, self.started = 0, False


def _retrieve(read: asyncio.Future[Fresh]) -> None:
    if not read.cancelled():
        read.exception()  # retrieved: every waiter may have given up already


class Rereads:
    """Fresh reads for one operator: its client, its threads, its reads in flight."""

    def __init__(self, kube: KubeClient | None) -> None:
        self._kube = kube
        self._slots = asyncio.Semaphore(CONCURRENT)
        self._pool = ThreadPoolExecutor(3 * CONCURRENT, thread_name_prefix="costgov-reread")
        self._inflight: dict[str, _Entry] = {}
        self._edits: dict[str | None, float] = {}

    def edited(self, namespace: str | None, now: float | None = None) -> None:
        """This webhook admitted an edit to a budget or approval in `namespace`, or to a
        policy (None): signed admissions there read fresh for `SETTLE` seconds."""
        at = time.monotonic() if now is None else now
        if len(self._edits) > MAX_ITEMS:  # bounded: forget the settled ones
            self._edits = {k: t for k, t in self._edits.items() if at - t < SETTLE}
        self._edits[namespace] = at

    def edited_lately(self, namespace: str, now: float | None = None) -> bool:
        """Whether an edit admitted within `SETTLE` seconds may not be in the cache yet."""
        at = time.monotonic() if now is None else now
        edits = self._edits
        return any(k in edits and at - edits[k] < SETTLE for k in (namespace, None))

    async def situation(self, base: Situation, namespace: str) -> Situation | None:
        """`base` with fresh policies, budgets and approvals; None when no read could be
        made within the deadline (the reason is logged)."""
        if self._kube is None:
            return None
        try:
            async with asyncio.timeout(DEADLINE):
                policies, budgets, approvals = await self._shared(namespace)
        except Exception as exc:  # TimeoutError included: the cached answer stands
            log.warning(f"costgov could not re-read policies and approvals: {exc!r}")
            return None
        return replace(base, policies=policies, budgets=budgets, approvals=approvals)

    async def _shared(self, namespace: str) -> Fresh:
        """The read queued for this namespace (its LISTs not issued yet), or a new one. A
        read already under way is never joined: it may have been served before this
        request's edit. A read whose waiters all gave up before it got a slot is dropped."""
        entry = self._inflight.get(namespace)
        if entry is None:
            entry = self._inflight[namespace] = _Entry()
            entry.read = asyncio.ensure_future(self._read(namespace, entry))
            entry.read.add_done_callback(_retrieve)
        entry.waiters += 1
        try:
            return await asyncio.shield(entry.read)
        finally:
            entry.waiters -= 1
            if entry.waiters == 0 and not entry.started:
                entry.read.cancel()
                if self._inflight.get(namespace) is entry:
                    del self._inflight[namespace]

    async def _read(self, namespace: str, entry: _Entry) -> Fresh:
        async with self._slots:
            if self._inflight.get(namespace) is entry:
                del self._inflight[namespace]  # later requests start a read of their own
            entry.started = True
            # all three finish before the slot is freed (one failing fast must not leave
            # the other two holding threads beyond the limit)
            found = await asyncio.gather(
                self._list(CostPolicy, "costpolicies", None),
                self._list(TrainingJobBudget, "trainingjobbudgets", namespace),
                self._list(CostApproval, "costapprovals", namespace),
                return_exceptions=True,
            )
        for outcome in found:
            if isinstance(outcome, BaseException):
                raise outcome
        policies, budgets, approvals = found
        return policies, budgets, approvals  # type: ignore[return-value]

    async def _list(self, model: Any, plural: str, namespace: str | None) -> tuple[Any, ...]:
        kube = self._kube
        assert kube is not None

        def call() -> tuple[Any, ...]:
            items = kube.list_costgov_now(plural, namespace, DEADLINE, MAX_ITEMS)
            return tuple(x for x in (parse_resource(model, i) for i in items) if x is not None)

        read: Callable[[], tuple[Any, ...]] = call
        return await asyncio.get_running_loop().run_in_executor(self._pool, read)
