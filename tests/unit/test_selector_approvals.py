"""A CostApproval whose target is a selector approves one workload: the first admitted on
its signatures (issue 7: "an approval for one workload"). Before admitting that first use,
the webhook writes `status.boundTo` (name and uid) with the approval's uid and
resourceVersion as a precondition (services/claims.py), so replicas and restarts agree.
The Apiserver below answers those calls as kube-apiserver does: a merge patch whose
metadata.resourceVersion is not the current one is 409 Conflict, its metadata.uid is
not checked on /status (the write lands), a GET of a deleted object 404 (all checked
against kube-apiserver v1.36.3 by an independent review).

Figures by hand: a p5.48xlarge is $55.04/h for 8 H100; a Job of 8 GPUs for 72 h
(activeDeadlineSeconds 259,200) is 72 x 55.04 = $3,962.88, above the $1,000 tier; alice
signs $5,000, so a second such Job ($7,925.76 in all) must not pass on that signature.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from costgov.adapters.kubernetes import ConflictError, KubeError
from costgov.adapters.prometheus import PrometheusSource
from costgov.api import CostApproval, CostPolicy
from costgov.api.costapproval import BoundWorkload, CostApprovalStatus
from costgov.catalog import load_catalog
from costgov.domain.judging import Situation
from costgov.domain.reading import workload_from_object
from costgov.services import operating
from costgov.services.admitting import Gate, Request
from costgov.services.approval_reconciling import reconcile_approval
from costgov.services.inventory import Inventory, JobRecord, parse_resource
from costgov.services.runtime import Runtime
from costgov.services.statuses import render_status
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
    "metadata": {"name": "sweep", "namespace": "ml", "uid": "capr-1", "resourceVersion": "7"},
    "spec": {"requestedBy": "bob",
             "target": {"kind": "Job", "selector": {"matchLabels": {"run": "sweep"}}},
             "approval": {"approvedBy": "alice", "amount": 5000,
                          "expires": "2027-01-01T00:00:00Z"}},
}  # fmt: skip


def _job(name: str, uid: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "ml", "labels": {"run": "sweep"},
                     "uid": uid or f"uid-{name}",
                     "creationTimestamp": "2026-12-01T11:00:00Z"},
        "spec": {"activeDeadlineSeconds": 259200, "template": {"spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
            "containers": [{"name": "c", "image": "t",
                            "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}},
    }  # fmt: skip


class Apiserver:
    """One CostApproval as kube-apiserver keeps it, and its status patches and reads."""

    def __init__(self, stored: dict[str, Any] | None = None, down: bool = False) -> None:
        self.stored = copy.deepcopy(stored if stored is not None else APPROVAL)
        self.down, self.patches = down, []  # type: ignore[var-annotated]
        self.conflicts, self.lose_answer, self.reads_down = 0, False, False

    async def patch_status_if(self, plural: str, meta: Any, status: Any, timeout: float) -> Any:
        self.patches.append((meta.get("uid"), meta.get("resourceVersion"), dict(status)))
        if self.down:
            raise KubeError("patching costapprovals ml/sweep status: 503")
        held = self.stored["metadata"]
        if self.conflicts:  # someone else wrote it meanwhile (a label, say)
            self.conflicts -= 1
            held["resourceVersion"] = str(int(held["resourceVersion"]) + 1)
        if meta.get("resourceVersion") != held["resourceVersion"]:
            raise ConflictError("costapprovals ml/sweep: 409")
        held["resourceVersion"] = str(int(held["resourceVersion"]) + 1)
        self.stored.setdefault("status", {}).update(status)
        if self.lose_answer:
            raise KubeError("patching costapprovals ml/sweep status: timed out")
        return copy.deepcopy(self.stored)

    async def read_costgov(self, plural: str, ns: str, name: str, timeout: float) -> Any:
        if self.reads_down:
            raise KubeError("reading costapprovals ml/sweep: 503")
        return copy.deepcopy(self.stored) if self.stored else None


def _runtime(kube: Any = None) -> Runtime:
    settings = Settings()
    return Runtime(settings=settings, catalog=load_catalog(None),
                   source=PrometheusSource(settings), kube=kube, clock=lambda: NOW)  # fmt: skip


def _situation(runtime: Runtime, approval: dict[str, Any] = APPROVAL) -> Situation:
    return Situation(catalog=runtime.catalog, now=NOW, policies=(POLICY,),
                     approvals=(CostApproval.model_validate(approval),),
                     spend=runtime.ledger.spend())  # fmt: skip


def _admit(runtime: Runtime, name: str, approval: dict[str, Any] = APPROVAL,
           uid: str | None = None) -> Any:  # fmt: skip
    request = Request("Job", "CREATE", _job(name, uid), None, "bob", ("devs",), False)
    gate = Gate(_situation(runtime, approval))
    return asyncio.run(operating.admission(runtime, request, gate, "ml"))


def test_the_first_use_is_written_to_the_approval_before_it_is_admitted() -> None:
    api = Apiserver()
    runtime = _runtime(api)
    first = _admit(runtime, "sweep-a")
    assert first.allowed, first.message
    # one write, preconditioned on the version the cache read
    assert api.patches == [("capr-1", "7", {"boundTo": {"name": "sweep-a", "uid": "uid-sweep-a"}})]
    held = BoundWorkload(name="sweep-a", uid="uid-sweep-a")
    assert runtime.ledger.spend().bound == {"capr-1": held}
    second = _admit(runtime, "sweep-b")  # the cache has no status yet: the ledger knows
    assert not second.allowed
    assert "approval.required" in second.message and "$3,962.88" in second.message
    assert _admit(runtime, "sweep-a").allowed  # the bound Job itself again (its UPDATE)
    assert len(api.patches) == 1  # no write per request


def test_another_replica_bound_it_first_so_this_one_is_judged_again_and_denied() -> None:
    api = Apiserver()
    a, b = _runtime(api), _runtime(api)  # two replicas, one apiserver, caches equally stale
    assert _admit(a, "sweep-a").allowed
    denied = _admit(b, "sweep-b")  # its write conflicts (409), it reads boundTo: sweep-a
    assert not denied.allowed and "approval.required" in denied.message
    assert api.stored["status"]["boundTo"] == {"name": "sweep-a", "uid": "uid-sweep-a"}
    assert b.ledger.spend().bound == {}


def test_a_status_read_from_the_watch_binds_after_a_restart() -> None:
    recorded = {**APPROVAL, "status": {"boundTo": {"name": "sweep-a", "uid": "uid-sweep-a"}}}
    restarted = _runtime(Apiserver(recorded))
    assert not _admit(restarted, "sweep-b", recorded).allowed
    # the same name, another object (deleted and created again): a second run, refused
    reused = _admit(restarted, "sweep-a", recorded, uid="uid-sweep-a-again")
    assert not reused.allowed and "approval.required" in reused.message
    assert _admit(restarted, "sweep-a", recorded).allowed  # the bound object itself


def test_a_selector_approval_is_not_used_up_when_another_signature_covers_the_work() -> None:
    # found by review: the first grant that met the tier was taken, a selector approval
    # listed before a named one or a signed budget was bound needlessly
    named = {**copy.deepcopy(APPROVAL), "metadata": {"name": "named", "namespace": "ml",
             "uid": "capr-9", "resourceVersion": "3"}}  # fmt: skip
    named["spec"]["target"] = {"kind": "Job", "name": "sweep-a"}
    api = Apiserver()
    runtime = _runtime(api)
    approvals = (CostApproval.model_validate(APPROVAL), CostApproval.model_validate(named))
    situation = replace(_situation(runtime), approvals=approvals)
    request = Request("Job", "CREATE", _job("sweep-a"), None, "bob", ("devs",), False)
    assert asyncio.run(operating.admission(runtime, request, Gate(situation), "ml")).allowed
    assert api.patches == []  # the named approval carried it; the selector one is unused
    assert _admit(runtime, "sweep-b").allowed  # and still approves the run it was for


def test_a_recreated_approval_of_the_same_name_is_a_new_one() -> None:
    api = Apiserver()
    runtime = _runtime(api)
    assert _admit(runtime, "sweep-a").allowed  # binds capr-1
    again = {**APPROVAL, "metadata": {**APPROVAL["metadata"], "uid": "capr-2",
                                      "resourceVersion": "20"}}  # fmt: skip
    api.stored = copy.deepcopy(again)
    assert _admit(runtime, "sweep-b", again).allowed  # a new signature, a new run
    assert api.patches[-1] == (
        "capr-2",
        "20",
        {"boundTo": {"name": "sweep-b", "uid": "uid-sweep-b"}},
    )


def test_a_cache_older_than_the_approval_is_judged_on_the_approval_as_it_is() -> None:
    # the signature was removed a moment ago: the write conflicts, the read shows no
    # signature, and the Job is judged on that
    api = Apiserver({**APPROVAL, "metadata": {**APPROVAL["metadata"], "resourceVersion": "8"},
                     "spec": {**APPROVAL["spec"], "approval": None}})  # fmt: skip
    runtime = _runtime(api)
    decision = _admit(runtime, "sweep-a")
    assert not decision.allowed and "approval.required" in decision.message
    # changed but still unbound and signed: written again at the version read
    api.stored = {
        **copy.deepcopy(APPROVAL),
        "metadata": {**APPROVAL["metadata"], "resourceVersion": "9"},
    }
    assert _admit(runtime, "sweep-a").allowed
    assert [p[1] for p in api.patches] == ["7", "7", "9"]


def test_no_write_no_admission() -> None:
    api = Apiserver(down=True)
    api.reads_down = True
    runtime = _runtime(api)
    refused = _admit(runtime, "sweep-a")
    assert not refused.allowed and refused.code == 409
    assert "could not record that a CostApproval with a selector" in refused.message
    assert "try again" in refused.message
    assert runtime.ledger.spend().bound == {}  # nothing held: the next try may bind it


def test_a_write_that_landed_with_its_answer_lost_is_ours() -> None:
    # found by review: refused with "try again", the retry (a new uid) then found the
    # approval used up by the first, refused attempt
    api = Apiserver()
    api.lose_answer = True
    runtime = _runtime(api)
    decision = _admit(runtime, "sweep-a")
    assert decision.allowed, decision.message  # read back: boundTo names this workload
    assert api.stored["status"]["boundTo"]["uid"] == "uid-sweep-a"


def test_a_write_that_failed_and_did_not_land_refuses_for_now() -> None:
    api = Apiserver(down=True)  # the write fails, the read shows it unbound
    runtime = _runtime(api)
    refused = _admit(runtime, "sweep-a")
    assert not refused.allowed and "the apiserver did not answer" in refused.message
    assert "try again" in refused.message and len(api.patches) == 1
    api.down = False
    assert _admit(runtime, "sweep-a").allowed  # the retry binds it


def test_conflicts_before_the_write_lands_do_not_refuse_it() -> None:
    # found by review: each success used up an attempt, and two conflicts then a success
    # answered "refused" with the approval bound
    api = Apiserver()
    api.conflicts = 2
    runtime = _runtime(api)
    decision = _admit(runtime, "sweep-a")
    assert decision.allowed, decision.message
    assert [p[1] for p in api.patches] == ["7", "8", "9"]


def test_concurrent_admissions_on_one_replica_bind_one_workload() -> None:
    api = Apiserver()
    runtime = _runtime(api)

    async def both() -> list[bool]:
        found = await asyncio.gather(*(
            operating.admission(runtime, Request("Job", "CREATE", _job(n), None, "bob",
                                                 ("devs",), False),
                                Gate(_situation(runtime)), "ml")
            for n in ("sweep-a", "sweep-b")))  # fmt: skip
        return [d.allowed for d in found]

    assert sorted(asyncio.run(both())) == [False, True]


def test_a_dry_run_or_a_denial_binds_nothing() -> None:
    api = Apiserver()
    runtime = _runtime(api)
    request = Request("Job", "CREATE", _job("sweep-a"), None, "bob", ("devs",), True)
    decision = asyncio.run(operating.admission(runtime, request, Gate(_situation(runtime)), "ml"))
    assert decision.allowed and runtime.ledger.spend().bound == {} and api.patches == []
    unsigned = {**APPROVAL, "spec": {**APPROVAL["spec"], "approval": None}}
    assert not _admit(runtime, "sweep-a", unsigned).allowed
    assert api.patches == []


def test_an_audit_policy_uses_no_signature_up() -> None:
    audit = POLICY.model_copy(update={"spec": POLICY.spec.model_copy(update={"mode": "audit"})})
    api = Apiserver()
    runtime = _runtime(api)
    request = Request("Job", "CREATE", _job("sweep-a"), None, "bob", ("devs",), False)
    situation = replace(_situation(runtime), policies=(audit,))
    assert asyncio.run(operating.admission(runtime, request, Gate(situation), "ml")).allowed
    assert api.patches == []


def _records(*names: str) -> tuple[JobRecord, ...]:
    return tuple(JobRecord(workload_from_object(_job(n)), active=1, finished=False,
                           started=None, suspended_by=None) for n in names)  # fmt: skip


def test_the_reconcile_shows_the_bound_workload_and_never_overwrites_the_binding() -> None:
    runtime = _runtime()
    recorded = {**APPROVAL, "status": {"boundTo": {"name": "sweep-b", "uid": "uid-sweep-b"}}}
    approval = CostApproval.model_validate(recorded)
    old = CostApprovalStatus.model_validate(recorded["status"])
    status = reconcile_approval(approval, Inventory(jobs=_records("sweep-a", "sweep-b")),
                                situation=_situation(runtime, recorded), old=old).status  # fmt: skip
    assert status.phase == "Approved"
    assert "boundTo" not in render_status(status)  # the webhook's field: never patched here
    gone = reconcile_approval(approval, Inventory(jobs=_records("sweep-a")),
                              situation=_situation(runtime, recorded), old=old).status  # fmt: skip
    assert gone.phase == "Used" and "Job sweep-b, which is not running" in (
        gone.conditions[0].message or ""
    )
    assert "boundTo" not in render_status(gone)


def test_the_watch_keeps_an_approvals_binding_and_nothing_else_of_its_status() -> None:
    body = {**APPROVAL, "status": {"phase": "Approved",
                                   "boundTo": {"name": "sweep-a", "uid": "uid-sweep-a"}}}  # fmt: skip
    parsed = parse_resource(CostApproval, body)
    assert parsed.status.bound_to == BoundWorkload(name="sweep-a", uid="uid-sweep-a")
    assert parsed.status.phase is None


def test_a_workload_without_a_usable_name_binds_nothing() -> None:
    # hostile input (the apiserver always sends both): refused, never a crash (500)
    api = Apiserver()
    runtime = _runtime(api)
    job = _job("sweep-a")
    job["metadata"]["uid"] = "u" * 129
    request = Request("Job", "CREATE", job, None, "bob", ("devs",), False)
    refused = asyncio.run(operating.admission(runtime, request, Gate(_situation(runtime)), "ml"))
    assert not refused.allowed and refused.code == 400 and "metadata.uid" in refused.message
    assert api.patches == []


class Several:
    """Several CostApprovals as kube-apiserver keeps them (a merge patch's null removes)."""

    def __init__(self, *objs: dict[str, Any]) -> None:
        self.stored = {o["metadata"]["name"]: copy.deepcopy(o) for o in objs}

    async def patch_status_if(self, plural: str, meta: Any, status: Any, timeout: float) -> Any:
        held = self.stored[meta["name"]]
        if meta.get("resourceVersion") != held["metadata"]["resourceVersion"]:
            raise ConflictError("409")
        held["metadata"]["resourceVersion"] = str(int(held["metadata"]["resourceVersion"]) + 1)
        now = held.setdefault("status", {})
        for key, value in status.items():
            now.pop(key, None) if value is None else now.update({key: value})
        return copy.deepcopy(held)

    async def read_costgov(self, plural: str, ns: str, name: str, timeout: float) -> Any:
        return copy.deepcopy(self.stored.get(name))


def _signed_by(name: str, uid: str, signer: str) -> dict[str, Any]:
    found = copy.deepcopy(APPROVAL)
    found["metadata"].update(name=name, uid=uid, resourceVersion="7")
    found["spec"]["approval"]["approvedBy"] = signer
    return found


def _policy(name: str, approver: str) -> CostPolicy:
    body = POLICY.model_dump(by_alias=True, mode="json", exclude_none=True)
    body["metadata"]["name"] = name
    body["spec"]["approvals"] = [{"above": 1000, "approvers": {"users": [approver]}}]
    return CostPolicy.model_validate(body)


def test_a_request_that_ends_refused_takes_its_bindings_back() -> None:
    # found by review: two enforcing policies, each met by its own selector approval; s2
    # was bound to another Job a moment ago. s1's write landed, s2's conflicted, the Job
    # was refused, and s1 stayed used up by a Job that never existed.
    s1, s2 = _signed_by("s1", "capr-s1", "alice"), _signed_by("s2", "capr-s2", "carol")
    api = Several(s1, s2)
    api.stored["s2"]["metadata"]["resourceVersion"] = "8"
    api.stored["s2"]["status"] = {"boundTo": {"name": "other", "uid": "uid-other"}}
    runtime = _runtime(api)
    situation = replace(
        _situation(runtime),
        policies=(_policy("p1", "alice"), _policy("p2", "carol")),
        approvals=(CostApproval.model_validate(s1), CostApproval.model_validate(s2)),
    )
    request = Request("Job", "CREATE", _job("sweep-a"), None, "bob", ("devs",), False)
    decision = asyncio.run(operating.admission(runtime, request, Gate(situation), "ml"))
    assert not decision.allowed and "approval.required" in decision.message
    assert api.stored["s1"]["status"] == {}  # taken back
    assert runtime.ledger.spend().bound == {}


def test_the_last_judgement_stands_after_the_last_conflict() -> None:
    # found by review: two conflicts, then another replica bound it; the third judgement
    # (approval.required) was answered "it kept changing ... try again"
    api = Apiserver()
    api.conflicts = 2
    wrapped = api.patch_status_if
    calls = [0]

    async def patch(plural: str, meta: Any, status: Any, timeout: float) -> Any:
        calls[0] += 1
        if calls[0] == 3:  # another replica wins meanwhile
            api.stored["metadata"]["resourceVersion"] = "20"
            api.stored["status"] = {"boundTo": {"name": "other", "uid": "uid-other"}}
        return await wrapped(plural, meta, status, timeout)

    api.patch_status_if = patch  # type: ignore[method-assign]
    runtime = _runtime(api)
    decision = _admit(runtime, "sweep-a")
    assert not decision.allowed and "approval.required" in decision.message


def _pod(name: str, owner: dict[str, Any] | None) -> dict[str, Any]:
    """A pod as kube-apiserver returns it: 8 GPUs on a p5.48xlarge, 72 h deadline."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "ml", "uid": f"uid-{name}",
                     "labels": {"run": "sweep"}, "creationTimestamp": "2026-12-01T11:00:00Z",
                     "ownerReferences": [owner] if owner else []},
        "spec": {"nodeName": "p5-1", "activeDeadlineSeconds": 259200,
                 "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
                 "containers": [{"name": "t", "resources": {"limits": {"nvidia.com/gpu": "8"}}}]},
        "status": {"phase": "Running"},
    }  # fmt: skip


def test_a_pod_approval_shows_a_pod_judged_by_itself_and_says_when_its_owner_is_judged() -> None:
    from costgov.services.inventory import pod_record

    runtime = _runtime()
    job = {"apiVersion": "batch/v1", "kind": "Job", "name": "sweep", "uid": "j", "controller": True}
    named = {"kind": "Pod", "name": "p"}
    selected = {"kind": "Pod", "selector": {"matchLabels": {"run": "sweep"}}}
    for target, pod, owner, phase, says in (
        (named, "p", None, "Approved", "every required sign-off"),  # $3,962.88 under $5,000
        (named, "p", job, "Pending", "runs under a controller whose pods costgov judges through"),
        (selected, "q", job, "Pending", "pod q runs under a controller"),
    ):
        approval = {**APPROVAL, "spec": {**APPROVAL["spec"], "target": target}}
        record = pod_record(_pod(pod, owner))
        assert record is not None
        status = reconcile_approval(
            CostApproval.model_validate(approval), Inventory(pods=(record,)),
            situation=_situation(runtime, approval), old=CostApprovalStatus(),
        ).status  # fmt: skip
        assert status.phase == phase and says in (status.conditions[0].message or "")
