"""Small renderings shared by the reconcilers: exact decimals, the metrics and priced
conditions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from costgov.api.common import MAX_UNPRICED
from costgov.api.fields import Condition
from costgov.domain.spend import unpriced_caveat
from costgov.services.accounting import Snapshot
from costgov.services.conditions import condition

__all__ = ["exact", "metrics_condition", "priced_condition", "unpriced_note"]


def exact(value: Decimal) -> str:
    """A Decimal as plain digits, never exponent notation (accounting totals stay exact)."""
    return format(value.normalize() if value else Decimal(0), "f")


def metrics_condition(snapshot: Snapshot, generation: int, now: datetime) -> Condition:
    if snapshot.error:
        return condition(
            "MetricsAvailable",
            False,
            "PrometheusUnavailable",
            f"{snapshot.error}; figures kept from the last good cycle",
            generation=generation,
            now=now,
        )
    message = "; ".join(snapshot.warnings) if snapshot.warnings else "Prometheus answered"
    reason = "PrometheusWarnings" if snapshot.warnings else "Queried"
    return condition(
        "MetricsAvailable", True, reason, message[:2000], generation=generation, now=now
    )


def unpriced_note(unpriced: Sequence[str]) -> str:
    """ "3 pods unpriced, not included" for pods a running total left out ("" for none)."""
    if not unpriced:
        return ""
    return unpriced_caveat(len(unpriced), at_least=len(unpriced) >= MAX_UNPRICED)


def priced_condition(unpriced: Sequence[str], generation: int, now: datetime) -> Condition:
    """Priced=False while any pod the figures cover could not be priced, naming them."""
    if unpriced:
        message = f"{unpriced_note(unpriced)}: {'; '.join(unpriced)}"
        return condition(
            "Priced", False, "UnpricedPods", message[:2000], generation=generation, now=now
        )
    return condition(
        "Priced", True, "AllPriced", "every pod priced", generation=generation, now=now
    )
