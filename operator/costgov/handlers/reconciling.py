"""kopf timers: one reconcile per costgov object per interval. Glue only: load the object,
call the service, write what it returns."""

from __future__ import annotations

from typing import Any, cast

import kopf

from costgov.api import CostApproval, CostPolicy, InferenceDeployment, TrainingJobBudget
from costgov.handlers.indexing import first, inventory_from
from costgov.services import operating
from costgov.services.conditions import Event
from costgov.services.outcomes import Outcome

__all__ = ["reconcile_approval", "reconcile_budget", "reconcile_inference", "reconcile_policy"]

_API = {"Job": "batch/v1", "Pod": "v1"}


def _emit(events: list[Event]) -> None:
    for e in events:
        ref = {
            "apiVersion": _API.get(e.kind, "costgov.io/v1alpha1"),
            "kind": e.kind,
            "metadata": {"name": e.name, **({"namespace": e.namespace} if e.namespace else {})},
        }
        kopf.event(cast(kopf.Body, ref), type=e.type, reason=e.reason, message=e.message[:1024])


async def _write(outcome: Outcome[Any], patch: kopf.Patch, memo: Any) -> None:
    patch.status.update(await operating.apply_writes(memo.runtime, outcome))
    _emit(outcome.events)


async def reconcile_policy(body: kopf.Body, patch: kopf.Patch, memo: Any, **kw: Any) -> None:
    policy, invalid = operating.load(CostPolicy, body, memo.runtime)
    patch.status.update(invalid)
    if policy is not None:
        outcome = await operating.policy_cycle(
            memo.runtime, policy, inventory_from({**kw, "memo": memo}), body.get("status")
        )
        await _write(outcome, patch, memo)


async def reconcile_budget(body: kopf.Body, patch: kopf.Patch, memo: Any, **kw: Any) -> None:
    budget, invalid = operating.load(TrainingJobBudget, body, memo.runtime)
    patch.status.update(invalid)
    if budget is not None:
        outcome = await operating.budget_cycle(
            memo.runtime, budget, inventory_from({**kw, "memo": memo}), body.get("status")
        )
        await _write(outcome, patch, memo)


async def reconcile_inference(body: kopf.Body, patch: kopf.Patch, memo: Any, **kw: Any) -> None:
    idep, invalid = operating.load(InferenceDeployment, body, memo.runtime)
    patch.status.update(invalid)
    if idep is not None:
        key = (idep.metadata.namespace or "default", idep.metadata.name)
        ready = first(kw["owned_deployments_idx"], key) or 0
        inv = inventory_from({**kw, "memo": memo})
        outcome = await operating.inference_cycle(
            memo.runtime, idep, inv, body.get("status"), ready
        )
        await _write(outcome, patch, memo)


async def reconcile_approval(body: kopf.Body, patch: kopf.Patch, memo: Any, **kw: Any) -> None:
    approval, invalid = operating.load(CostApproval, body, memo.runtime)
    patch.status.update(invalid)
    if approval is not None:
        outcome = operating.approval_cycle(
            memo.runtime, approval, inventory_from({**kw, "memo": memo}), body.get("status")
        )
        await _write(outcome, patch, memo)
