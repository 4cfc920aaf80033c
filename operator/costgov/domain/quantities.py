"""Kubernetes resource quantities ("500m", "2", "16Gi", "1.5e3") as exact Decimals."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = ["QuantityError", "parse_quantity", "parse_whole_count"]

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY_RE = re.compile(
    r"^(?P<sign>[+-]?)(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE](?P<exp>[+-]?[0-9]+))?$"
)
MAX_LENGTH = 64
"""apimachinery refuses longer quantity strings; so does costgov, before any arithmetic."""
MAX_DIGITS = 19
"""Quantities are int64 in Kubernetes (at most 9.2e18): anything with more integer digits is
refused in constant time, without building the number (1e999999 would take seconds)."""
_SUFFIX_DIGITS = {k: v.adjusted() for k, v in _SUFFIXES.items()}
INT64_MAX = Decimal(2**63 - 1)


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float) -> Decimal:
    """Parse a quantity the way apimachinery's resource.Quantity does; exact, no floats."""
    if isinstance(value, bool):
        raise QuantityError(f"expected a quantity such as 1, 500m or 16Gi, got {value!r}")
    if isinstance(value, int):
        return _bounded(Decimal(value), value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise QuantityError(f"expected a finite quantity, got {value!r}")
        return _bounded(Decimal(repr(value)), value)
    text = value.strip() if isinstance(value, str) else None
    match = _QUANTITY_RE.match(text) if text is not None and len(text) <= MAX_LENGTH else None
    if match is None:
        raise QuantityError(f"expected a quantity such as 1, 500m or 16Gi, got {str(value)[:80]!r}")
    try:
        number = Decimal(match["number"])
    except InvalidOperation as exc:  # pragma: no cover - the regex guards this
        raise QuantityError(f"not a quantity: {value!r}") from exc
    digits = (match["exp"] or "").lstrip("+-")
    if len(digits) > 4:  # decided on the text: a 1e999999 is never built
        raise QuantityError(f"{str(value)[:40]!r} is out of the range Kubernetes allows")
    exponent = int(match["exp"]) if match["exp"] is not None else 0
    suffix = match["suffix"] or ""
    if number and number.adjusted() + exponent + _SUFFIX_DIGITS[suffix] >= MAX_DIGITS:
        raise QuantityError(f"{value!r} is larger than Kubernetes allows (at most 9.2e18)")
    number = number.scaleb(exponent) if exponent else number * _SUFFIXES[suffix]
    return _bounded(-number if match["sign"] == "-" else number, value)


def _bounded(number: Decimal, value: object) -> Decimal:
    """`number`, when it fits Kubernetes' int64 (checked on digits first, then exactly)."""
    if number and (number.adjusted() >= MAX_DIGITS or abs(number) > INT64_MAX):
        raise QuantityError(f"{value!r} is larger than Kubernetes allows (at most 9.2e18)")
    return number


def parse_whole_count(value: str | int | float) -> int:
    """Parse an extended-resource count (nvidia.com/gpu): a non-negative whole number."""
    quantity = parse_quantity(value)
    if quantity < 0 or quantity != quantity.to_integral_value():
        raise QuantityError(f"expected a whole, non-negative number of devices, got {value!r}")
    return int(quantity)
