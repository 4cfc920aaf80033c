"""Spend arithmetic: unit costs over one span, and never from a partial cost."""

from __future__ import annotations

from decimal import Decimal

from costgov.domain.spend import Totals, unit_cost


def test_dollars_per_million_tokens() -> None:
    # $0.40 over a span in which 90,000 tokens were counted: 0.40 / 90,000 x 1e6 = 4.444...
    per = unit_cost(Totals(Decimal("0.40"), Decimal(1), ()), 90_000, 1_000_000)
    assert per is not None and round(per, 4) == Decimal("4.4444")


def test_no_unit_cost_without_units_or_from_a_lower_bound() -> None:
    priced = Totals(Decimal("0.40"), Decimal(1), ())
    assert unit_cost(priced, 0, 1_000_000) is None
    partial = Totals(Decimal("0.40"), Decimal(2), ("ml/x: node n has no labels",))
    assert unit_cost(partial, 90_000, 1_000_000) is None
