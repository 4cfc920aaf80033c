"""Admission answers that turn on recent edits are checked against a fresh read.

The watch cache lags the apiserver. CI once saw `kubectl patch tjb ... approval` answered,
then `kubectl apply` of the Job it covers denied for want of that approval, a few
milliseconds later: the webhook judged from a cache that had not seen the patch yet. These
tests hold a cache that lags on purpose (the Gate) and an apiserver that has the edit (a
client answering LIST with the objects as a user wrote them).

Figures by hand: a p5.48xlarge is $55.04/h for 8 H100; a Job of 8 GPUs with
activeDeadlineSeconds 259,200 (72 h) is 72 x 55.04 = $3,962.88, above the policy's $1,000
approval tier, inside a TrainingJobBudget of $10,000.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from costgov.adapters.kubernetes import KubeError
from costgov.adapters.prometheus import PrometheusSource
from costgov.api import CostPolicy, TrainingJobBudget
from costgov.catalog import load_catalog
from costgov.domain.judging import Situation
from costgov.services import operating, rereading
from costgov.services.admitting import Gate, Request
from costgov.services.runtime import Runtime
from costgov.settings import Settings

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
POLICY: dict[str, Any] = {
    "apiVersion": "costgov.io/v1alpha1",
    "kind": "CostPolicy",
    "metadata": {"name": "ml-platform"},
    "spec": {
        "mode": "enforce",
        "scope": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ml-research"}}
        },
        "approvals": [{"above": 1000, "approvers": {"users": ["alice"]}}],
    },
}
SIGNED = {"approvedBy": "alice", "amount": 5000, "expires": "2099-01-01T00:00:00Z"}


def _budget(approval: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "amount": 10000,
        "requestedBy": "bob",
        "selector": {"matchLabels": {"costgov.io/budget": "run-a"}},
    }
    if approval is not None:
        spec["approval"] = approval
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "TrainingJobBudget",
        "metadata": {"name": "run-a", "namespace": "ml-research"},
        "spec": spec,
    }


JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "run-a-1", "namespace": "ml-research",
                 "labels": {"costgov.io/budget": "run-a"}},
    "spec": {
        "activeDeadlineSeconds": 259200,
        "template": {"spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
            "containers": [{"name": "c", "image": "trainer",
                            "resources": {"limits": {"nvidia.com/gpu": "8"}}}],
        }},
    },
}  # fmt: skip


class Apiserver:
    """Answers LIST like the apiserver (on the caller's thread): the objects as stored, or
    an error, after `delay` seconds."""

    def __init__(
        self, objects: dict[str, list[dict[str, Any]]], fail: bool = False, delay: float = 0
    ) -> None:
        self.objects, self.fail, self.delay = objects, fail, delay
        self.calls: list[tuple[str, str | None]] = []

    def list_costgov_now(
        self, plural: str, namespace: str | None, timeout: float, limit: int
    ) -> list[dict[str, Any]]:
        self.calls.append((plural, namespace))
        served = list(self.objects.get(plural, []))  # as stored when the LIST is served
        time.sleep(self.delay)
        if self.fail:
            raise KubeError(f"listing {plural}: 503 Service Unavailable")
        return served


def _runtime(api: Apiserver) -> Runtime:
    settings = Settings()
    return Runtime(settings=settings, catalog=load_catalog(None),
                   source=PrometheusSource(settings), kube=api)  # type: ignore[arg-type]  # fmt: skip


def _gate(runtime: Runtime, budget: dict[str, Any]) -> Gate:
    situation = Situation(
        catalog=runtime.catalog,
        now=NOW,
        policies=(CostPolicy.model_validate(POLICY),),
        budgets=(TrainingJobBudget.model_validate(budget),),
    )
    return Gate(situation)


def _request(dryrun: bool = False) -> Request:
    return Request("Job", "CREATE", JOB, None, "bob", ("devs",), dryrun)


def _pending(runtime: Runtime) -> dict[tuple[str, str], dict[str, Decimal]]:
    return {k: {j: a for j, (a, _) in v.items()} for k, v in runtime.ledger.pending.items()}


def _named(name: str) -> Request:
    job = {**JOB, "metadata": {**JOB["metadata"], "name": name}}
    return Request("Job", "CREATE", job, None, "bob", ("devs",), False)


def _count(runtime: Runtime, outcome: str) -> float:
    value = runtime.metrics.registry.get_sample_value(
        "costgov_admission_rereads_total", {"outcome": outcome}
    )
    return value or 0.0


def _stored(budget: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {"costpolicies": [POLICY], "trainingjobbudgets": [budget]}


def test_an_approval_the_cache_has_not_seen_yet_counts() -> None:
    api = Apiserver(_stored(_budget(SIGNED)))
    runtime = _runtime(api)
    stale = _gate(runtime, _budget(None))
    decision = asyncio.run(operating.admission(runtime, _request(), stale, "ml-research"))
    assert decision.allowed, decision.message
    assert api.calls == [
        ("costpolicies", None),
        ("trainingjobbudgets", "ml-research"),
        ("costapprovals", "ml-research"),
    ]
    assert _count(runtime, "changed") == 1
    # admitted against the budget at 72 x 55.04 = 3,962.88, recorded once
    assert _pending(runtime) == {("ml-research", "run-a"): {"run-a-1": Decimal("3962.88")}}


def test_an_approval_revoked_a_moment_ago_no_longer_counts() -> None:
    api = Apiserver(_stored(_budget(None)))
    runtime = _runtime(api)
    runtime.rereads.edited("ml-research")  # the webhook admitted bob's removal just now
    cached = _gate(runtime, _budget(SIGNED))
    decision = asyncio.run(operating.admission(runtime, _request(), cached, "ml-research"))
    assert not decision.allowed
    assert "approval.required" in decision.message and "$3,962.88" in decision.message
    assert _count(runtime, "changed") == 1


def test_a_denial_the_apiserver_confirms_is_counted_unchanged() -> None:
    api = Apiserver(_stored(_budget(None)))
    runtime = _runtime(api)
    decision = asyncio.run(
        operating.admission(runtime, _request(), _gate(runtime, _budget(None)), "ml-research")
    )
    assert not decision.allowed
    assert _count(runtime, "unchanged") == 1 and _count(runtime, "changed") == 0


def test_when_the_read_fails_the_cached_answer_stands() -> None:
    api = Apiserver(_stored(_budget(SIGNED)), fail=True)
    runtime = _runtime(api)
    stale = _gate(runtime, _budget(None))
    decision = asyncio.run(operating.admission(runtime, _request(), stale, "ml-research"))
    assert not decision.allowed  # fails closed: the cache has no approval
    assert _count(runtime, "failed") == 1


def test_work_nothing_signs_is_never_reread() -> None:
    api = Apiserver({})
    runtime = _runtime(api)
    small = {**JOB, "spec": {**JOB["spec"], "activeDeadlineSeconds": 3600}}  # 1 h: $55.04
    request = Request("Job", "CREATE", small, None, "bob", ("devs",), False)
    decision = asyncio.run(
        operating.admission(runtime, request, _gate(runtime, _budget(None)), "ml-research")
    )
    assert decision.allowed and api.calls == []


def test_requests_for_one_namespace_share_one_read() -> None:
    api = Apiserver(_stored(_budget(SIGNED)), delay=0.05)
    runtime = _runtime(api)

    async def five() -> list[bool]:
        stale = _gate(runtime, _budget(None))
        found = await asyncio.gather(
            *(operating.admission(runtime, _named(f"run-a-{i}"), stale, "ml-research")
              for i in range(5))
        )  # fmt: skip
        return [d.allowed for d in found]

    # 5 x 3,962.88 = 19,814.40 would overspend the $10,000 budget: two fit (7,925.76), the
    # third would bring it to 11,888.64
    assert asyncio.run(five()) == [True, True, False, False, False]
    assert len(api.calls) == 3  # one read: policies, budgets, approvals


def test_jobs_admitted_while_one_waited_for_its_read_count_against_the_budget() -> None:
    # Found by review: judged before the wait and recorded after it, two Jobs arriving
    # within one LIST's round trip were both admitted against the same remaining dollars.
    signed = {**_budget(SIGNED), "spec": {**_budget(SIGNED)["spec"], "amount": 6000}}
    api = Apiserver(_stored(signed), delay=0.05)
    runtime = _runtime(api)
    runtime.rereads.edited("ml-research")  # alice's signature, admitted just now

    async def two() -> list[bool]:
        gate = _gate(runtime, signed)
        first = operating.admission(runtime, _request(), gate, "ml-research")
        second = operating.admission(runtime, _named("run-a-2"), gate, "ml-research")
        return [d.allowed for d in await asyncio.gather(first, second)]

    # $6,000 holds one 3,962.88 run; two would be 7,925.76
    assert asyncio.run(two()) == [True, False]
    assert _pending(runtime) == {("ml-research", "run-a"): {"run-a-1": Decimal("3962.88")}}


def test_a_slow_apiserver_does_not_hold_the_answer_past_the_deadline() -> None:
    api = Apiserver(_stored(_budget(SIGNED)), delay=3 * rereading.DEADLINE)
    runtime = _runtime(api)
    stale = _gate(runtime, _budget(None))

    async def answered() -> bool:
        # a hang guard, not a timing check: the read gives up at its deadline
        coro = operating.admission(runtime, _request(), stale, "ml-research")
        return (await asyncio.wait_for(coro, 2 * rereading.DEADLINE + 1)).allowed

    assert asyncio.run(answered()) is False  # the cached answer stands
    assert _count(runtime, "failed") == 1


def test_dry_runs_and_unwatched_namespaces_are_not_reread() -> None:
    api = Apiserver(_stored(_budget(SIGNED)))
    runtime = _runtime(api)
    stale = _gate(runtime, _budget(None))
    dry = asyncio.run(operating.admission(runtime, _request(dryrun=True), stale, "ml-research"))
    assert not dry.allowed and api.calls == []
    settings = Settings(namespaces=["other"])
    watching = Runtime(settings=settings, catalog=runtime.catalog,
                       source=PrometheusSource(settings), kube=api)  # type: ignore[arg-type]  # fmt: skip
    found = asyncio.run(operating.admission(watching, _request(), stale, "ml-research"))
    assert not found.allowed and api.calls == []


def test_a_request_never_shares_a_read_served_before_its_edit() -> None:
    # Found by review: a request joined a read already under way for its namespace, whose
    # LISTs the apiserver had answered before this request's approval was written.
    api = Apiserver(_stored(_budget(None)), delay=0.1)
    runtime = _runtime(api)
    stale = _gate(runtime, _budget(None))

    async def sequence() -> list[bool]:
        first = asyncio.create_task(
            operating.admission(runtime, _named("run-a-1"), stale, "ml-research")
        )
        while len(api.calls) < 3:  # its LISTs are served (the budget still unsigned)
            await asyncio.sleep(0.005)
        api.objects["trainingjobbudgets"] = [_budget(SIGNED)]  # alice signs
        second = await operating.admission(runtime, _named("run-a-2"), stale, "ml-research")
        return [(await first).allowed, second.allowed]

    assert asyncio.run(sequence()) == [False, True]
    assert len(api.calls) == 6  # a read of its own


def _edit(runtime: Runtime, kind: str, obj: dict[str, Any], old: dict[str, Any]) -> bool:
    request = Request(kind, "UPDATE", obj, old, "alice", ("devs",), False)
    gate = _gate(runtime, _budget(None))
    return asyncio.run(operating.admission(runtime, request, gate, "ml-research")).allowed


def test_a_signed_admission_reads_fresh_only_moments_after_an_edit() -> None:
    # PRODUCT.md section 5: answers come from memory, never a network call per request. A
    # signed admission with no edit in sight is answered from the cache alone...
    api = Apiserver(_stored(_budget(SIGNED)))
    runtime = _runtime(api)
    signed = _gate(runtime, _budget(SIGNED))
    decision = asyncio.run(operating.admission(runtime, _request(), signed, "ml-research"))
    assert decision.allowed and api.calls == []
    # ...until this webhook admits alice's signature on the budget: then the namespace's
    # signed admissions read fresh for SETTLE seconds (the watch may not have it yet)
    assert _edit(runtime, "TrainingJobBudget", _budget(SIGNED), _budget(None))
    decision = asyncio.run(operating.admission(runtime, _named("run-a-2"), signed, "ml-research"))
    assert decision.allowed and len(api.calls) == 3
    assert runtime.rereads.edited_lately("ml-research")
    assert not runtime.rereads.edited_lately("other")  # another namespace's edits: none
    later = time.monotonic() + rereading.SETTLE + 0.1
    assert not runtime.rereads.edited_lately("ml-research", now=later)


def test_a_policy_edit_makes_every_namespace_read_fresh() -> None:
    api = Apiserver(_stored(_budget(SIGNED)))
    runtime = _runtime(api)
    tightened = {**POLICY, "spec": {**POLICY["spec"], "mode": "enforce"}}
    runtime.rereads.edited(None)  # what admitting a CostPolicy records (below)
    assert runtime.rereads.edited_lately("ml-research")
    assert runtime.rereads.edited_lately("anywhere")
    fresh = _runtime(api)
    request = Request("CostPolicy", "UPDATE", tightened, POLICY, "admin", ("ops",), False)
    gate = _gate(fresh, _budget(None))
    assert asyncio.run(operating.admission(fresh, request, gate, "default")).allowed
    assert fresh.rereads.edited_lately("ml-research")
    # a dry run changes nothing, so it marks nothing
    dry = _runtime(api)
    request = Request("CostPolicy", "UPDATE", tightened, POLICY, "admin", ("ops",), True)
    assert asyncio.run(operating.admission(dry, request, _gate(dry, _budget(None)), "x")).allowed
    assert not dry.rereads.edited_lately("ml-research")
