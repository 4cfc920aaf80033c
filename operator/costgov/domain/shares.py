"""A pod's share of a node's price: GPU-weighted, with CPU/RAM pods sharing what is left."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["gpu_share", "remainder_share"]


def gpu_share(pod_gpus: int | Decimal, node_gpus: int) -> Decimal:
    """The fraction of a node's price a pod carries: its GPUs over the node's GPUs.

    A pod holding 4 of 8 GPUs carries half the node price, CPU and memory included: the GPUs
    are why the node exists. (OpenCost's default split would give it about a third.)
    """
    if node_gpus <= 0:
        raise ValueError("a GPU share needs a node with GPUs")
    return Decimal(pod_gpus) / Decimal(node_gpus)


def remainder_share(
    *,
    node_gpus: int,
    allocated_gpus: int,
    cpu: Decimal,
    memory_gib: Decimal,
    node_vcpu: int,
    node_memory_gib: Decimal,
) -> Decimal:
    """The fraction of a GPU node's price a CPU/RAM-only pod carries.

    What GPU pods leave unclaimed (the node's unallocated GPU share) is split by CPU and
    memory: the pod's share is the mean of its CPU and memory fractions of the node, times
    that remainder.
    """
    remainder = (
        Decimal(node_gpus - allocated_gpus) / Decimal(node_gpus) if node_gpus else Decimal(1)
    )
    usage = (cpu / Decimal(node_vcpu) + memory_gib / node_memory_gib) / 2
    return remainder * min(usage, Decimal(1))
