"""A CostApproval whose target is a selector approves one workload: the first admitted on
its signatures (issue 7: "an approval for one workload"). The webhook records the use in the
ledger at once; the approval's reconcile writes it into `status.boundTo`, which outlives
the ledger and the workload.

Figures by hand: a p5.48xlarge is $55.04/h for 8 H100; a Job of 8 GPUs for 72 h
(activeDeadlineSeconds 259,200) is 72 x 55.04 = $3,962.88, above the $1,000 tier; alice
signs $5,000, so a second such Job ($7,925.76 in all) must not pass on that signature.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from costgov.adapters.prometheus import PrometheusSource
from costgov.api import CostApproval, CostPolicy
from costgov.api.costapproval import CostApprovalStatus
from costgov.catalog import load_catalog
from costgov.domain.judging import Situation
from costgov.domain.reading import workload_from_object
from costgov.services import operating
from costgov.services.admitting import Gate, Request
from costgov.services.approval_reconciling import reconcile_approval
from costgov.services.inventory import Inventory, JobRecord
from costgov.services.ledgers import PENDING_FOR
from costgov.services.runtime import Runtime
from costgov.settings import Settings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = CostPolicy.model_validate({
    "apiVersion": "costgov.io/v1alpha1", "kind": "CostPolicy", "metadata": {"name": "gpu"},
    "spec": {"mode": "enforce",
             "scope": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ml"}}},
             "approvals": [{"above": 1000, "approvers": {"users": ["alice"]}}]},
})  # fmt: skip
APPROVAL: dict[str, Any] = {
    "apiVersion": "costgov.io/v1alpha1", "kind": "CostApproval",
    "metadata": {"name": "sweep", "namespace": "ml"},
    "spec": {"requestedBy": "bob",
             "target": {"kind": "Job", "selector": {"matchLabels": {"run": "sweep"}}},
             "approval": {"approvedBy": "alice", "amount": 5000,
                          "expires": "2027-01-01T00:00:00Z"}},
}  # fmt: skip


def _job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "ml", "labels": {"run": "sweep"},
                     "creationTimestamp": "2026-12-01T11:00:00Z"},
        "spec": {"activeDeadlineSeconds": 259200, "template": {"spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
            "containers": [{"name": "c", "image": "t",
                            "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}},
    }  # fmt: skip


def _runtime() -> Runtime:
    settings = Settings()
    return Runtime(settings=settings, catalog=load_catalog(None),
                   source=PrometheusSource(settings), kube=None, clock=lambda: NOW)  # fmt: skip


def _situation(runtime: Runtime, approval: dict[str, Any] = APPROVAL) -> Situation:
    return Situation(catalog=runtime.catalog, now=NOW, policies=(POLICY,),
                     approvals=(CostApproval.model_validate(approval),),
                     spend=runtime.ledger.spend())  # fmt: skip


def _admit(runtime: Runtime, name: str, approval: dict[str, Any] = APPROVAL) -> Any:
    request = Request("Job", "CREATE", _job(name), None, "bob", ("devs",), False)
    gate = Gate(_situation(runtime, approval))
    return asyncio.run(operating.admission(runtime, request, gate, "ml"))


def test_the_webhook_binds_a_selector_approval_to_the_first_workload_it_admits() -> None:
    runtime = _runtime()
    first = _admit(runtime, "sweep-a")
    assert first.allowed, first.message
    assert runtime.ledger.spend().bound == {("ml", "sweep"): "sweep-a"}
    second = _admit(runtime, "sweep-b")
    assert not second.allowed
    assert "approval.required" in second.message and "$3,962.88" in second.message
    assert _admit(runtime, "sweep-a").allowed  # the bound Job itself, again (a re-apply)
    assert runtime.ledger.spend().bound == {("ml", "sweep"): "sweep-a"}


def test_a_dry_run_or_a_denial_binds_nothing() -> None:
    runtime = _runtime()
    request = Request("Job", "CREATE", _job("sweep-a"), None, "bob", ("devs",), True)
    decision = asyncio.run(operating.admission(runtime, request, Gate(_situation(runtime)), "ml"))
    assert decision.allowed and runtime.ledger.spend().bound == {}
    unsigned = {**APPROVAL, "spec": {**APPROVAL["spec"], "approval": None}}
    assert not _admit(runtime, "sweep-a", unsigned).allowed
    assert runtime.ledger.spend().bound == {}


def test_the_reconcile_records_the_binding_and_keeps_it_after_the_workload_goes() -> None:
    runtime = _runtime()
    assert _admit(runtime, "sweep-b").allowed  # b admitted first, though a is older
    records = tuple(
        JobRecord(workload_from_object(_job(n)), active=1, finished=False, started=None,
                  suspended_by=None)
        for n in ("sweep-a", "sweep-b")
    )  # fmt: skip
    inv = Inventory(jobs=records, approvals=(CostApproval.model_validate(APPROVAL),))
    approval = CostApproval.model_validate(APPROVAL)
    status = reconcile_approval(approval, inv, situation=_situation(runtime),
                                old=CostApprovalStatus()).status  # fmt: skip
    assert status.bound_to == "sweep-b" and status.phase == "Approved"
    # later: the ledger forgot (an operator restart), Job b is gone; the status holds
    recorded = {**APPROVAL, "status": {"boundTo": "sweep-b"}}
    fresh = _runtime()
    gone = Inventory(jobs=records[:1])
    later = reconcile_approval(CostApproval.model_validate(recorded), gone,
                               situation=_situation(fresh, recorded),
                               old=CostApprovalStatus(bound_to="sweep-b")).status  # fmt: skip
    assert later.bound_to == "sweep-b" and later.phase == "Pending"  # its target is not running
    assert not _admit(fresh, "sweep-c", recorded).allowed


def test_with_no_record_the_reconcile_binds_the_oldest_workload_the_signature_approves() -> None:
    # the webhook's record lost (a restart between admission and reconcile)
    runtime = _runtime()
    older, newer = _job("sweep-old"), _job("sweep-new")
    newer["metadata"]["creationTimestamp"] = "2026-12-01T11:30:00Z"
    records = tuple(
        JobRecord(workload_from_object(j), active=1, finished=False, started=None,
                  suspended_by=None)
        for j in (newer, older)
    )  # fmt: skip
    status = reconcile_approval(CostApproval.model_validate(APPROVAL), Inventory(jobs=records),
                                situation=_situation(runtime), old=CostApprovalStatus()).status  # fmt: skip
    assert status.bound_to == "sweep-old"


def test_an_admission_never_created_frees_the_signature_after_a_while() -> None:
    # admitted by costgov, then refused by another webhook: no Job appears, the reconcile
    # binds nothing, and after PENDING_FOR another workload may use the signature
    runtime = _runtime()
    runtime.ledger.bind(("ml", "sweep"), "sweep-a", NOW)
    runtime.ledger.bind(("ml", "sweep"), "sweep-b", NOW + timedelta(minutes=1))
    assert runtime.ledger.spend().bound == {("ml", "sweep"): "sweep-a"}
    runtime.ledger.bind(("ml", "sweep"), "sweep-b", NOW + PENDING_FOR)
    assert runtime.ledger.spend().bound == {("ml", "sweep"): "sweep-b"}
