"""Money: Decimal USD. Sums are exact; rounding to cents happens once, where a figure is shown."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

__all__ = ["HOURS_PER_MONTH", "SECONDS_PER_HOUR", "ZERO", "cents", "percent", "usd"]

ZERO = Decimal(0)
HOURS_PER_MONTH = Decimal(730)
"""A month of running, as cloud price pages count it (8,760 h / 12)."""
SECONDS_PER_HOUR = Decimal(3600)
_CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    """Round to whole cents, half away from zero (the way invoices round)."""
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def usd(amount: Decimal) -> str:
    """Format for people: $3,962.88."""
    rounded = cents(amount)
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.2f}"


def percent(part: Decimal, whole: Decimal) -> Decimal:
    """part / whole in percent, to one decimal; 0 when whole is 0."""
    if whole == 0:
        return ZERO
    return (part * 100 / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
