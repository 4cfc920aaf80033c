"""Figures the reconcile loop measures and admission reads, kept in memory, typed.

Admission never queries anything per request: it judges budgets with the last cycle's
spend, plus what it has itself admitted since (so two Jobs admitted between two cycles are
not both judged against the same remaining dollars).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from costgov.api.costapproval import BoundWorkload
from costgov.domain.judging import BudgetKey, Spend
from costgov.services.conditions import ViolationSeen

__all__ = ["PENDING_FOR", "Ledger"]

PENDING_FOR = timedelta(minutes=10)
"""How long an admitted Job that no reconcile has found still counts against its budget."""


@dataclass
class Ledger:
    """Spend per policy and per budget, and what covered Jobs are still expected to cost."""

    policy_spent: dict[str, Decimal] = field(default_factory=dict)
    budget_spent: dict[BudgetKey, Decimal] = field(default_factory=dict)
    commitments: dict[BudgetKey, dict[str, Decimal]] = field(default_factory=dict)
    pending: dict[BudgetKey, dict[str, tuple[Decimal, datetime]]] = field(default_factory=dict)
    """Jobs admitted that no reconcile has found yet: estimate, when admitted."""
    bound: dict[str, tuple[BoundWorkload, datetime]] = field(default_factory=dict)
    """Selector-target CostApprovals (`scoping.binding_key`) whose first use this webhook
    recorded in their status, until the watch brings that status (`scoping.bound_workload`)."""
    audit: list[tuple[str, ViolationSeen, datetime]] = field(default_factory=list)
    """Admitted-but-recorded violations (audit mode): policy, violation, when."""
    _spend: Spend | None = None
    """The figures as the engine takes them, rebuilt after any change."""

    def record_budget(
        self,
        key: BudgetKey,
        spent: Decimal | None,
        commitments: Mapping[str, Decimal],
        covered: Set[str],
        now: datetime,
    ) -> None:
        """A budget's reconcile: its spend, its running Jobs' commitments, and the names of
        every covered Job the watch cache holds. A Job admitted but not among those stays
        pending (admitted while the reconcile ran, or not in the cache yet) until a
        reconcile finds it, or for `PENDING_FOR` (admitted but never created: another
        webhook refused it)."""
        if spent is not None:
            self.budget_spent[key] = spent
        self.commitments[key] = dict(commitments)
        kept = {
            job: (amount, at)
            for job, (amount, at) in self.pending.get(key, {}).items()
            if job not in covered and now - at < PENDING_FOR
        }
        if kept:
            self.pending[key] = kept
        else:
            self.pending.pop(key, None)
        self._spend = None

    def record_policy(self, name: str, spent: Decimal) -> None:
        self.policy_spent[name] = spent
        self._spend = None

    def admitted(self, key: BudgetKey, job: str, amount: Decimal, at: datetime) -> None:
        """A Job admitted against a budget, counted until a reconcile finds it."""
        self.pending.setdefault(key, {})[job] = (amount, at)
        self._spend = None

    def bind(self, approval: str, workload: BoundWorkload, at: datetime) -> None:
        """A selector-target CostApproval's first use, recorded in its status: held here
        for `PENDING_FOR` (the watch brings the status in moments; the status is the truth)."""
        if len(self.bound) > 1000:
            self.bound = {k: v for k, v in self.bound.items() if at - v[1] < PENDING_FOR}
        self.bound.setdefault(approval, (workload, at))
        self._spend = None

    def unbind(self, approval: str) -> None:
        """A binding taken back (the request it was written for ended refused)."""
        if self.bound.pop(approval, None) is not None:
            self._spend = None

    def record_audit(self, found: list[tuple[str, ViolationSeen]], now: datetime) -> None:
        self.audit.extend((policy, seen, now) for policy, seen in found)
        del self.audit[:-1000]

    def spend(self) -> Spend:
        """The figures as the judging engine takes them (built once per change)."""
        if self._spend is not None:
            return self._spend
        commitments = {
            key: {
                **self.commitments.get(key, {}),
                **{job: amount for job, (amount, _) in self.pending.get(key, {}).items()},
            }
            for key in self.commitments.keys() | self.pending.keys()
        }
        bound = {key: name for key, (name, _) in self.bound.items()}
        self._spend = Spend(dict(self.policy_spent), dict(self.budget_spent), commitments, bound)
        return self._spend
