"""Accounting windows: where each resource's spend accounting resumes.

A policy accounts its budget period; a budget accounts from when it (or its first Job)
started. Each resumes at the cursor kept in its status, so a restarted operator carries on
where it left off and each cycle queries only the minutes since the last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from costgov.api import CostPolicy, TrainingJobBudget
from costgov.api.common import Accounting
from costgov.domain.budgets import period_bounds
from costgov.services.inventory import JobRecord

__all__ = [
    "MAX_LOOKBACK",
    "Resume",
    "budget_window",
    "policy_window",
    "timestamp",
    "window_key",
]

MAX_LOOKBACK = timedelta(days=92)


def timestamp(value: datetime) -> str:
    """RFC 3339 with a Z, as Kubernetes writes times."""
    return value.isoformat().replace("+00:00", "Z")


def window_key(start: datetime) -> str:
    """The name of the snapshot window that starts at `start`."""
    return timestamp(start)


class Resume(NamedTuple):
    """Where a policy's accounting resumes, and what the period counted so far."""

    start: datetime
    spent: Decimal
    unpriced: tuple[str, ...] = ()
    """Pods the period's spend left out so far (they stay noted until the period ends)."""
    api_spent: Decimal = Decimal(0)
    """Hosted-API spend in scope so far (`spent` holds GPU time only)."""


def policy_window(
    policy: CostPolicy, accounting: Accounting | None, period_start: datetime | None, now: datetime
) -> Resume | None:
    """Where a policy's budget period resumes, or None without budget.

    Resumes at the accounting cursor within the same period; a new period starts from zero.
    """
    if policy.spec.budget is None:
        return None
    start, _ = period_bounds(now, policy.spec.budget.period)
    if accounting is not None and accounting.cursor >= start and period_start == start:
        return Resume(
            accounting.cursor,
            Decimal(accounting.spent),
            tuple(accounting.unpriced),
            Decimal(accounting.api_spent),
        )
    return Resume(start, Decimal(0))


def _created(meta_extra: Mapping[str, Any] | None, now: datetime) -> datetime:
    stamp = (meta_extra or {}).get("creationTimestamp")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return now
    return now


def budget_window(
    budget: TrainingJobBudget,
    accounting: Accounting | None,
    jobs: Iterable[JobRecord],
    now: datetime,
) -> datetime:
    """Where a budget's accounting resumes: its cursor, or else from when the budget or the
    first of its Jobs started (at most 92 days back)."""
    if accounting is not None:
        return accounting.cursor
    starts = [j.started for j in jobs if j.started is not None]
    first = min([_created(budget.metadata.model_extra, now), *starts])
    return max(first, now - MAX_LOOKBACK)
