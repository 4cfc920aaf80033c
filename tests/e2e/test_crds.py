"""The CRDs against a real kube-apiserver: structural schemas and CEL rules accepted, the
examples admitted, invalid objects rejected with readable messages, printer columns with
dollars in `kubectl get`."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from .controlplane import ROOT, ControlPlane

EXAMPLES = [
    "namespaces.yaml",
    "costpolicy-ml-platform.yaml",
    "training-llama-finetune.yaml",
    "inference-llama-l4.yaml",
]


def test_crds_are_accepted_and_served(cp: ControlPlane) -> None:
    resources = cp.kubectl("api-resources", "--api-group=costgov.io", "-o", "name").stdout
    assert set(resources.split()) == {
        "costpolicies.costgov.io",
        "trainingjobbudgets.costgov.io",
        "inferencedeployments.costgov.io",
        "costapprovals.costgov.io",
    }
    short = cp.kubectl("api-resources", "--api-group=costgov.io").stdout
    assert "cpol" in short and "tjb" in short and "idep" in short and "capr" in short


def test_examples_apply(cp: ControlPlane) -> None:
    for name in EXAMPLES:
        cp.kubectl("apply", "-f", str(ROOT / "examples" / name))
    got = json.loads(cp.kubectl("get", "tjb", "-n", "ml-research", "-o", "json").stdout)
    assert "llama-finetune" in [i["metadata"]["name"] for i in got["items"]]


def _policy(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "CostPolicy",
        "metadata": {"name": "bad"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            _policy({"budget": {"amount": 100, "alertThresholds": [80, 50]}}),
            "alertThresholds must be strictly ascending",
        ),
        (
            _policy({"budget": {"amount": 100, "alertThresholds": [50, 50]}}),
            "alertThresholds must be strictly ascending",
        ),
        (_policy({"budget": {"amount": "12.345"}}), "spec.budget.amount"),
        (_policy({"budget": {"amount": -5}}), "spec.budget.amount"),
        (_policy({"mode": "block"}), 'supported values: "enforce", "warn", "audit"'),
        (
            _policy({"approvals": [{"above": 100}]}),
            "a tier either denies, or names approvers or signoffs",
        ),
        (
            _policy({"approvals": [{"above": 100, "deny": True, "approvers": {"users": ["a"]}}]}),
            "a tier either denies, or names approvers or signoffs",
        ),
        (
            _policy(
                {
                    "approvals": [
                        {
                            "above": 100,
                            "approvers": {"users": ["a"]},
                            "signoffs": [{"name": "vp", "users": ["v"]}],
                        }
                    ]
                }
            ),
            "use approvers (one sign-off) or signoffs (several), not both",
        ),
        (
            _policy({"approvals": [{"above": 100, "signoffs": [{"name": "Manager!"}]}]}),
            "spec.approvals[0].signoffs[0].name",
        ),
        (
            {
                "apiVersion": "costgov.io/v1alpha1",
                "kind": "CostApproval",
                "metadata": {"name": "bad", "namespace": "default"},
                "spec": {
                    "requestedBy": "bob",
                    "target": {"kind": "Deployment", "name": "x", "selector": {}},
                },
            },
            "target names the workload by name or by selector, not both",
        ),
        (
            {
                "apiVersion": "costgov.io/v1alpha1",
                "kind": "CostApproval",
                "metadata": {"name": "bad", "namespace": "default"},
                "spec": {"requestedBy": "bob", "target": {"kind": "ConfigMap", "name": "x"}},
            },
            "spec.target.kind",
        ),
        (
            _policy(
                {
                    "scope": {
                        "namespaceSelector": {
                            "matchExpressions": [{"key": "team", "operator": "In"}]
                        }
                    }
                }
            ),
            "In and NotIn need values; Exists and DoesNotExist take none",
        ),
        (
            {
                "apiVersion": "costgov.io/v1alpha1",
                "kind": "InferenceDeployment",
                "metadata": {"name": "bad", "namespace": "default"},
                "spec": {"image": "vllm", "gpu": {"model": "L4"}, "replicas": {"min": 3, "max": 2}},
            },
            "replicas.min must not exceed max",
        ),
        (
            {
                "apiVersion": "costgov.io/v1alpha1",
                "kind": "TrainingJobBudget",
                "metadata": {"name": "bad", "namespace": "default"},
                "spec": {"amount": 100, "selector": {}, "maxDuration": "three days"},
            },
            "spec.maxDuration",
        ),
    ],
)
def test_invalid_objects_are_rejected_with_a_readable_message(
    cp: ControlPlane, obj: dict[str, Any], message: str
) -> None:
    done = cp.kubectl("apply", "-f", "-", stdin=json.dumps(obj), check=False)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def _patch_status(
    cp: ControlPlane, kind: str, name: str, status: dict[str, Any], namespace: str | None = None
) -> None:
    ns = ["-n", namespace] if namespace else []
    cp.kubectl(
        "patch",
        kind,
        name,
        *ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def _table(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_printer_columns_show_dollars(cp: ControlPlane) -> None:
    for name in EXAMPLES:
        cp.kubectl("apply", "-f", str(ROOT / "examples" / name))
    # The figures the operator writes (hand-checked in the integration tier); here they are
    # patched in so `kubectl get` can be read against a real apiserver.
    _patch_status(
        cp,
        "tjb",
        "llama-finetune",
        {"spent": "3962.88", "remaining": "4037.12", "phase": "Active"},
        "ml-research",
    )
    _patch_status(cp, "cpol", "ml-platform", {"spent": "5130.88", "forecast": "9120.00"})
    _patch_status(
        cp,
        "idep",
        "llama-8b-chat",
        {"replicas": 3, "hourlyCost": "1.20", "projectedMonthlyCost": "876.00"},
        "ml-serving",
    )
    tjb = _table(cp.kubectl("get", "tjb", "-n", "ml-research").stdout)
    assert tjb[0] == ["NAME", "BUDGET", "SPENT", "REMAINING", "PHASE", "AGE"]
    assert tjb[1][:5] == ["llama-finetune", "8000", "3962.88", "4037.12", "Active"]
    cpol = _table(cp.kubectl("get", "cpol").stdout)
    assert cpol[0] == ["NAME", "MODE", "PERIOD", "BUDGET", "SPENT", "FORECAST", "AGE"]
    assert cpol[1][:6] == ["ml-platform", "enforce", "monthly", "50000", "5130.88", "9120.00"]
    idep = _table(cp.kubectl("get", "idep", "-n", "ml-serving").stdout)
    assert idep[0] == ["NAME", "GPU", "REPLICAS", "$/HOUR", "$/MONTH", "BUDGET", "AGE"]
    assert idep[1][:6] == ["llama-8b-chat", "L4", "3", "1.20", "876.00", "1000"]


def test_status_violating_the_schema_is_refused(cp: ControlPlane) -> None:
    cp.kubectl("apply", "-f", str(ROOT / "examples" / "namespaces.yaml"))
    cp.kubectl("apply", "-f", str(ROOT / "examples" / "training-llama-finetune.yaml"))
    done = cp.kubectl(
        "patch",
        "tjb",
        "llama-finetune",
        "-n",
        "ml-research",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"spent": "lots"}}),
        check=False,
    )
    assert done.returncode != 0 and "status.spent" in done.stderr


def test_generated_crds_match_the_chart(cp: ControlPlane) -> None:
    for path in (ROOT / "crds").glob("*.yaml"):
        chart = ROOT / "charts" / "costgov" / "crds" / path.name
        assert yaml.safe_load(path.read_text()) == yaml.safe_load(chart.read_text())
