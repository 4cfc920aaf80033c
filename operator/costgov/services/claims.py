"""A selector-target CostApproval's first use, recorded before the work is admitted.

Such an approval approves one workload (docs/policies.md): the first admitted on its
signatures. Memory alone cannot hold that: replicas of the webhook each judge from their own
watch, and a restart forgets. So before answering "allowed" on an approval no workload is
bound to yet, the webhook writes `status.boundTo` (name and uid) with the approval's
resourceVersion as a precondition (kube-apiserver answers 409 to a stale one, on /status
too): of two replicas admitting two workloads at once on one approval, one write succeeds
and the other conflicts. A deleted and recreated approval has another resourceVersion, so a
cache holding the old one conflicts too. On a conflict, or a write whose answer is lost, the
approval is read again: bound to this workload (the write landed), or judged again on it
as it is now (bound to another, changed, deleted). When neither the write nor the read can
be made, the request is refused (fail closed). Of several grants that would approve, one
that uses up a selector approval is used last (`domain.approvals.best_assessment`). One
write per approval in its lifetime, not per request.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

from costgov.adapters.kubernetes import ConflictError
from costgov.api import CostApproval
from costgov.api.costapproval import BoundWorkload
from costgov.domain.scoping import binding_key, bindings, bound_workload
from costgov.services.admitting import Decision, Gate, Request, admit
from costgov.services.inventory import parse_resource
from costgov.services.runtime import Runtime

__all__ = ["ATTEMPTS", "DEADLINE", "TIMEOUT", "hold_first_use"]

TIMEOUT = 1.0
"""Seconds one write or read of the approval may take."""
DEADLINE = 3.0
"""Seconds the whole may take: within the webhook's 5 s, after a fresh read's 0.5 s."""
ATTEMPTS = 3
"""Rounds of write, conflict, judged again."""
log = logging.getLogger("costgov")


def _unclaimed(
    decision: Decision, runtime: Runtime, me: BoundWorkload | None
) -> list[CostApproval]:
    """Selector-target CostApprovals an admission rests on (in an enforcing policy) that are
    not bound to this workload yet (none if it rests on one bound to another: see below)."""
    used = (
        v.approval.grant
        for v in decision.verdicts
        if v.mode == "enforce" and v.approval is not None and v.approval.satisfied
    )
    held = runtime.ledger.spend().bound
    found = [(a, bound_workload(a, held)) for a in bindings(used)]
    return [a for a, h in found if h is None or me is None or not h.same(me.name, me.uid)]


async def hold_first_use(
    runtime: Runtime, request: Request, gate: Gate, decision: Decision
) -> Decision:
    """`decision`, once every selector-target CostApproval it rests on is bound to this
    workload; else the request judged again on the approval as it is now, or refused. The
    whole takes at most `DEADLINE` seconds (the webhook's own timeout is 5 s). Bindings
    written for a request that ends refused are taken back (best effort, within 1 s)."""
    if request.dryrun or not decision.allowed or not _unclaimed(decision, runtime, None):
        return decision
    written: list[tuple[CostApproval, str | None]] = []
    try:
        async with asyncio.timeout(DEADLINE):
            final = await _hold(runtime, request, gate, decision, written)
    except TimeoutError:
        final = _refused(decision, "the apiserver did not answer in time")
    if not final.allowed and written:
        await _release(runtime, written)
    return final


async def _hold(
    runtime: Runtime,
    request: Request,
    gate: Gate,
    decision: Decision,
    written: list[tuple[CostApproval, str | None]],
) -> Decision:
    me = _identity(request)
    if me is None:  # hostile input: nothing to bind the approval to
        return Decision(False, "metadata.name and metadata.uid: expected the workload's "
                        "name and uid (at most 253 and 128 characters), as the apiserver "
                        "sends them", 400, verdicts=decision.verdicts)  # fmt: skip
    for _ in range(ATTEMPTS):  # an attempt ends in a conflict: judged again, then retried
        unclaimed = _unclaimed(decision, runtime, me) if decision.allowed else []
        changed: tuple[CostApproval, CostApproval | bool] | None = None
        for approval in unclaimed:
            if bound_workload(approval, runtime.ledger.spend().bound) is not None:
                changed = approval, approval  # bound to another while this one waited
                break
            claimed = await _claim(runtime, approval, me)
            if claimed is None:
                return _refused(decision, "the apiserver did not answer")
            if not isinstance(claimed, _Ours):
                changed = approval, claimed
                break
            written.append((approval, claimed.version))
            runtime.ledger.bind(binding_key(approval), me, runtime.clock())
        if changed is None:
            return decision
        gate = _with(gate, *changed, runtime)
        decision = admit(request, gate)
    if not decision.allowed or not _unclaimed(decision, runtime, me):
        return decision  # the last judgement stands
    return _refused(decision, "it kept changing")


async def _release(runtime: Runtime, written: list[tuple[CostApproval, str | None]]) -> None:
    """Take back the bindings written for a request that ends refused: each only if the
    approval is still as this request wrote it (its resourceVersion then)."""
    for approval, _ in written:
        runtime.ledger.unbind(binding_key(approval))
    kube = runtime.kube
    try:
        async with asyncio.timeout(TIMEOUT):
            for approval, version in written:
                if kube is not None and version:
                    meta = {**approval.metadata.model_dump(), "resourceVersion": version}
                    await kube.patch_status_if("costapprovals", meta, {"boundTo": None}, TIMEOUT)
    except Exception as exc:  # TimeoutError included: it stays used (the message says so)
        log.warning(f"cannot take back the use of a CostApproval for a refused request: {exc}")


def _refused(decision: Decision, why: str) -> Decision:
    return Decision(
        False,
        "costgov could not record that a CostApproval with a selector (which approves one "
        f"workload) is used for this one: {why}. If its status.boundTo names this workload "
        "now, it is used up and a new approval is needed; else try again",
        409,
        verdicts=decision.verdicts,
    )


def _identity(request: Request) -> BoundWorkload | None:
    """The workload's name and uid (the apiserver sets both before admission), or None."""
    meta = request.metadata
    name, uid = meta.get("name"), meta.get("uid")
    if not isinstance(name, str) or not 0 < len(name) <= 253:
        return None
    if uid is not None and (not isinstance(uid, str) or len(uid) > 128):
        return None
    return BoundWorkload(name=name, uid=uid or None)


def _with(gate: Gate, cached: CostApproval, now: CostApproval | bool, runtime: Runtime) -> Gate:
    """The gate with the approval as it is now (gone when False) and the ledger's latest."""
    ns, name = cached.metadata.namespace, cached.metadata.name
    others = [a for a in gate.situation.approvals
              if (a.metadata.namespace, a.metadata.name) != (ns, name)]  # fmt: skip
    approvals = [*others, now] if isinstance(now, CostApproval) else others
    situation = replace(gate.situation, approvals=approvals, spend=runtime.ledger.spend())
    return replace(gate, situation=situation)


@dataclass(frozen=True, slots=True)
class _Ours:
    """The approval's status names this workload now, at this resourceVersion."""

    version: str | None


async def _claim(
    runtime: Runtime, approval: CostApproval, me: BoundWorkload
) -> _Ours | CostApproval | bool | None:
    """`_Ours` once the approval's status names this workload; the approval as it is now
    (False: deleted) when it changed since the cache read it; None when it cannot be told."""
    kube = runtime.kube
    if kube is None:  # no cluster (tests of the engine): memory is all there is
        return _Ours(None)
    meta = approval.metadata.model_dump()  # extra fields included: resourceVersion
    status = me.model_dump(mode="json", by_alias=True, exclude_none=True)
    failed = False
    try:
        written = await kube.patch_status_if("costapprovals", meta, {"boundTo": status}, TIMEOUT)
        return _Ours(str((written.get("metadata") or {}).get("resourceVersion") or "") or None)
    except ConflictError:
        pass
    except Exception as exc:  # the write may have landed with its answer lost: read it
        log.warning(f"cannot record the use of CostApproval {approval.metadata.name}: {exc}")
        failed = True
    try:
        body = await kube.read_costgov(
            "costapprovals", approval.metadata.namespace or "default", approval.metadata.name,
            TIMEOUT,
        )  # fmt: skip
    except Exception as exc:
        log.warning(f"cannot read CostApproval {approval.metadata.name}: {exc}")
        return None
    fresh: CostApproval | None = None if body is None else parse_resource(CostApproval, body)
    if fresh is None:
        return False
    holder = fresh.status.bound_to
    if holder is not None and holder.same(me.name, me.uid):  # the write landed, answer lost
        return _Ours((fresh.metadata.model_extra or {}).get("resourceVersion"))
    return None if failed and holder is None else fresh  # failed, not landed: refused
