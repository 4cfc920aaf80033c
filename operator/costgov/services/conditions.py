"""Status bookkeeping shared by every resource: conditions and the bounded violations list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from costgov.api.common import MAX_VIOLATIONS

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
) -> dict[str, Any]:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now.isoformat().replace("+00:00", "Z"),
        "observedGeneration": generation,
    }


def merge_conditions(
    old: Sequence[Mapping[str, Any]], new: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """New conditions, keeping lastTransitionTime where the status did not change."""
    before = {c.get("type"): c for c in old}
    out = []
    for cond in new:
        prev = before.get(cond["type"])
        if prev is not None and prev.get("status") == cond["status"]:
            cond = {
                **cond,
                "lastTransitionTime": prev.get("lastTransitionTime", cond["lastTransitionTime"]),
            }
        out.append(cond)
    kept = [dict(c) for t, c in before.items() if t not in {n["type"] for n in out}]
    return [*out, *kept]


def merge_violations(
    old: Sequence[Mapping[str, Any]], seen: Iterable[ViolationSeen], now: datetime
) -> tuple[list[dict[str, Any]], list[ViolationSeen]]:
    """The violations list (newest first, bounded) and the violations seen for the first time.

    A violation that persists keeps its `since`; one that is gone is dropped.
    """

    def key(obj: Mapping[str, Any], rule: str) -> tuple[str, str, str, str]:
        return (str(obj.get("kind")), str(obj.get("namespace", "")), str(obj.get("name")), rule)

    since = {key(v.get("object", {}), str(v.get("rule"))): v.get("since") for v in old}
    records, fresh = [], []
    stamp = now.isoformat().replace("+00:00", "Z")
    for v in seen:
        obj = {"kind": v.kind, "namespace": v.namespace, "name": v.name}
        first = since.get(key(obj, v.rule))
        if first is None:
            fresh.append(v)
        records.append(
            {
                "object": obj,
                "rule": v.rule,
                "severity": v.severity,
                "message": v.message[:4096],
                "since": first or stamp,
            }
        )
    records.sort(key=lambda r: str(r["since"]), reverse=True)
    return records[:MAX_VIOLATIONS], fresh
