"""The operator on a real kube-apiserver, as the Helm chart installs it.

- The chart is rendered with helm; its ServiceAccount, ClusterRole and ClusterRoleBinding are
  applied, and `costgov run` runs as a subprocess with that ServiceAccount's token: the
  chart's RBAC is enough (status, events, Job patches) and bounded (`auth can-i`).
- The chart's ValidatingWebhookConfiguration is applied as rendered (rules, scope,
  matchConditions, timeout, failurePolicy), except `clientConfig`: there is no Service
  network here, so it points at the operator's loopback address with a test certificate.
  The apiserver then calls the webhook over TLS and relays answers to kubectl.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from .controlplane import ControlPlane
from .operating import NS, SA, Operator, running_operator


@pytest.fixture(scope="module")
def operator(cp: ControlPlane) -> Iterator[Operator]:
    # People: bob asks, alice approves (a named approver), eve is a developer.
    for name, labels in (
        ("ml-research", {"costgov.io/governed": "true"}),
        ("sandbox", {"team": "sandbox"}),
    ):
        cp.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
        )
    cp.apply(
        {
            "apiVersion": "costgov.io/v1alpha1",
            "kind": "CostPolicy",
            "metadata": {"name": "ml-platform"},
            "spec": {
                "mode": "enforce",
                "scope": {"namespaceSelector": {"matchLabels": {"costgov.io/governed": "true"}}},
                "budget": {"amount": 50000},
                "approvals": [{"above": 1000, "approvers": {"users": ["alice"]}}],
                "limits": {"maxGPUsPerWorkload": 8, "requireMaxRuntime": True},
            },
        }
    )
    cp.apply(
        {
            "apiVersion": "costgov.io/v1alpha1",
            "kind": "CostPolicy",
            "metadata": {"name": "sandbox-warn"},
            "spec": {
                "mode": "warn",
                "scope": {"namespaceSelector": {"matchLabels": {"team": "sandbox"}}},
                "limits": {"maxGPUsPerWorkload": 4},
            },
        }
    )
    with running_operator(cp, **{"webhook.failurePolicy": "Fail"}) as op:
        yield op


def _job(
    name: str,
    gpus: int,
    ns: str = "ml-research",
    deadline: int | None = 3600,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
                "containers": [
                    {
                        "name": "c",
                        "image": "trainer",
                        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                    }
                ],
            }
        }
    }
    if deadline:
        spec["activeDeadlineSeconds"] = deadline
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": spec,
    }


def _wait(check: Any, timeout: float = 40, operator: Operator | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    log = operator.log()[-4000:] if operator is not None else ""
    raise AssertionError(f"condition not met; the operator's log ends:\n{log}")


def test_rbac_is_enough_status_is_written_under_the_service_account(
    cp: ControlPlane, operator: Operator
) -> None:
    def conditions() -> dict[str, str]:
        got = json.loads(cp.kubectl("get", "cpol", "ml-platform", "-o", "json").stdout)
        return {c["type"]: c["status"] for c in got.get("status", {}).get("conditions", [])}

    _wait(lambda: conditions().get("Ready") == "True", operator=operator)
    # No Prometheus in this world: MetricsAvailable says so, nothing is priced at $0.
    assert conditions()["MetricsAvailable"] == "False"
    log = operator.log()
    # a 403 status, not the milliseconds of a log line's time stamp ("21:56:26,403")
    assert "Forbidden" not in log and not re.search(r"(?<![\d,.:])403(?!\d)", log)


def test_rbac_is_bounded(cp: ControlPlane, operator: Operator) -> None:
    who = f"--as=system:serviceaccount:{NS}:{SA}"
    assert cp.kubectl("auth", "can-i", "patch", "jobs", who, check=False).stdout.strip() == "yes"
    for verb, resource in (
        ("delete", "jobs"),
        ("get", "secrets"),
        ("create", "pods"),
        ("delete", "costpolicies.costgov.io"),
        ("update", "nodes"),
    ):
        done = cp.kubectl("auth", "can-i", verb, resource, who, check=False)
        assert done.stdout.strip() == "no", (verb, resource)


def test_enforce_denial_reaches_kubectl(cp: ControlPlane, operator: Operator) -> None:
    done = cp.kubectl("apply", "-f", "-", stdin=json.dumps(_job("too-big", 16)), check=False)
    assert done.returncode != 0
    assert 'admission webhook "jobs.costgov.io" denied the request' in done.stderr
    assert "limits.maxGPUsPerWorkload" in done.stderr and "holds 16 GPUs" in done.stderr
    no_deadline = _job("unbounded", 1, deadline=None)
    done = cp.kubectl("apply", "-f", "-", stdin=json.dumps(no_deadline), check=False)
    assert done.returncode != 0 and "limits.requireMaxRuntime" in done.stderr


def test_warn_mode_prints_kubectl_warnings(cp: ControlPlane, operator: Operator) -> None:
    done = cp.kubectl("apply", "-f", "-", stdin=json.dumps(_job("big-sandbox", 8, "sandbox")))
    assert "Warning: costgov" in done.stderr and "limits.maxGPUsPerWorkload" in done.stderr
    assert "job.batch/big-sandbox created" in done.stdout


def test_cpu_only_jobs_never_reach_the_webhook(cp: ControlPlane, operator: Operator) -> None:
    job = _job("cpu-only", 0)
    del job["spec"]["template"]["spec"]["containers"][0]["resources"]
    cp.kubectl("apply", "-f", "-", stdin=json.dumps(job))


def _budget(approval: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "amount": 10000,
        "requestedBy": "bob",
        "selector": {"matchLabels": {"costgov.io/budget": "run-a"}},
    }
    if approval:
        spec["approval"] = approval
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "TrainingJobBudget",
        "metadata": {"name": "run-a", "namespace": "ml-research"},
        "spec": spec,
    }


def test_approvals_through_kubectl(cp: ControlPlane, operator: Operator) -> None:
    cp.kubectl("apply", "-f", "-", "--as=bob", stdin=json.dumps(_budget()))
    patch = json.dumps(
        {
            "spec": {
                "approval": {"approvedBy": "eve", "amount": 5000, "expires": "2099-01-01T00:00:00Z"}
            }
        }
    )
    done = cp.kubectl(
        "patch",
        "tjb",
        "run-a",
        "-n",
        "ml-research",
        "--type=merge",
        "-p",
        patch,
        "--as=eve",
        "--as-group=devs",
        check=False,
    )
    assert done.returncode != 0
    assert "eve may not approve $5,000.00" in done.stderr
    patch = json.dumps(
        {
            "spec": {
                "approval": {
                    "approvedBy": "alice",
                    "amount": 5000,
                    "expires": "2099-01-01T00:00:00Z",
                }
            }
        }
    )
    done = cp.kubectl(
        "patch", "tjb", "run-a", "-n", "ml-research", "--type=merge", "-p", patch, "--as=alice"
    )
    assert "Warning: costgov: alice approved $5,000.00" in done.stderr
    # 1 h x 55.04 x 8/8 = 55.04: under the $1,000 tier anyway; a 72 h run (3,962.88) needs
    # the approval, which now covers it.
    job = _job("run-a-1", 8, deadline=259200, labels={"costgov.io/budget": "run-a"})
    cp.kubectl("apply", "-f", "-", stdin=json.dumps(job))
    # That admission rests on alice's signature, so it was checked against a fresh LIST of
    # policies, budgets and approvals (the chart's ClusterRole allows it): the watch cache
    # may not have had the signature yet (CI once saw this very apply denied for want of
    # it), and must not make a revoked one count.
    reads = _rereads(operator)
    assert reads["failed"] == 0 and reads["unchanged"] + reads["changed"] >= 1, reads
    # bob removes the signature (that needs nobody) and at once asks for a second 72 h run:
    # denied, however far behind the cache is
    patch = json.dumps({"spec": {"approval": None}})
    cp.kubectl(
        "patch", "tjb", "run-a", "-n", "ml-research", "--type=merge", "-p", patch, "--as=bob"
    )
    job = _job("run-a-2", 8, deadline=259200, labels={"costgov.io/budget": "run-a"})
    done = cp.kubectl("apply", "-f", "-", stdin=json.dumps(job), check=False)
    assert done.returncode != 0 and "approval.required" in done.stderr, done.stderr
    assert "$3,962.88" in done.stderr  # 72 h x 55.04
    # and put back, it counts again at once
    patch = json.dumps({"spec": {"approval": SIGNED}})
    cp.kubectl(
        "patch", "tjb", "run-a", "-n", "ml-research", "--type=merge", "-p", patch, "--as=alice"
    )
    cp.kubectl("apply", "-f", "-", stdin=json.dumps(job))


SIGNED = {"approvedBy": "alice", "amount": 5000, "expires": "2099-01-01T00:00:00Z"}


def _rereads(operator: Operator) -> dict[str, float]:
    url = f"http://127.0.0.1:{operator.env['COSTGOV_METRICS_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    found = re.findall(r'^costgov_admission_rereads_total\{outcome="(\w+)"\} (\S+)$', text, re.M)
    return {outcome: float(value) for outcome, value in found}


def test_webhook_down_follows_failure_policy_and_audit_catches_up(
    cp: ControlPlane, operator: Operator
) -> None:
    operator.stop()
    # failurePolicy Fail: the apiserver refuses GPU work it cannot have judged
    done = cp.kubectl("apply", "-f", "-", stdin=json.dumps(_job("while-down", 16)), check=False)
    assert done.returncode != 0 and "failed calling webhook" in done.stderr
    # failurePolicy Ignore: admitted; the operator's periodic audit records it on return
    webhook = operator.webhook
    for hook in webhook["webhooks"]:
        hook["failurePolicy"] = "Ignore"
    cp.apply(webhook)
    cp.kubectl("apply", "-f", "-", stdin=json.dumps(_job("slipped", 16)))
    operator.start()

    def recorded() -> bool:
        got = json.loads(cp.kubectl("get", "cpol", "ml-platform", "-o", "json").stdout)
        return any(
            v["object"]["name"] == "slipped" and v["rule"] == "limits.maxGPUsPerWorkload"
            for v in got.get("status", {}).get("violations", [])
        )

    _wait(recorded, operator=operator)
    events = cp.kubectl("get", "events", "-n", "ml-research", "-o", "json").stdout
    assert "CostPolicyViolation" in events and "slipped" in events
