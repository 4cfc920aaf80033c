"""Spend anomalies against a baseline, by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costgov.domain.anomalies import MIN_POINTS, anomalies_of, baseline, judge

D = Decimal
END = datetime(2026, 11, 30, 10, tzinfo=UTC)  # a Monday, 10:00
HOUR = timedelta(hours=1)


def test_two_weeks_of_history_compare_the_same_hour_of_the_week() -> None:
    # Mondays 09-10 spend $100 (a busy hour); every other hour $5. Two earlier Mondays.
    history = {END - k * HOUR: D(5) for k in range(1, 15 * 24)}
    for weeks in (1, 2):
        history[END - weeks * timedelta(days=7)] = D(100) if weeks == 1 else D(120)
    base = baseline(history, END)
    assert base is not None and base.method == "hour-of-week"
    assert (base.mean, base.std, base.points) == (D("110.0"), D("10.0"), 2)  # (100+120)/2, pstdev
    # $130 this Monday: threshold max(110 + 2 x 10, 110 + 10) = 130: not over it
    assert judge(D(130), base, sigma=D(2), minimum=D(10)) == (False, D("130.0"))
    assert judge(D("130.01"), base, sigma=D(2), minimum=D(10))[0]


def test_less_history_is_a_rolling_baseline_and_too_little_is_none() -> None:
    few = {END - k * HOUR: D(k) for k in range(1, MIN_POINTS)}  # 5 hours: 1..5
    assert baseline(few, END) is None
    six = {END - k * HOUR: D(k) for k in range(1, MIN_POINTS + 1)}  # 1..6: mean 3.5
    base = baseline(six, END)
    assert base is not None and base.method == "rolling" and base.mean == D("3.5")
    # pstdev of 1..6 = sqrt(35/12) = 1.7078...
    assert abs(base.std - D("1.707825127659933")) < D("1e-12")


def test_a_flat_quiet_subject_needs_the_minimum_dollars() -> None:
    quiet = {END - k * HOUR: D("0.02") for k in range(1, 30)}
    quiet[END] = D("0.50")  # 25x its usual, but $0.48 over it: not worth an alert at $10
    assert anomalies_of({"team/x": quiet}, END, {}, {}, sigma=D(2), minimum=D(10)) == []
    quiet[END] = D("10.03")  # $10.01 over: it is
    [found] = anomalies_of({"team/x": quiet}, END, {"team/x": "model m"}, {}, sigma=D(2),
                           minimum=D(10))  # fmt: skip
    assert found.driver == "model m" and found.threshold == D("10.02")
    assert found.message.startswith("team/x: $10.03 in the hour to 2026-11-30 10:00 UTC")


def test_the_hour_judged_is_never_part_of_its_own_baseline() -> None:
    history = {END - k * HOUR: D(1) for k in range(0, 10)}
    history[END] = D(1000)
    base = baseline(history, END)
    assert base is not None and base.mean == D("1.0") and base.points == 9
