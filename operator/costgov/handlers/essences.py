"""kopf's per-event "essence" of an object, kept only where a change handler reads it.

On every watch event of every watched kind, kopf builds the object's essence (a deep copy of
the body less its status and system fields) and compares it with the last handled one, for
its change handlers (kopf._core.reactor.processing, `_detect_causes`; kopf 1.37 to 1.45 at
least). costgov's only change handlers are the deletion handlers of its own kinds
(costgov.io); the pods, nodes, Jobs and other workloads it watches have index handlers
alone, for which kopf never reads the essence. Profiled on the simulated cluster while
10,000 pods start (py-spy, docs/benchmarks.md), that deep copy was 16 % of the operator's
CPU. `EssentialDiffBase` builds it for costgov.io objects only; for the others it is empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import kopf

__all__ = ["CHANGE_HANDLED_GROUP", "EssentialDiffBase"]

CHANGE_HANDLED_GROUP = "costgov.io"
"""The API group whose objects have change handlers (tests/unit/test_essences.py checks
that no other group has one)."""


class EssentialDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotation storage of the last handled essence, building the essence only
    for objects of the group with change handlers."""

    def build(
        self,
        *,
        body: kopf.Body,
        extra_fields: Iterable[kopf.FieldSpec] | None = None,
    ) -> kopf.BodyEssence:
        group = str(body.get("apiVersion") or "").partition("/")[0]
        if group != CHANGE_HANDLED_GROUP:
            return cast(kopf.BodyEssence, {})
        return super().build(body=body, extra_fields=extra_fields)
