"""What a replica that does not lead keeps for admission: the leader's figures, from status.

Only the leader measures spend and writes it to status; every replica judges admission
requests against the spend in its ledger. A follower fills its ledger from the statuses
its watches bring (the leader's exact running totals), and counts the Jobs a budget covers
from its own indexes with the rule the leader uses. It writes nothing and emits nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from costgov.api import CostPolicy, CostPolicyStatus, TrainingJobBudget, TrainingJobBudgetStatus
from costgov.domain.budgets import period_bounds
from costgov.services.budget_reconciling import commitments
from costgov.services.inventory import Inventory
from costgov.services.runtime import Runtime
from costgov.services.statuses import read_status

__all__ = ["follow_budget", "follow_policy"]


def follow_budget(
    runtime: Runtime, budget: TrainingJobBudget, inv: Inventory, raw: Mapping[str, Any] | None
) -> None:
    """The budget's spend to date as the leader last wrote it; its Jobs' commitments."""
    status = read_status(TrainingJobBudgetStatus, raw)
    spent = Decimal(status.accounting.spent) if status.accounting is not None else None
    key = (budget.metadata.namespace or "default", budget.metadata.name)
    situation = runtime.situation(inv, runtime.clock())
    found, covered = commitments(budget, inv, situation)
    runtime.ledger.record_budget(key, spent, found, covered, situation.now)


def follow_policy(runtime: Runtime, policy: CostPolicy, raw: Mapping[str, Any] | None) -> None:
    """The policy's spend this period as the leader last wrote it (none yet in a new one)."""
    budget = policy.spec.budget
    status = read_status(CostPolicyStatus, raw)
    if budget is None or status.accounting is None or status.period_start is None:
        return
    start, _ = period_bounds(runtime.clock(), budget.period)
    current = status.period_start == start
    spent = Decimal(status.accounting.spent) if current else Decimal(0)
    runtime.ledger.record_policy(policy.metadata.name, spent)
