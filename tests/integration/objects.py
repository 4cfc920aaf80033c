"""API objects for operator tests, as the apiserver and its controllers would hold them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["P5_NODE_LABELS", "budget", "job", "job_pod", "mid_month_end", "node"]

P5_NODE_LABELS = {
    "node.kubernetes.io/instance-type": "p5.48xlarge",
    "topology.kubernetes.io/region": "us-east-1",
    "karpenter.sh/capacity-type": "on-demand",
}


def mid_month_end() -> int:
    """Noon on the 14th of this month, or of last month before the 15th: always past."""
    now = datetime.now(UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if now.day < 15:
        month = (month - timedelta(days=1)).replace(day=1)
    return int((month + timedelta(days=13, hours=12)).timestamp())


def node(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def _gpu_spec(gpus: int, **extra: Any) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": "trainer",
        "resources": {"limits": {"nvidia.com/gpu": gpus}},
    }
    return {**extra, "containers": [container]}


def job(
    name: str, namespace: str, *, budget: str, finished: bool, created: str, gpus: int = 8
) -> dict[str, Any]:
    """A GPU Job covered by `budget` (label costgov.io/budget), finished or running one pod."""
    status: dict[str, Any] = {"startTime": created}
    if finished:
        status["conditions"] = [{"type": "Complete", "status": "True"}]
    else:
        status["active"] = 1
    selector = {"node.kubernetes.io/instance-type": "p5.48xlarge"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-job-{name}",
            "labels": {"costgov.io/budget": budget},
            "creationTimestamp": created,
        },
        "spec": {
            "activeDeadlineSeconds": 86400,
            "template": {"spec": _gpu_spec(gpus, nodeSelector=selector)},
        },
        "status": status,
    }


def job_pod(name: str, namespace: str, job: str, node: str, gpus: int = 8) -> dict[str, Any]:
    """A Running pod as the job controller creates it: its Job the controller owner."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"batch.kubernetes.io/job-name": job, "job-name": job},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": job,
                    "uid": f"uid-job-{job}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": _gpu_spec(gpus, nodeName=node),
        "status": {"phase": "Running"},
    }


def budget(name: str, namespace: str, amount: int, *, created: str) -> dict[str, Any]:
    """A TrainingJobBudget covering the Jobs labelled costgov.io/budget=<name>."""
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "TrainingJobBudget",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": 1,
            "creationTimestamp": created,
        },
        "spec": {"amount": amount, "selector": {"matchLabels": {"costgov.io/budget": name}}},
    }
