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
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .controlplane import ROOT, ControlPlane, _free_port, _run

NS = "costgov-system"
SA = "costgov-costgov"


def _tools() -> Path:
    out = _run("bash", str(ROOT / "hack" / "build-tools.sh"))
    return Path(out.strip().splitlines()[-1])


def _render(**values: str) -> list[dict[str, Any]]:
    sets = [arg for k, v in values.items() for arg in ("--set", f"{k}={v}")]
    text = _run(
        str(_tools() / "helm"),
        "template",
        "costgov",
        str(ROOT / "charts" / "costgov"),
        "-n",
        NS,
        *sets,
    )
    return [d for d in yaml.safe_load_all(text) if d]


def _webhook_cert(cp: ControlPlane) -> tuple[Path, Path]:
    d = cp.root
    (d / "webhook.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "webhook.key",
        "-out",
        "webhook.csr",
        "-subj",
        "/CN=costgov-webhook",
        cwd=d,
    )
    _run(
        "openssl",
        "x509",
        "-req",
        "-in",
        "webhook.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "webhook.crt",
        "-days",
        "2",
        "-extfile",
        "webhook.ext",
        cwd=d,
    )
    return d / "webhook.crt", d / "webhook.key"


class Operator:
    def __init__(self, cp: ControlPlane, port: int, cert: Path, key: Path) -> None:
        self.cp, self.port, self.cert, self.key = cp, port, cert, key
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        token = self.cp.kubectl("create", "token", SA, "-n", NS, "--duration=2h").stdout.strip()
        kubeconfig = self.cp.root / "operator.kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "op",
                    "clusters": [
                        {
                            "name": "e2e",
                            "cluster": {
                                "server": self.cp.url,
                                "certificate-authority": str(self.cp.root / "ca.crt"),
                            },
                        }
                    ],
                    "users": [{"name": "sa", "user": {"token": token}}],
                    "contexts": [{"name": "op", "context": {"cluster": "e2e", "user": "sa"}}],
                }
            )
        )
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "COSTGOV_PROMETHEUS_URL": f"http://127.0.0.1:{_free_port()}",
            "COSTGOV_QUERY_RETRIES": "0",
            "COSTGOV_QUERY_TIMEOUT_SECONDS": "1",
            "COSTGOV_RECONCILE_INTERVAL_SECONDS": "2",
            "COSTGOV_WEBHOOK_HOST": "127.0.0.1",
            "COSTGOV_WEBHOOK_PORT": str(self.port),
            "COSTGOV_WEBHOOK_CERT_FILE": str(self.cert),
            "COSTGOV_WEBHOOK_KEY_FILE": str(self.key),
            "COSTGOV_METRICS_PORT": str(_free_port()),
            "COSTGOV_LIVENESS_PORT": str(_free_port()),
        }
        log = (self.cp.root / "operator.log").open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "costgov", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        import socket

        for _ in range(150):
            if self.proc.poll() is not None:
                raise RuntimeError((self.cp.root / "operator.log").read_text()[-3000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the operator's webhook never listened")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def log(self) -> str:
        return (self.cp.root / "operator.log").read_text()


@pytest.fixture(scope="module")
def operator(cp: ControlPlane) -> Iterator[Operator]:
    docs = _render(**{"webhook.failurePolicy": "Fail"})
    kinds = {d["kind"]: d for d in docs}
    cp.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
        cp.apply(kinds[kind])
    # People: bob asks, alice approves (a named approver), eve is a developer.
    cp.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "costgov-users"},
            "rules": [
                {
                    "apiGroups": ["costgov.io"],
                    "resources": ["*"],
                    "verbs": ["get", "list", "create", "patch", "update"],
                },
                {
                    "apiGroups": ["batch"],
                    "resources": ["jobs"],
                    "verbs": ["get", "list", "create", "patch"],
                },
            ],
        }
    )
    cp.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "costgov-users"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "costgov-users",
            },
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Group",
                    "name": "system:authenticated",
                }
            ],
        }
    )
    port = _free_port()
    cert, key = _webhook_cert(cp)
    webhook = kinds["ValidatingWebhookConfiguration"]
    ca = (cp.root / "ca.crt").read_bytes()
    import base64

    for hook in webhook["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {
            "url": f"https://127.0.0.1:{port}{path}",
            "caBundle": base64.b64encode(ca).decode(),
        }
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
    op = Operator(cp, port, cert, key)
    op.start()
    cp.apply(webhook)
    op.webhook = webhook  # type: ignore[attr-defined]
    yield op
    op.stop()


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
    assert "Forbidden" not in operator.log() and "403" not in operator.log()


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


def test_webhook_down_follows_failure_policy_and_audit_catches_up(
    cp: ControlPlane, operator: Operator
) -> None:
    operator.stop()
    # failurePolicy Fail: the apiserver refuses GPU work it cannot have judged
    done = cp.kubectl("apply", "-f", "-", stdin=json.dumps(_job("while-down", 16)), check=False)
    assert done.returncode != 0 and "failed calling webhook" in done.stderr
    # failurePolicy Ignore: admitted; the operator's periodic audit records it on return
    webhook = operator.webhook  # type: ignore[attr-defined]
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
