"""Spend anomalies against a baseline, by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costgov.api import CostPolicy, CostPolicyStatus
from costgov.domain.anomalies import MIN_POINTS, Anomaly, anomalies_of, baseline, judge
from costgov.services.anomalies import AnomalyScan, _Series, with_anomalies
from costgov.services.inventory import Inventory
from costgov.services.outcomes import Outcome

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


def _policy() -> CostPolicy:
    return CostPolicy.model_validate({
        "apiVersion": "costgov.io/v1alpha1", "kind": "CostPolicy",
        "metadata": {"name": "p", "generation": 1}, "spec": {"mode": "audit"},
    })  # fmt: skip


def _scan_at(hour_end: datetime) -> AnomalyScan:
    base = baseline({hour_end - k * HOUR: D(1) for k in range(1, 10)}, hour_end)
    assert base is not None
    spike = Anomaly("namespace/ml", "gpu", hour_end, D(50), base, D(11), "workload ml/x")
    return AnomalyScan(hour_end, (spike,), subjects=1)


def test_an_episode_is_announced_once_and_the_condition_stays_until_it_ends() -> None:
    inv, announced = Inventory(namespaces={"ml": {}}), set()  # type: ignore[var-annotated]
    events, statuses = [], []
    outcome = Outcome(CostPolicyStatus())
    for hour in range(3):  # three anomalous hours in a row, then a quiet one
        outcome = with_anomalies(_policy(), Outcome(outcome.status), _scan_at(END + hour * HOUR),
                                 inv, excluded=frozenset(), now=END, announced=announced)  # fmt: skip
        events += outcome.events
        statuses.append({c.type: c.status for c in outcome.status.conditions})
    quiet = AnomalyScan(END + 3 * HOUR, (), subjects=1)
    outcome = with_anomalies(_policy(), Outcome(outcome.status), quiet, inv,
                             excluded=frozenset(), now=END, announced=announced)  # fmt: skip
    assert len(events) == 1 and events[0].reason == "SpendAnomaly"
    assert [s["SpendAnomaly"] for s in statuses] == ["True", "True", "True"]
    assert {c.type: c.status for c in outcome.status.conditions}["SpendAnomaly"] == "False"
    # a policy that never had one gets none
    fresh = with_anomalies(_policy(), Outcome(CostPolicyStatus()), quiet, inv,
                           excluded=frozenset(), now=END, announced=set())  # fmt: skip
    assert fresh.status.conditions == []


def test_quiet_hours_count_as_zero_so_a_night_runaway_is_seen() -> None:
    # $50 an hour in working hours (09-17 UTC) for 15 days, nothing at night; then $45 at
    # 03:00. Counted as $0, the nights before are this hour's baseline (the same hour a week
    # and two weeks ago: $0 +/- $0, threshold max(0, 0 + 10) = $10); left out, there would be
    # no same-hour points and the rolling mean of busy hours ($50) would hide it.
    night = END.replace(hour=3) + timedelta(days=15)
    start = night - timedelta(days=15)
    series = _Series()
    at = start
    while at < night:
        if 9 <= at.hour < 17:
            series.add("team/x", at, D(50), "model m", "api")
        at += HOUR
    series.add("team/x", night, D(45), "model m", "api")
    series.fill(start, night)
    [found] = anomalies_of(series.hourly, night, {"team/x": "model m"}, {}, sigma=D(2),
                           minimum=D(10))  # fmt: skip
    assert (found.spent, found.baseline.method, found.threshold) == (D(45), "hour-of-week", D(10))
