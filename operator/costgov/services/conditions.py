"""Status bookkeeping shared by every resource: conditions and the bounded violations list."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from costgov.api.common import MAX_VIOLATIONS, ObjectRef, ViolationRecord
from costgov.api.fields import Condition

__all__ = ["Event", "ViolationSeen", "condition", "merge_conditions", "merge_violations"]


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to emit on an object (kind/namespace/name)."""

    kind: str
    namespace: str
    name: str
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class ViolationSeen:
    kind: str
    namespace: str
    name: str
    rule: str
    severity: str
    message: str


def condition(
    type_: str, ok: bool | None, reason: str, message: str, *, generation: int, now: datetime
) -> Condition:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:32768],
        last_transition_time=now,
        observed_generation=generation,
    )


def merge_conditions(old: Sequence[Condition], new: Iterable[Condition]) -> list[Condition]:
    """New conditions, keeping lastTransitionTime where the status did not change, and the
    old conditions of other types as they were."""
    before = {c.type: c for c in old}
    out = []
    for cond in new:
        prev = before.get(cond.type)
        if prev is not None and prev.status == cond.status:
            cond = cond.model_copy(update={"last_transition_time": prev.last_transition_time})
        out.append(cond)
    seen = {c.type for c in out}
    return [*out, *(c for t, c in before.items() if t not in seen)][:16]


def merge_violations(
    old: Sequence[ViolationRecord], seen: Iterable[ViolationSeen], now: datetime
) -> tuple[list[ViolationRecord], list[ViolationSeen]]:
    """The violations list (newest first, bounded) and the violations seen for the first time.

    A violation that persists keeps its `since`; one that is gone is dropped.
    """
    since = {(v.object.kind, v.object.namespace, v.object.name, v.rule): v.since for v in old}
    records, fresh, done = [], [], set()
    for v in seen:
        key = (v.kind, v.namespace, v.name, v.rule)
        if key in done:
            continue
        done.add(key)
        first = since.get(key)
        if first is None:
            fresh.append(v)
        records.append(
            ViolationRecord(
                object=ObjectRef(kind=v.kind, namespace=v.namespace, name=v.name),
                rule=v.rule,
                severity="error" if v.severity == "error" else "warning",
                message=v.message[:4096],
                since=first or now,
            )
        )
    records.sort(key=lambda r: r.since, reverse=True)
    return records[:MAX_VIOLATIONS], fresh
