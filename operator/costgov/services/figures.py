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
from costgov.services.windows import timestamp

__all__ = [
    "caught_up_condition",
    "exact",
    "figures_as_of",
    "metrics_condition",
    "pods_condition",
    "priced_condition",
    "unpriced_note",
]


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


def pods_condition(problem: str | None, generation: int, now: datetime) -> Condition:
    """PodsFollowed: False while the GPU pods cannot be listed or watched through the API
    (figures and decisions then rest on the pods as last seen), saying why."""
    if problem:
        message = f"{problem}; figures and decisions rest on the GPU pods as last seen"
        return condition(
            "PodsFollowed", False, "WatchFailing", message[:2000], generation=generation, now=now
        )
    return condition(
        "PodsFollowed", True, "Watching", "GPU pods followed through the API",
        generation=generation, now=now,
    )  # fmt: skip


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


def _hours(seconds: float) -> str:
    return f"{seconds / 86400:.1f} days" if seconds >= 172800 else f"{seconds / 3600:.1f} h"


def figures_as_of(snapshot: Snapshot, end: datetime) -> datetime:
    """When figures counted up to `end` stand: the snapshot's time, or `end` itself while a
    window catches up a chunk of history at a time."""
    if snapshot.accounted_to is not None and end < snapshot.accounted_to:
        return end
    return snapshot.at


def caught_up_condition(
    snapshot: Snapshot, window: str, cursor: datetime | None, generation: int, now: datetime
) -> Condition | None:
    """CaughtUp: False while the resource's spend is being counted a chunk of history at a
    time (its figures are then a lower bound), True once they are current; None when this
    snapshot says nothing of the window. `cursor`: where its figures stood before."""
    to = snapshot.accounted_to
    if snapshot.error or to is None:
        return None
    spend = snapshot.windows.get(window)
    reached = spend.end if spend is not None else cursor
    if window in snapshot.lagging or (spend is not None and spend.end < to):
        left = (to - reached).total_seconds() if reached is not None else None
        counted = f"counted up to {timestamp(reached)}" if reached else "nothing counted yet"
        why = snapshot.lagging.get(window, "")
        message = (
            f"catching up on past spend a chunk at a time: {counted}"
            + (f", {_hours(left)} of history to go" if left is not None else "")
            + ("; the figures so far are a lower bound" if reached is not None else "")
            + (f" ({why})" if why else "")
        )
        return condition("CaughtUp", False, "CatchingUp", message, generation=generation, now=now)
    if spend is None:
        return None
    return condition(
        "CaughtUp", True, "Current", f"spend counted up to {timestamp(spend.end)}",
        generation=generation, now=now,
    )  # fmt: skip
