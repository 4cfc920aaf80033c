"""Where a node is and how it is bought, from its labels: instance type, region, zone,
capacity type (on demand, spot, reserved) and cloud provider.

The label names are the ones the clouds and Karpenter set on nodes (the exact spelling, as
the Kubernetes API shows them; kube-state-metrics' mangled names are the adapter's concern).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

__all__ = [
    "CAPACITY_LABELS",
    "GPU_COUNT_LABEL",
    "GPU_PRODUCT_LABEL",
    "GPU_PRODUCT_LABELS",
    "INSTANCE_TYPE_LABELS",
    "ONPREM",
    "PROVIDER_LABEL",
    "REGION_LABELS",
    "SPOT_NODE_LABELS",
    "SPOT_TAINTS",
    "ZONE_LABELS",
    "CapacityType",
    "capacity_from_labels",
    "first_label",
    "provider_from_labels",
]

INSTANCE_TYPE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_PRODUCT_LABELS = (
    GPU_PRODUCT_LABEL,
    "amd.com/gpu.product-name",
    "beta.amd.com/gpu.product-name",
)
"""GPU feature discovery's product label, then AMD's node labeller's (new and beta names)."""
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
ONPREM = "onprem"
PROVIDER_LABEL = "costgov.io/provider"
"""A node label naming its provider outright (aws, gcp, azure, onprem): wins over guesses."""


class CapacityType(StrEnum):
    """How a node is bought."""

    ON_DEMAND = "on-demand"
    SPOT = "spot"
    RESERVED = "reserved"


# label -> {label value (lower-cased) -> capacity type}; the first label present decides.
CAPACITY_LABELS: dict[str, dict[str, CapacityType]] = {
    "karpenter.sh/capacity-type": {
        "spot": CapacityType.SPOT,
        "on-demand": CapacityType.ON_DEMAND,
        "reserved": CapacityType.RESERVED,
    },
    "eks.amazonaws.com/capacityType": {
        "spot": CapacityType.SPOT,
        "on_demand": CapacityType.ON_DEMAND,
        "capacity_block": CapacityType.RESERVED,
    },
    "cloud.google.com/gke-spot": {"true": CapacityType.SPOT},
    "cloud.google.com/gke-preemptible": {"true": CapacityType.SPOT},
    "kubernetes.azure.com/scalesetpriority": {
        "spot": CapacityType.SPOT,
        "regular": CapacityType.ON_DEMAND,
    },
}

SPOT_NODE_LABELS: dict[str, str] = {
    "karpenter.sh/capacity-type": "spot",
    "eks.amazonaws.com/capacityType": "SPOT",
    "cloud.google.com/gke-spot": "true",
    "cloud.google.com/gke-preemptible": "true",
    "kubernetes.azure.com/scalesetpriority": "spot",
}
"""How each provisioner marks a spot node, with the exact value a node selector must match
(EKS writes SPOT in capitals; label values are case-sensitive)."""
SPOT_TAINTS: tuple[tuple[str, str], ...] = (
    ("kubernetes.azure.com/scalesetpriority", "spot"),
    ("cloud.google.com/gke-spot", "true"),
)
"""NoSchedule taints AKS puts on every spot node and GKE on spot nodes of pools created with
it: a pod meant for spot tolerates them."""

_PROVIDER_PREFIXES = (
    ("eks.amazonaws.com/", "aws"),
    ("karpenter.k8s.aws/", "aws"),
    ("cloud.google.com/", "gcp"),
    ("kubernetes.azure.com/", "azure"),
)


def capacity_from_labels(labels: Mapping[str, str]) -> tuple[CapacityType, str | None]:
    """The capacity type a node's labels declare, and the label that said so.

    Understands Karpenter, EKS managed node groups, GKE spot and preemptible, and AKS spot
    scale sets. A node with none of these labels is on demand.
    """
    for label, values in CAPACITY_LABELS.items():
        if label in labels:
            found = values.get(labels[label].strip().lower())
            if found is not None:
                return found, label
    return CapacityType.ON_DEMAND, None


def provider_from_labels(labels: Mapping[str, str]) -> str | None:
    """The provider a node's labels name: costgov.io/provider when set, else aws, gcp or
    azure when a provider-specific label is present, else None."""
    named = labels.get(PROVIDER_LABEL, "").strip().lower()
    if named:
        return named
    for key in labels:
        for prefix, provider in _PROVIDER_PREFIXES:
            if key.startswith(prefix):
                return provider
    return None


def first_label(labels: Mapping[str, str], keys: Iterable[str]) -> str | None:
    """The value of the first of `keys` that is set (non-empty)."""
    return next((labels[k] for k in keys if labels.get(k)), None)
