"""The Deployment costgov owns for an InferenceDeployment: node selection for the GPU model
and capacity type, an owner reference, and the replicas the budget affords."""

from __future__ import annotations

from typing import Any

from costgov.api import InferenceDeployment
from costgov.domain.capacity import SPOT_NODE_LABELS, SPOT_TAINTS

__all__ = ["INFERENCE_LABEL", "deployment_manifest"]

INFERENCE_LABEL = "costgov.io/inference-deployment"

_GPU_PRODUCTS = {
    "H100": ["NVIDIA-H100-80GB-HBM3"],
    "A100-80GB": ["NVIDIA-A100-SXM4-80GB"],
    "A100-40GB": ["NVIDIA-A100-SXM4-40GB"],
    "L4": ["NVIDIA-L4"],
    "L40S": ["NVIDIA-L40S"],
    "A10G": ["NVIDIA-A10G"],
    "T4": ["Tesla-T4"],
}


def _capacity_terms(capacity: str) -> list[list[dict[str, Any]]]:
    """Node-affinity terms (ORed) selecting the capacity type on every provisioner: spot is
    any one of Karpenter's, EKS's, GKE's or AKS's spot labels; on demand is none of them."""
    if capacity == "spot":
        return [
            [{"key": label, "operator": "In", "values": [value]}]
            for label, value in SPOT_NODE_LABELS.items()
        ]
    if capacity == "on-demand":
        return [
            [
                {"key": label, "operator": "NotIn", "values": [value]}
                for label, value in SPOT_NODE_LABELS.items()
            ]
        ]
    return [[]]


def _pod_spec(idep: InferenceDeployment) -> dict[str, Any]:
    """The server container, with node selection for the GPU model and capacity type."""
    spec = idep.spec
    selector: dict[str, str] = {}
    if spec.gpu.instance_type:
        selector["node.kubernetes.io/instance-type"] = spec.gpu.instance_type
    pod: dict[str, Any] = {
        "containers": [
            {
                "name": "server",
                "image": spec.image,
                "args": list(spec.args),
                "ports": [{"name": "http", "containerPort": spec.port}],
                "resources": {"limits": {"nvidia.com/gpu": str(spec.gpu.count)}},
            }
        ],
        "nodeSelector": selector,
    }
    products = _GPU_PRODUCTS.get(spec.gpu.model)
    product = (
        [{"key": "nvidia.com/gpu.product", "operator": "In", "values": products}]
        if products and not spec.gpu.instance_type
        else []
    )
    terms = [
        {"matchExpressions": [*term, *product]}
        for term in _capacity_terms(spec.capacity_type)
        if term or product
    ]
    if terms:
        pod["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
            }
        }
    if spec.capacity_type == "spot":
        pod["tolerations"] = [
            {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"}
            for key, value in SPOT_TAINTS
        ]
    return pod


def deployment_manifest(idep: InferenceDeployment, replicas: int) -> dict[str, Any]:
    """The Deployment the operator owns for an InferenceDeployment."""
    name = idep.metadata.name
    labels = {INFERENCE_LABEL: name, "app.kubernetes.io/managed-by": "costgov"}
    owner = {
        "apiVersion": idep.api_version,
        "kind": "InferenceDeployment",
        "name": name,
        "uid": idep.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": idep.metadata.namespace or "default",
            "labels": labels,
            "ownerReferences": [owner],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {INFERENCE_LABEL: name}},
            "template": {"metadata": {"labels": labels}, "spec": _pod_spec(idep)},
        },
    }
