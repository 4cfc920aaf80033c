"""A fresh read of the objects people edit just before they submit work.

Admission judges from the watch cache, which lags the apiserver: an approval signed, a
budget raised or a policy loosened a moment before `kubectl apply` may not be there yet, and
one revoked a moment before may still be. When an answer turns on them
(`domain.verdicts.rests_on_recent_edits`), the policies and the namespace's
TrainingJobBudgets and CostApprovals are listed from the apiserver and the request judged
again against them (the three LISTs in parallel: one round trip). At most `CONCURRENT`
reads run at once (a flood of denied requests must not become a flood of LISTs, nor hold
more than 3 x `CONCURRENT` of the event loop's worker threads); beyond that, or when the
read fails, the cached answer stands.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from costgov.adapters.kubernetes import KubeClient
from costgov.api import CostApproval, CostPolicy, TrainingJobBudget
from costgov.domain.judging import Situation
from costgov.services.inventory import parse_resource

__all__ = ["CONCURRENT", "TIMEOUT", "Rereads"]

CONCURRENT = 2
TIMEOUT = 0.5
"""Seconds each LIST may take. On loopback a whole read takes 4-10 ms at the median and
11-80 ms at p99 (`make bench-reread`, docs/benchmarks.md); a slow apiserver must not hold
admission answers for long."""
log = logging.getLogger("costgov")


def _parsed(model: Any, items: list[dict[str, Any]]) -> tuple[Any, ...]:
    found = (parse_resource(model, item) for item in items)
    return tuple(x for x in found if x is not None)


class Rereads:
    """Fresh reads for one operator (its client and its limit on reads in flight)."""

    def __init__(self, kube: KubeClient | None) -> None:
        self._kube = kube
        self._slots = asyncio.Semaphore(CONCURRENT)

    async def situation(self, base: Situation, namespace: str) -> tuple[str, Situation | None]:
        """(outcome, the situation with fresh policies, budgets and approvals); the outcome
        is "failed" or "busy" (and no situation) when no fresh read was made."""
        if self._kube is None:
            return "failed", None
        if self._slots.locked():
            return "busy", None
        async with self._slots:
            try:
                policies, budgets, approvals = await asyncio.gather(
                    self._kube.list_costgov("costpolicies", None, TIMEOUT),
                    self._kube.list_costgov("trainingjobbudgets", namespace, TIMEOUT),
                    self._kube.list_costgov("costapprovals", namespace, TIMEOUT),
                )
            except Exception as exc:  # the cached answer stands; the reason is logged
                log.warning(f"costgov could not re-read policies and approvals: {exc}")
                return "failed", None
        return "read", replace(
            base,
            policies=_parsed(CostPolicy, policies),
            budgets=_parsed(TrainingJobBudget, budgets),
            approvals=_parsed(CostApproval, approvals),
        )
