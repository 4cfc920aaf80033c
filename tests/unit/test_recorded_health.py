"""What the catch-up says when this release's recording rules are evaluated but a rule
keeps failing (services/recorded_health.py). The markers are written as Prometheus writes
them: one series per rule, a sample at each evaluation it recorded, every rule of an
evaluation at the same timestamp (35 min 2.804 s past the hour here)."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from costgov.adapters.prometheus import PrometheusSource, RangeSeries
from costgov.services import recorded_health
from costgov.services.recorded import evaluations

from .test_recorded_stretch import NAMES, T0, H, Markers, _markers

HOURS = [T0 + h * H + 2102.804 for h in range(1, 9)]  # 02:35:02.804 on 2026-11-30, ...
SUM = "costgov:gpu_util_sum"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorded_health, "_FAILING", {})


def _said(
    series: list[RangeSeries], caplog: pytest.LogCaptureFixture, warnings: tuple[str, ...] = ()
) -> list[str]:
    """What the operator says, reading these markers twice (two chunks' worth)."""
    caplog.clear()
    for _ in range(2):
        fake = cast(PrometheusSource, Markers(series, warnings))
        asyncio.run(evaluations(fake, T0, T0 + 9 * H, 60))
    return [r.getMessage() for r in caplog.records if "recorded all 5 rules" in r.getMessage()]


def _without(name: str, hours: list[float], missing: set[int]) -> list[RangeSeries]:
    """Every rule at each of `hours`; `name` not at the indexes in `missing`."""
    others = [n for n in NAMES if n != name]
    kept = [t for i, t in enumerate(hours) if i not in missing]
    return [*_markers(tuple(others), "3600", hours), *_markers((name,), "3600", kept)]


def test_a_rule_failing_at_every_evaluation_is_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    told = _said(_without(SUM, HOURS[:4], {0, 1, 2, 3}), caplog)
    assert len(told) == 1
    # the latest (04:35 here, 4 evaluations) left out: it may be half written
    assert told[0].startswith(
        "recording rule group costgov.catchup.v1.60s.3600s: 0 of its 3 evaluations from "
        "2026-11-30 02:35:02Z to 2026-11-30 04:35:02Z recorded all 5 rules "
        "(costgov:gpu_util_sum 0/3)."
    )
    assert "prometheus_rule_evaluation_failures_total" in told[0]


def test_too_few_evaluations_or_one_half_written_say_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # right after install: 3 evaluations, the rule failing at each, 2 counted: too few
    assert _said(_without(SUM, HOURS[:3], {0, 1, 2}), caplog) == []
    # healthy rules, the latest evaluation read while Prometheus writes its rules
    assert _said(_without(SUM, HOURS, {7}), caplog) == []
    # one evaluation in 7 failing (Prometheus restarting): not a rule that cannot run
    assert _said(_without(SUM, HOURS, {2}), caplog) == []


def test_a_rule_failing_at_most_evaluations_is_said_though_some_are_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    series = _without(SUM, HOURS, {0, 1, 3, 4, 6})  # recorded at 2 of the 7 before the last
    told = _said(series, caplog)
    assert len(told) == 1 and "2 of its 7 evaluations" in told[0] and f"{SUM} 2/7" in told[0]
    found = asyncio.run(evaluations(cast(PrometheusSource, Markers(series)), T0, T0 + 9 * H, 60))
    assert found is not None and len(found[1]) == 3  # hours 2, 5 and 7 read from the rules


def test_every_rule_recording_sometimes_never_all_at_once_names_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    odd = [*_markers(NAMES[:3], "3600", HOURS[::2]), *_markers(NAMES[3:], "3600", HOURS[1::2])]
    told = _said(odd, caplog)
    assert len(told) == 1 and "0 of its 7 evaluations" in told[0]
    assert "costgov:pod_gpu_samples 4/7" in told[0] and "costgov:pod_owner 3/7" in told[0]


def test_said_again_after_the_rules_recovered_and_broke_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = _without(SUM, HOURS, set(range(8)))
    assert len(_said(broken, caplog)) == 1
    assert _said(broken, caplog) == []  # the same failure: once
    assert _said(_without(SUM, HOURS, set()), caplog) == []  # recovered
    assert len(_said(broken, caplog)) == 1  # broke again: said again
    other = _without("costgov:pod_owner", HOURS, set(range(8)))
    assert len(_said(other, caplog)) == 1  # another rule failing: said too


def test_other_versions_intervals_and_partial_answers_are_not_this_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = _without(SUM, HOURS, set(range(8)))
    later = [RangeSeries({**s.labels, "costgov_rules": "2"}, s.points) for s in broken]
    assert _said(later, caplog) == []
    for interval in ("90", "²", "03600", "9" * 5000):  # not a multiple of 60 s, not ASCII
        odd = [RangeSeries({**s.labels, "interval": interval}, s.points) for s in broken]
        assert _said(odd, caplog) == []
    # Prometheus said its answer may be partial (a store down behind Thanos)
    assert _said(broken, caplog, ("partial response: store unavailable",)) == []
