"""Quantities, money and durations: exact, strict, and property-tested."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costgov.api.fields import format_duration, parse_duration, parse_money
from costgov.domain.money import cents, percent, usd
from costgov.domain.quantities import QuantityError, parse_quantity, parse_whole_count


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", Decimal(1)),
        ("500m", Decimal("0.5")),
        ("16Gi", Decimal(16 * 2**30)),
        ("2k", Decimal(2000)),
        ("1.5e3", Decimal(1500)),
        ("0.1", Decimal("0.1")),
        ("+3", Decimal(3)),
        (8, Decimal(8)),
    ],
)
def test_quantities_parse_exactly(text: str | int, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "5 Gi", "Gi", "1e", True])
def test_malformed_quantities_are_refused(text: str) -> None:
    with pytest.raises(QuantityError, match="expected a quantity"):
        parse_quantity(text)


@pytest.mark.parametrize("text", ["500m", "-1", "1.5"])
def test_device_counts_must_be_whole(text: str) -> None:
    with pytest.raises(QuantityError, match="whole, non-negative"):
        parse_whole_count(text)


@given(st.integers(min_value=0, max_value=10**12))
def test_integers_roundtrip_through_every_binary_suffix(n: int) -> None:
    # Kubernetes keeps quantities within int64 (9,223,372,036,854,775,807); above, an error.
    for suffix, factor in (("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30)):
        if n * factor <= 2**63 - 1:
            assert parse_quantity(f"{n}{suffix}") == n * factor
        else:
            with pytest.raises(QuantityError, match="larger than Kubernetes allows"):
                parse_quantity(f"{n}{suffix}")


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(["m", "", "k", "M", "G"]))
def test_decimal_suffixes_scale_by_powers_of_ten(n: int, suffix: str) -> None:
    scale = {
        "m": Decimal("0.001"),
        "": Decimal(1),
        "k": Decimal(1000),
        "M": Decimal(10**6),
        "G": Decimal(10**9),
    }[suffix]
    assert parse_quantity(f"{n}{suffix}") == n * scale


@given(st.lists(st.decimals(min_value=0, max_value=10**6, places=2), max_size=200))
def test_money_sums_have_no_float_drift(amounts: list[Decimal]) -> None:
    # Sum as strings through the parser, the way amounts arrive from YAML.
    total = sum((parse_money(format(a, "f")) for a in amounts), Decimal(0))
    assert total == sum(amounts, Decimal(0))
    assert cents(total) == total  # cents in, cents out: nothing to round


def test_tenths_add_up_exactly_unlike_floats() -> None:
    # 0.1 + 0.2 != 0.3 in binary floating point; with Decimal money it does.
    assert parse_money("0.1") + parse_money("0.2") == parse_money("0.3")


@pytest.mark.parametrize(
    ("value", "expected"), [(1500, "1500"), ("1500.50", "1500.50"), ("$1,200", "1200"), (7.0, "7")]
)
def test_money_accepts_integers_and_decimal_strings(value: object, expected: str) -> None:
    assert parse_money(value) == Decimal(expected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-5, "non-negative"),
        ("12.345", "at most 2 decimals"),
        (0.1, "quoted string"),
        (True, "boolean"),
        ("ten", "non-negative dollar amount"),
    ],
)
def test_bad_money_says_what_is_expected(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_money(value)


def test_usd_formats_for_people_and_rounds_half_up() -> None:
    assert usd(Decimal("3962.88")) == "$3,962.88"
    assert usd(Decimal("0.005")) == "$0.01"
    assert usd(Decimal("-2.5")) == "-$2.50"
    assert percent(Decimal(1), Decimal(3)) == Decimal("33.3")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("72h", 259200), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), (3600, 3600), ("600", 600)],
)
def test_durations_parse_go_style_or_seconds(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["3 days", "-1h", "h", "", "1d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**7))
def test_durations_roundtrip_through_their_go_spelling(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
