"""Pricing hints from a pod's nodeSelector and required node affinity.

The nodeSelector names one value per label. A single required affinity term may allow
several (`node.kubernetes.io/instance-type In [g6.48xlarge, p5.48xlarge]`): the scheduler
may pick any, so the pod is priced at the dearest (never guess low). Capacity types are
ranked without prices (on demand >= reserved >= spot); instance types, GPU products,
regions and providers become alternatives that costing prices one by one
(`costing.price_pod`). OR-ed terms give no single hint: the cluster's nodes decide there.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import replace

from costgov.api.gpus import normalize_gpu_model
from costgov.domain.capacity import (
    CAPACITY_LABELS,
    GPU_PRODUCT_LABELS,
    INSTANCE_TYPE_LABELS,
    PROVIDER_LABEL,
    REGION_LABELS,
    CapacityType,
    capacity_from_labels,
    provider_from_labels,
)
from costgov.domain.workloads import NodeHints, NodeRequirement

__all__ = ["MAX_ALTERNATIVES", "REQUIRED_AFFINITY", "node_hints"]

REQUIRED_AFFINITY = "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
MAX_ALTERNATIVES = 32
"""Combinations of allowed values priced at most; beyond, the pod is unpriced (bounded
work per admission review, and no guess)."""
_PRICING_KEYS = frozenset((*INSTANCE_TYPE_LABELS, *GPU_PRODUCT_LABELS, *REGION_LABELS,
                           PROVIDER_LABEL))  # fmt: skip
_CAPACITY_RANK = {CapacityType.SPOT: 0, CapacityType.RESERVED: 1, CapacityType.ON_DEMAND: 2}

Terms = tuple[tuple[NodeRequirement, ...], ...]


def _from_labels(chosen: Mapping[str, str], field: Mapping[str, str]) -> NodeHints:
    label = next((k for k in GPU_PRODUCT_LABELS if k in chosen), None)
    product = chosen[label] if label else None
    capacity = None
    if any(k in chosen for k in CAPACITY_LABELS):
        capacity, _ = capacity_from_labels(chosen)
    return NodeHints(
        instance_type=next((chosen[k] for k in INSTANCE_TYPE_LABELS if k in chosen), None),
        gpu_model=normalize_gpu_model(product),
        gpu_product=product,
        gpu_product_field=field[label] if label else "",
        capacity=capacity,
        provider=provider_from_labels(chosen),
        region=next((chosen[k] for k in REGION_LABELS if k in chosen), None),
    )


def _dearest_capacity(key: str, values: tuple[str, ...]) -> str:
    return max(values, key=lambda v: _CAPACITY_RANK[capacity_from_labels({key: v})[0]])


def node_hints(selector: Mapping[str, str], terms: Terms, path: str) -> NodeHints:
    """The nodeSelector, filled in from a single required affinity term; several allowed
    values of a pricing label become alternatives, priced at the dearest."""
    chosen = dict(selector)
    field = {k: f"{path}.nodeSelector[{k!r}]" for k in selector}
    notes: list[str] = []
    choices: list[tuple[str, tuple[str, ...]]] = []
    if len(terms) == 1:
        for req in terms[0]:
            if req.operator != "In" or not req.values or req.key in chosen:
                continue
            field[req.key] = f"{path}.{REQUIRED_AFFINITY} ({req.key} In)"
            values = tuple(dict.fromkeys(req.values))
            if len(values) > 1 and req.key in _PRICING_KEYS:
                choices.append((req.key, values))
                chosen[req.key] = values[0]
                continue
            chosen[req.key] = values[0]
            if len(values) > 1 and req.key in CAPACITY_LABELS:
                chosen[req.key] = _dearest_capacity(req.key, values)
                notes.append(
                    f"node affinity allows {req.key} in {list(values)}; priced as the "
                    f"dearest, {chosen[req.key]}"
                )
    hints = _from_labels(chosen, field)
    if len(terms) > 1 and hints.capacity is None:
        hints = replace(hints, capacity=_agreed_capacity(terms))
    return _alternatives(hints, chosen, field, choices, tuple(notes))


def _alternatives(
    hints: NodeHints,
    chosen: dict[str, str],
    field: Mapping[str, str],
    choices: list[tuple[str, tuple[str, ...]]],
    notes: tuple[str, ...],
) -> NodeHints:
    if not choices:
        return replace(hints, notes=notes)
    count = 1
    for _, values in choices:
        count *= len(values)
    if count > MAX_ALTERNATIVES:
        allowed = ", ".join(f"{k} in {list(v)}" for k, v in choices)
        return replace(hints, notes=notes, unpriced=(
            f"node affinity allows {count} combinations of node labels ({allowed}); costgov "
            f"prices at most {MAX_ALTERNATIVES} to find the dearest: narrow the affinity"))  # fmt: skip
    keys = [k for k, _ in choices]
    alternatives = []
    for picked in itertools.product(*(v for _, v in choices)):
        labels = {**chosen, **dict(zip(keys, picked, strict=True))}
        alternatives.append(
            replace(_from_labels(labels, field), picks=tuple(zip(keys, picked, strict=True)))
        )
    return replace(hints, notes=notes, choices=tuple(choices), alternatives=tuple(alternatives))


def _agreed_capacity(terms: Terms) -> CapacityType | None:
    """The capacity type every OR-ed affinity term requires (one spot label per provisioner:
    spot on any of them is spot), or None when a term allows another."""
    found = set()
    for term in terms:
        implied = {
            capacity_from_labels({req.key: value})[0]
            for req in term
            if req.operator == "In" and req.key in CAPACITY_LABELS
            for value in req.values
        }
        if len(implied) != 1:
            return None
        found |= implied
    return found.pop() if len(found) == 1 else None
