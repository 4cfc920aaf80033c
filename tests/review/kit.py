"""Builders for the review's attack tests: plain dicts as the apiserver sends them, and the
admission service called the way the webhook calls it (no kopf, no network)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from costgov.api import CostApproval, CostPolicy, TrainingJobBudget
from costgov.catalog import load_catalog
from costgov.cli import main
from costgov.domain.judging import Situation
from costgov.domain.scoping import excluded_namespaces
from costgov.services.admitting import Decision, Gate, Request, admit

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
CATALOG = load_catalog()
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": "ml", "labels": {"gov": "yes"}}}  # fmt: skip


def policy(name: str = "p", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "CostPolicy",
        "metadata": {"name": name},
        "spec": {
            "mode": "enforce",
            "scope": {"namespaceSelector": {"matchLabels": {"gov": "yes"}}},
            **spec,
        },
    }


def container(gpus: Any = 8, name: str = "main", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "x", "resources": {"limits": {"nvidia.com/gpu": gpus}}, **extra}


def pod_spec(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
        "containers": [container()],
    }
    spec.update(extra)
    return spec


def job(name: str = "train", *, deadline: int | None = 3600, labels: dict[str, str] | None = None,
        **pod: Any) -> dict[str, Any]:  # fmt: skip
    spec: dict[str, Any] = {"template": {"spec": pod_spec(**pod)}}
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "ml", "labels": labels or {}},
            "spec": spec}  # fmt: skip


def situation(*docs: dict[str, Any], nodes: Any = None) -> Situation:
    policies = [CostPolicy.model_validate(d) for d in docs if d["kind"] == "CostPolicy"]
    budgets = [
        TrainingJobBudget.model_validate(d) for d in docs if d["kind"] == "TrainingJobBudget"
    ]
    approvals = [CostApproval.model_validate(d) for d in docs if d["kind"] == "CostApproval"]
    return Situation(
        catalog=CATALOG,
        now=NOW,
        policies=policies,
        namespaces={"ml": {"gov": "yes"}},
        budgets=budgets,
        approvals=approvals,
        nodes=nodes,
        excluded=excluded_namespaces(),
    )


def review_of(kind: str, obj: dict[str, Any], *, user: str = "bob", old: dict[str, Any] | None = None,
              sub: str | None = None, groups: tuple[str, ...] = ("system:authenticated",)) -> Request:  # fmt: skip
    return Request(
        kind=kind,
        operation="UPDATE" if old is not None else "CREATE",
        obj=copy.deepcopy(obj),
        old=copy.deepcopy(old) if old is not None else None,
        user=user,
        groups=groups,
        dryrun=False,
        subresource=sub,
    )


def decide(request: Request, sit: Situation, **gate: Any) -> Decision:
    return admit(request, Gate(sit, **gate))


def write(tmp_path: Path, name: str, *docs: Any) -> Path:
    path = tmp_path / name
    if docs and isinstance(docs[0], str):
        path.write_text("".join(docs))
    else:
        path.write_text(yaml.safe_dump_all(docs))
    return path


def estimate(capsys: Any, *args: str) -> tuple[int, str, str]:
    code = main(["estimate", *args, "--now", NOW.isoformat()])
    out, err = capsys.readouterr()
    return code, out, err
