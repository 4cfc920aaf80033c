"""kopf timers: one reconcile per costgov object per interval. Glue only: load the object,
call the service, write what it returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import kopf

from costgov.api import CostApproval, CostPolicy, InferenceDeployment, TrainingJobBudget
from costgov.handlers.indexing import first, inventory_from
from costgov.services import following, operating
from costgov.services.conditions import Event
from costgov.services.inventory import Inventory, problems_in
from costgov.services.outcomes import Outcome

__all__ = [
    "forget",
    "reconcile_approval",
    "reconcile_budget",
    "reconcile_inference",
    "reconcile_policy",
    "stop_reading",
]

_API = {"Job": "batch/v1", "Pod": "v1"}


def _emit(events: list[Event]) -> None:
    for e in events:
        ref = {
            "apiVersion": _API.get(e.kind, "costgov.io/v1alpha1"),
            "kind": e.kind,
            "metadata": {"name": e.name, **({"namespace": e.namespace} if e.namespace else {})},
        }
        kopf.event(cast(kopf.Body, ref), type=e.type, reason=e.reason, message=e.message[:1024])


Cycle = Callable[[], Awaitable[Outcome[Any]]]
LISTED_WAIT = 30.0
"""Seconds a reconcile waits for the first complete list of pods before it gives up."""


async def _inventory(memo: Any, kw: dict[str, Any]) -> Inventory:
    """The indexes' inventory, once the pods are listed (never an empty list for a full one)."""
    pods = memo.runtime.pods
    if not await pods.wait_listed(LISTED_WAIT):
        # only the problems of this object's namespace (or all, for a cluster-scoped one):
        # kopf may post the error as an Event on it
        ns = kw.get("namespace")
        found = problems_in(pods.problems, [ns] if ns else None)
        why = f": {found}" if found else ""
        raise kopf.TemporaryError(f"the GPU pods are not listed yet{why}", delay=LISTED_WAIT)
    return inventory_from({**kw, "memo": memo})


async def _done(outcome: Outcome[Any]) -> Outcome[Any]:
    return outcome


async def _reconcile(
    patch: kopf.Patch, runtime: Any, invalid: dict[str, Any], cycle: Cycle | None
) -> None:
    """Only the leader reconciles. The cycle and its writes (Jobs, Deployments) run guarded:
    dropped where they stand if the Lease is lost; status and Events only if still leading."""

    async def work() -> tuple[dict[str, Any], list[Event]]:
        if cycle is None:
            return {}, []
        outcome = await cycle()
        return await operating.apply_writes(runtime, outcome), outcome.events

    done = await runtime.leadership.guarded(work)
    if done is not None and runtime.leadership.leading:
        patch.status.update({**invalid, **done[0]})
        _emit(done[1])


async def reconcile_policy(body: kopf.Body, patch: kopf.Patch, memo: Any, **kw: Any) -> None:
    runtime, inv, old = memo.runtime, await _inventory(memo, kw), body.get("status")
    policy, invalid = operating.load(CostPolicy, body, runtime)
    if policy is not None and not runtime.leadership.leading:
        following.follow_policy(runtime, policy, old)
    cycle = (lambda: operating.policy_cycle(runtime, policy, inv, old)) if policy else None
    await _reconcile(patch, runtime, invalid, cycle)


async def reconcile_budget(body: kopf.Body, patch: kopf.Patch, memo: Any, **kw: Any) -> None:
    runtime, inv, old = memo.runtime, await _inventory(memo, kw), body.get("status")
    budget, invalid = operating.load(TrainingJobBudget, body, runtime)
    if budget is not None and not runtime.leadership.leading:
        following.follow_budget(runtime, budget, inv, old)
    cycle = (lambda: operating.budget_cycle(runtime, budget, inv, old)) if budget else None
    await _reconcile(patch, runtime, invalid, cycle)


async def reconcile_inference(body: kopf.Body, patch: kopf.Patch, memo: Any, **kw: Any) -> None:
    runtime, inv, old = memo.runtime, await _inventory(memo, kw), body.get("status")
    idep, invalid = operating.load(InferenceDeployment, body, runtime)
    key = (body.metadata.namespace or "default", body.metadata.name)
    ready = first(kw["owned_deployments_idx"], key) or 0
    cycle = (lambda: operating.inference_cycle(runtime, idep, inv, old, ready)) if idep else None
    await _reconcile(patch, runtime, invalid, cycle)


async def reconcile_approval(body: kopf.Body, patch: kopf.Patch, memo: Any, **kw: Any) -> None:
    runtime, inv, old = memo.runtime, await _inventory(memo, kw), body.get("status")
    approval, invalid = operating.load(CostApproval, body, runtime)
    cycle = (
        (lambda: _done(operating.approval_cycle(runtime, approval, inv, old))) if approval else None
    )
    await _reconcile(patch, runtime, invalid, cycle)


async def forget(body: kopf.Body, memo: Any, **kw: Any) -> None:
    """A costgov resource is gone: its series go now, and with the last of them every cost
    figure (no timer runs any more to refresh or prune them; alerts would fire forever)."""
    meta, inv = body.get("metadata") or {}, inventory_from({**kw, "memo": memo})
    key = (str(body.get("kind") or ""), meta.get("namespace") or "", str(meta.get("name") or ""))
    left = {("CostPolicy", "", p.metadata.name) for p in inv.policies}
    left |= {("TrainingJobBudget", b.metadata.namespace or "", b.metadata.name)
             for b in inv.budgets}  # fmt: skip
    left |= {("InferenceDeployment", i.metadata.namespace or "", i.metadata.name)
             for i in inv.inference}  # fmt: skip
    memo.runtime.forget(*key, left)


async def stop_reading(memo: Any, **_: Any) -> None:
    """The operator stops: background reads (recommendation evidence, past spend) stop
    with it."""
    runtime = getattr(memo, "runtime", None)
    if runtime is not None:
        runtime.evidence.close()
        runtime.catchup.close()
