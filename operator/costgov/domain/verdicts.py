"""Violations and verdicts: a broken rule with its figures, and what a policy's mode makes
of the violations:

    enforce: any error -> deny;   only warnings -> warn;   none -> allow
    warn:    any violation -> warn (admitted with admission warnings)
    audit:   any violation -> audit (admitted, recorded as a violation)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from costgov.domain.approvals import Assessment
    from costgov.domain.costing import SpotOption

__all__ = [
    "SIGNED_RULES",
    "Action",
    "Severity",
    "Verdict",
    "Violation",
    "action_for",
    "rests_on_recent_edits",
    "worst_action",
]

Severity = Literal["error", "warning"]
Action = Literal["allow", "warn", "audit", "deny"]
_ACTION_ORDER: dict[Action, int] = {"allow": 0, "audit": 1, "warn": 2, "deny": 3}


@dataclass(frozen=True, slots=True)
class Violation:
    """A broken rule with the figures behind it."""

    rule: str
    severity: Severity
    message: str
    figures: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One policy's judgement of one workload."""

    policy: str
    mode: str
    action: Action
    violations: tuple[Violation, ...]
    spot: SpotOption | None = None
    """A spot alternative, when it saves at least the policy's threshold."""
    approval: Assessment | None = None
    """The approval tier that applies, and how far its sign-offs are given."""

    @property
    def denied(self) -> bool:
        return self.action == "deny"


def action_for(mode: str, violations: Iterable[Violation]) -> Action:
    """What the policy's mode makes of its violations."""
    found = list(violations)
    if not found:
        return "allow"
    if mode == "enforce":
        return "deny" if any(v.severity == "error" for v in found) else "warn"
    return "warn" if mode == "warn" else "audit"


def worst_action(verdicts: Iterable[Verdict]) -> Action:
    """The most severe action among verdicts (deny > warn > audit > allow)."""
    return max((v.action for v in verdicts), key=_ACTION_ORDER.__getitem__, default="allow")


SIGNED_RULES = frozenset({"approval.required", "budget.exceeded", "trainingJobBudget.exceeded"})
"""Rules whose verdict turns on a signature or a budget's amount: objects people edit just
before they submit the work those objects cover."""


def rests_on_recent_edits(verdicts: Iterable[Verdict], *, edited: bool) -> bool:
    """Whether an admission answer must be checked against a fresh read of the objects
    people edit just before they submit work (an approval, a budget's amount), not only the
    watch cache, which lags the apiserver by milliseconds to seconds.

    - A denial under one of `SIGNED_RULES`: always (rare, and a signature given a moment
      ago must count, whichever replica's webhook judged it).
    - An admission a signature carries under an enforcing policy: only when `edited` (the
      webhook admitted a change to the namespace's budgets or approvals, or to a policy,
      moments ago), so that a signature removed a moment ago no longer counts; otherwise
      from the cache, with no network call (the admission path's latency target).
    Other answers (limits, unpriced work, work nothing signs) come from the cache alone."""
    found = list(verdicts)
    if any(v.denied and any(x.rule in SIGNED_RULES for x in v.violations) for v in found):
        return True
    return edited and any(
        v.mode == "enforce" and v.approval is not None and v.approval.satisfied for v in found
    )
