"""The API models: validation, every example, and the generated CRDs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from costgov.api import RESOURCES, CostPolicy, InferenceDeployment, TrainingJobBudget
from costgov.api.crdgen import crds
from costgov.api.errors import describe_validation_error
from costgov.catalog import load_pricing_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))
MODELS = {m.INFO.kind: m for m in RESOURCES}


def _policy(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "CostPolicy",
        "metadata": {"name": "p"},
        "spec": spec,
    }


def _problems(model: type[Any], body: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    return describe_validation_error(info.value)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_validates(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc is None:
            continue
        if doc.get("kind") == "PriceCatalog":
            assert load_pricing_file(path).version
        elif doc["apiVersion"].startswith("costgov.io/"):
            MODELS[doc["kind"]].model_validate(doc)


def test_examples_cover_all_three_resources() -> None:
    kinds = {d["kind"] for p in EXAMPLES for d in yaml.safe_load_all(p.read_text()) if d}
    assert {"CostPolicy", "TrainingJobBudget", "InferenceDeployment", "PriceCatalog"} <= kinds


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"budget": {"amount": -1}}, "spec.budget.amount: expected a non-negative dollar amount"),
        (
            {"budget": {"amount": 10, "alertThresholds": [80, 50]}},
            "spec.budget.alertThresholds: alertThresholds must be strictly ascending",
        ),
        (
            {"budget": {"amount": 10, "alertThresholds": [50, 120]}},
            "spec.budget.alertThresholds[1]: Input should be less than or equal to 100",
        ),
        ({"mode": "block"}, "spec.mode: Input should be 'enforce', 'warn' or 'audit'"),
        (
            {"approvals": [{"above": 100}]},
            "spec.approvals[0]: a tier either sets deny: true, or names approvers or signoffs",
        ),
        (
            {"approvals": [{"above": 500, "deny": True}, {"above": 100, "deny": True}]},
            "spec.approvals: approvals[].above must be strictly ascending",
        ),
        (
            {
                "scope": {
                    "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In"}]}
                }
            },
            "spec.scope.namespaceSelector.matchExpressions[0]: operator In needs at least one value",
        ),
        (
            {"scope": {"namespaceSelector": {"matchLabels": {"bad key!": "x"}}}},
            "is not a valid label key",
        ),
        ({"limits": {"maxGpus": 3}}, "spec.limits.maxGpus: unknown field"),
    ],
)
def test_costpolicy_validation_names_the_field(spec: dict[str, Any], problem: str) -> None:
    problems = _problems(CostPolicy, _policy(**spec))
    assert any(problem in p for p in problems), problems


def test_budget_durations_and_replicas_validate() -> None:
    tjb = {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "TrainingJobBudget",
        "metadata": {"name": "b", "namespace": "ml"},
        "spec": {"amount": 100, "selector": {}, "maxDuration": "three days"},
    }
    assert any(
        "spec.maxDuration: expected a Go-style duration" in p
        for p in _problems(TrainingJobBudget, tjb)
    )
    tjb["spec"]["maxDuration"] = "72h"
    assert TrainingJobBudget.model_validate(tjb).spec.max_duration == 259200
    idep = {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": "i", "namespace": "ml"},
        "spec": {"image": "vllm", "gpu": {"model": "L4"}, "replicas": {"min": 3, "max": 2}},
    }
    assert any(
        "replicas.min (3) must not exceed replicas.max (2)" in p
        for p in _problems(InferenceDeployment, idep)
    )


def _check_structural(node: dict[str, Any], path: str) -> None:
    """Every schema node has a type (or is the int-or-string pattern); no $ref, no titles;
    junctors only in the int-or-string pattern."""
    assert "$ref" not in node and "title" not in node, path
    assert "patternProperties" not in node and "propertyNames" not in node, path
    if node.get("x-kubernetes-int-or-string"):
        assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        assert "type" not in node, path
        return
    assert "anyOf" not in node and "oneOf" not in node and "allOf" not in node, path
    assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, path
    for name, sub in node.get("properties", {}).items():
        _check_structural(sub, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        _check_structural(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        _check_structural(node["items"], f"{path}[]")


@pytest.mark.parametrize("crd", crds(), ids=lambda c: c["metadata"]["name"])
def test_crds_are_structural(crd: dict[str, Any]) -> None:
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    _check_structural(schema, crd["spec"]["names"]["kind"])
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["shortNames"]
    assert "costgov" in crd["spec"]["names"]["categories"]


def test_printer_columns_show_money() -> None:
    columns = {
        c["spec"]["names"]["kind"]: [
            col["name"].upper() for col in c["spec"]["versions"][0]["additionalPrinterColumns"]
        ]
        for c in crds()
    }
    assert columns == {
        "CostPolicy": ["MODE", "PERIOD", "BUDGET", "SPENT", "FORECAST", "AGE"],
        "TrainingJobBudget": ["BUDGET", "SPENT", "REMAINING", "PHASE", "AGE"],
        "InferenceDeployment": ["GPU", "REPLICAS", "$/HOUR", "$/MONTH", "BUDGET", "AGE"],
        "CostApproval": ["KIND", "TARGET", "REQUESTED-BY", "PHASE", "AGE"],
    }


def test_committed_crds_match_the_models() -> None:
    from costgov.cli import _crd_yaml

    for crd in crds():
        path = ROOT / "crds" / f"{crd['metadata']['name']}.yaml"
        assert path.read_text() == _crd_yaml(crd), f"{path} is stale: run `make manifests`"


def test_status_money_serializes_as_cent_strings() -> None:
    body = {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "TrainingJobBudget",
        "metadata": {"name": "b", "namespace": "ml"},
        "spec": {"amount": 100, "selector": {}},
        "status": {"spent": "12.5", "remaining": 87.5},
    }
    with pytest.raises(ValidationError):  # floats with decimals are refused
        TrainingJobBudget.model_validate(body)
    body["status"]["remaining"] = "87.50"
    dumped = TrainingJobBudget.model_validate(body).status.model_dump(mode="json", by_alias=True)
    assert dumped["spent"] == "12.50"
    assert dumped["remaining"] == "87.50"
