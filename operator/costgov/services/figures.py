"""Small renderings shared by the reconcilers: exact decimals and the metrics condition."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from costgov.api.fields import Condition
from costgov.services.accounting import Snapshot
from costgov.services.conditions import condition

__all__ = ["exact", "metrics_condition"]


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
