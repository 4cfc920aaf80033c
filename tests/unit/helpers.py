"""Builders for test objects (plain dicts, as they arrive from YAML or the API)."""

from __future__ import annotations

from typing import Any

from costgov.catalog import load_catalog
from costgov.domain.catalogs import PriceCatalog

CATALOG: PriceCatalog = load_catalog()


def job(
    name: str = "train",
    *,
    namespace: str = "ml",
    gpus: int | str = 8,
    parallelism: int | None = None,
    completions: int | None = None,
    deadline: int | None = 259200,
    node_selector: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "nodeSelector": node_selector
                if node_selector is not None
                else {"node.kubernetes.io/instance-type": "p5.48xlarge"},
                "containers": [
                    {
                        "name": "main",
                        "image": "x",
                        "resources": {"limits": {"nvidia.com/gpu": gpus}},
                    }
                ],
            }
        }
    }
    if parallelism is not None:
        spec["parallelism"] = parallelism
    if completions is not None:
        spec["completions"] = completions
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": spec,
    }


def deployment(
    name: str = "serve", *, replicas: int = 3, gpus: int = 1, instance_type: str = "g5.xlarge"
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {
                    "nodeSelector": {"node.kubernetes.io/instance-type": instance_type},
                    "containers": [
                        {
                            "name": "s",
                            "image": "x",
                            "resources": {"limits": {"nvidia.com/gpu": gpus}},
                        }
                    ],
                }
            },
        },
    }
