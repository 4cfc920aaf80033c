"""Review (attack) findings: budgets judged on the wrong figure, approvals that crash or
stretch further than what was signed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from costgov.api.costapproval import BoundWorkload
from costgov.domain.judging import Spend

from . import kit


def _cronjob(schedule: str, deadline: int, policy: str = "Allow") -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "cron", "namespace": "ml"},
        "spec": {"schedule": schedule, "concurrencyPolicy": policy,
                 "jobTemplate": {"spec": {
                     "activeDeadlineSeconds": deadline,
                     "template": {"spec": kit.pod_spec(
                         nodeSelector={"node.kubernetes.io/instance-type": "g6.xlarge"},
                         containers=[kit.container(1)])}}}},
    }  # fmt: skip


def test_overlapping_cronjob_is_judged_against_a_monthly_budget_at_what_it_costs_a_month() -> None:
    """Crafted: a CronJob every 10 minutes (4,380 runs a month), each run up to 2 h on a
    g6.xlarge ($0.8048/h), concurrencyPolicy Allow: 12 runs overlap at any time.
    Its own estimate says so: 4,380 x 2 h = 8,760 run-hours x $0.8048 = $7,050.05 a month.
    Policy: monthly budget $1,000, onExceeded block-new.

    What happens: the budget rule caps the hours at one period, 730 h x $0.8048 = $587.50
    ("costs $587.50 per month"): admitted; the policy summary shows $587.50/monthly.
    Should: $7,050.05 a month > $1,000: budget.exceeded, denied.
    At fault: domain/budgets.py `cost_in_period` (min(hours, period) treats a CronJob's
    summed run-hours as wall-clock hours), called from domain/policies.py `_policy_budget`."""
    pol = kit.policy(budget={"amount": 1000, "period": "monthly", "onExceeded": "block-new"})
    decision = kit.decide(
        kit.review_of("CronJob", _cronjob("*/10 * * * *", 7200)), kit.situation(pol)
    )
    assert not decision.allowed, "a $7,050/month CronJob fit a $1,000 monthly budget"


def test_nightly_cronjob_is_judged_against_a_daily_budget_at_a_day_of_runs() -> None:
    """Crafted: a CronJob at 02:00 every day, each run up to 4 h on a g6.xlarge ($0.8048/h):
    a day costs 4 h x $0.8048 = $3.22. Policy: daily budget $10, block-new.

    What happens: judged as 24 h a day (min(121.7 run-hours a month, 24 h) x $0.8048 =
    $19.32 per day): denied.  Should: $3.22 per day fits $10: allowed (a daily budget
    against what the workload costs in a day)."""
    pol = kit.policy(budget={"amount": 10, "period": "daily", "onExceeded": "block-new"})
    decision = kit.decide(
        kit.review_of("CronJob", _cronjob("0 2 * * *", 14400)), kit.situation(pol)
    )
    assert decision.allowed, decision.message


def _approval(expires: str, target: dict[str, Any], name: str = "ok") -> dict[str, Any]:
    return {
        "apiVersion": "costgov.io/v1alpha1", "kind": "CostApproval",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"requestedBy": "bob", "target": target,
                 "approval": {"approvedBy": "alice", "amount": 5000, "expires": expires}},
    }  # fmt: skip


TIER = [{"above": 1000, "approvers": {"users": ["alice"]}}]


def test_an_expiry_without_a_timezone_is_refused_or_read_not_a_crash(
    tmp_path: Path, capsys: Any
) -> None:
    """Crafted: an approver signs with `expires: "2030-01-01T00:00:00"` (no offset; the
    CRD's `format: date-time` lets the apiserver store it, and pydantic accepts it).

    What happens: admitted when written; every later judgement of a workload it targets
    compares a naive with an aware datetime: `costgov estimate` dies with a TypeError
    traceback (exit 1, read by CI as "denied"); the webhook answers "costgov cannot judge
    this request"; the reconcile loop's judgement raises the same.
    Should: refused when written (422, naming spec.approval.expires) or read as UTC.
    At fault: api/approvals.py `Approval.expires` (naive datetimes accepted),
    domain/approvals.py `_problem`."""
    approval = _approval("2030-01-01T00:00:00", {"kind": "Job", "name": "train"})
    written = kit.decide(kit.review_of("CostApproval", approval, user="alice"),
                         kit.situation(kit.policy(approvals=TIER)))  # fmt: skip
    path = kit.write(tmp_path, "w.yaml", kit.NAMESPACE, kit.policy(approvals=TIER),
                     kit.job(deadline=259200), approval)  # fmt: skip
    try:
        code, out, err = kit.estimate(capsys, "-f", str(path))
    except TypeError as exc:  # what happens now
        raise AssertionError(f"costgov estimate crashed: {exc}") from exc
    assert not written.allowed or code == 0, (written, out, err)


def test_one_signature_for_one_workload_does_not_approve_any_number_of_them() -> None:
    """Crafted: bob asks for a CostApproval with a selector target (`team: nlp`); alice signs
    $5,000. Bob then submits two Jobs with that label, each 72 h on one p5.48xlarge
    ($3,962.88): $7,925.76 in all under one $5,000 signature (and any further Job labelled
    so, by anyone but alice and bob, until the signature expires).

    What happens: both admitted.  Should: a signature for "one workload" (README,
    api/costapproval.py) approves one workload at a time, or the sum of what it approves
    is bounded by its amount.
    At fault: domain/scoping.py `_targets` / `grants_for` (a grant is never consumed)."""
    target = {"kind": "Job", "selector": {"matchLabels": {"team": "nlp"}}}
    approval = _approval("2030-01-01T00:00:00Z", target)
    sit = kit.situation(kit.policy(approvals=TIER), approval)
    first = kit.decide(
        kit.review_of("Job", kit.job("a", deadline=259200, labels={"team": "nlp"})), sit
    )
    assert first.allowed, first.message
    # What the operator holds once Job a was admitted on the signature: the webhook's record
    # (Spend.bound), then the approval's status.boundTo written by its reconcile.
    held = replace(sit, spend=Spend(bound={"ml/ok": BoundWorkload(name="a")}))
    recorded = {**approval, "status": {"boundTo": {"name": "a"}}}
    written = kit.situation(kit.policy(approvals=TIER), recorded)
    for state in (held, written):
        second = kit.decide(
            kit.review_of("Job", kit.job("b", deadline=259200, labels={"team": "nlp"})), state
        )
        assert not second.allowed, "one $5,000 signature approved $7,925.76 of Jobs"
        assert "approval.required" in second.message
        again = kit.decide(  # Job a itself (an UPDATE, a re-apply) is still approved
            kit.review_of("Job", kit.job("a", deadline=259200, labels={"team": "nlp"})), state
        )
        assert again.allowed, again.message
