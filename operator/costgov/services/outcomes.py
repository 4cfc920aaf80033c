"""What a reconcile returns: the typed status, events to emit, objects to patch, and the
figures admission needs (typed, never parsed back out of status strings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from costgov.api.common import StatusBase
from costgov.services.conditions import Event

__all__ = ["Announced", "JobPatch", "Outcome"]

S = TypeVar("S", bound=StatusBase)
JobPatch = tuple[str, str, dict[str, Any]]
Announced = tuple[datetime | None, int | None]
"""(period start, or None for a whole-effort budget; the highest threshold announced, which
drops back when the budget is raised)."""
"""(namespace, Job, merge patch)."""


@dataclass
class Outcome(Generic[S]):
    status: S
    events: list[Event] = field(default_factory=list)
    job_patches: list[JobPatch] = field(default_factory=list)
    deployment: dict[str, Any] | None = None
    spent: Decimal | None = None
    """Spend this period (policy) or to date (budget), exact; None when not measured."""
    commitments: Mapping[str, Decimal] = field(default_factory=dict)
    """A budget's covered Jobs: what each is still expected to cost."""
    covered: frozenset[str] = frozenset()
    """A budget's covered Jobs the watch cache holds, by name, in any state."""
    announced: Announced | None = None
    """The highest threshold announced by an Event (and for which period)."""
