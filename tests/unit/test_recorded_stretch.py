"""Which stretch of history the catch-up reads from recording rules (services/recorded.py).

A rule evaluated at t (unix ms) covers the sample points on the step grid in (t - interval, t].
Times below are written as an hour's offset plus the evaluation's own offset (Prometheus
evaluates a group at a hashed offset into its interval: 35 min 2.804 s in one real run)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costgov.adapters.prometheus import MetricsError, PrometheusSource, RangeSeries
from costgov.services.recorded import Run, evaluations, recorded_plan, stretch

H = 3600
T0 = 1_796_000_400  # a whole hour (unix seconds)
OFFSET_MS = 2_102_804  # 35 min 2.804 s


NAMES = (  # the records charts/costgov/files/catchup-rules.yaml names, as written there
    "costgov:pod_gpu_samples",
    "costgov:gpu_util_sum",
    "costgov:gpu_util_count",
    "costgov:pod_owner",
    "costgov:node_labels",
)


def ev(hour: int, offset_ms: int = OFFSET_MS) -> int:
    return (T0 + hour * H) * 1000 + offset_ms


def test_no_rules_or_rules_of_a_shorter_interval_than_the_step_are_not_read() -> None:
    assert stretch([], H, T0, T0 + 4 * H, 60, 86400) is None
    assert stretch([ev(1)], 30, T0, T0 + 4 * H, 60, 86400) is None


def test_the_part_before_the_first_evaluations_reach_is_counted_raw_first() -> None:
    # ev(1) covers (T0 + 35 min 2.804 s, ev(1)]: raw up to the grid time before that reach,
    # T0 + 35 min (2,100 s); ev(0)'s reach starts before T0, so it is not read
    evals = [ev(0), ev(1), ev(2), ev(3)]
    assert stretch(evals, H, T0, T0 + 4 * H, 60, 86400) == T0 + 2100
    # from there, ev(1)..ev(3) in one run
    assert stretch(evals, H, T0 + 2100, T0 + 4 * H, 60, 86400) == Run(ev(1), ev(3), H)
    # after ev(3) (grid T0 + 3 h 35 min), nothing covers: raw to the end
    assert stretch(evals, H, T0 + 3 * H + 2100, T0 + 4 * H, 60, 86400) is None


def test_evaluations_on_the_grid_start_a_run_at_once() -> None:
    # promtool with an aligned start evaluates on whole hours: ev covers (T0, T0 + 1 h]
    evals = [ev(h, 0) for h in range(1, 5)]
    assert stretch(evals, H, T0, T0 + 4 * H, 60, 86400) == Run(ev(1, 0), ev(4, 0), H)


def test_a_missed_evaluation_ends_the_run_and_its_hour_is_counted_raw() -> None:
    evals = [ev(1), ev(2), ev(4), ev(5)]  # ev(3) missed: (ev(2), ev(3)] is raw
    point = T0 + 2100
    assert stretch(evals, H, point, T0 + 6 * H, 60, 86400) == Run(ev(1), ev(2), H)
    after = T0 + 2 * H + 2100
    assert stretch(evals, H, after, T0 + 6 * H, 60, 86400) == T0 + 3 * H + 2100
    assert stretch(evals, H, T0 + 3 * H + 2100, T0 + 6 * H, 60, 86400) == Run(ev(4), ev(5), H)


def test_a_run_reaches_at_most_most_seconds_but_always_its_first_evaluation() -> None:
    evals = [ev(h) for h in range(1, 30)]
    point = T0 + 2100
    assert stretch(evals, H, point, T0 + 30 * H, 60, 5 * H) == Run(ev(1), ev(5), H)
    assert stretch(evals, H, point, T0 + 30 * H, 60, 60) == Run(ev(1), ev(1), H)


def test_evaluations_past_the_end_are_left_for_later_and_a_millisecond_off_is_a_gap() -> None:
    """Prometheus evaluates a group exactly an interval apart (milliseconds and all)."""
    evals = [ev(1), ev(2), ev(3)]
    assert stretch(evals, H, T0 + 2100, T0 + 3 * H, 60, 86400) == Run(ev(1), ev(2), H)
    late = [ev(1), ev(2) + 1]
    assert stretch(late, H, T0 + 2100, T0 + 3 * H, 60, 86400) == Run(ev(1), ev(1), H)


def test_an_evaluation_reaching_a_millisecond_before_the_point_is_not_read() -> None:
    """It covers the point itself, which the chunk before counted."""
    evals = [(T0 + H) * 1000 - 1]
    assert stretch(evals, H, T0, T0 + 2 * H, 60, 86400) is None


@st.composite
def windows(draw: st.DrawFn) -> tuple[list[int], list[int], int, int, int]:
    """Evaluations over 48 h at an offset (often in a minute's last second, where a
    millisecond off loses or repeats a point), some missing; sometimes a second set at
    another offset (the same rules loaded from two files, a backfill beside the live
    rules); and a window: anywhere, or starting in the minute an evaluation's reach starts."""
    minute = draw(st.integers(0, 59))
    ms = draw(st.sampled_from([0, 1, 500, 999, 59_000, 59_001, 59_998, 59_999, 30_000]))
    offset = draw(st.one_of(st.integers(0, H * 1000 - 1), st.just(minute * 60_000 + ms)))
    missing = draw(st.sets(st.integers(0, 47), max_size=20))
    evals = [ev(h, offset) for h in range(48) if h not in missing]
    other: list[int] = []
    if draw(st.booleans()):
        second = draw(st.one_of(st.integers(0, H * 1000 - 1), st.just(offset - 1)))
        hours = draw(st.sets(st.integers(0, 47), max_size=48))
        other = [ev(h, second) for h in hours]
    near = offset // 60_000 + draw(st.integers(-1, 1)) + draw(st.integers(0, 46)) * 60
    start = draw(st.one_of(st.integers(0, 47 * 60), st.just(max(0, near))))
    length = draw(st.integers(1, 48 * 60))
    return evals, other, start, length, draw(st.sampled_from([60, 3600, 7 * 3600, 86400]))


def _readable(t: int) -> bool:
    return (t + 1) % 60_000 != 0  # its hour's first point is not a millisecond after a grid time


@settings(max_examples=500, deadline=None)
@given(windows())
def test_the_chunks_partition_the_window_point_by_point(
    drawn: tuple[list[int], list[int], int, int, int],
) -> None:
    """Whatever the evaluations, chunk after chunk counts every grid point of (point, to]
    exactly once; a recorded chunk's range holds its own evaluations and nothing else, and
    their points are exactly the chunk's; with one set of evaluations, every point an
    evaluation reaching no further back than the window covers is read from it."""
    evals, other, start, length, most = drawn
    step, every = 60, sorted(set(evals) | set(other))
    point, to = T0 + start * step, T0 + (start + length) * step
    grid = range(point - 2 * H, to + step, step)
    readable = {
        g for t in evals if t - H * 1000 >= point * 1000 and t <= to * 1000 and _readable(t)
        for g in grid if t - H * 1000 < g * 1000 <= t
    }  # fmt: skip
    seen: list[int] = []
    recorded: set[int] = set()
    while point < to:
        ahead = stretch(every, H, point, to, step, most, every)
        if isinstance(ahead, Run):
            # what `@ last` over last - first + 1 ms holds, closed (Prometheus 2) or not (3)
            held = [t for t in every if ahead.first - 1 <= t <= ahead.last]
            assert all(b - a == H * 1000 for a, b in itertools.pairwise(held))
            assert held[0] == ahead.first and all(_readable(t) for t in held)
            reach = {g for g in grid if ahead.first - H * 1000 < g * 1000 <= ahead.last}
            nxt = ahead.last // 1000 // step * step
            assert reach == set(range(point + step, nxt + step, step))
            recorded |= reach
        else:
            nxt = to if ahead is None else ahead
        assert point < nxt <= to
        seen += range(point + step, nxt + step, step)
        point = nxt
    assert seen == list(range(T0 + (start + 1) * step, to + step, step))
    assert recorded == readable or other


def test_two_sets_of_evaluations_are_read_one_hour_at_a_time_never_summed_together() -> None:
    """The same rules from two files (two offsets): a run never spans the other's samples."""
    a, b = [ev(h) for h in range(1, 6)], [ev(h, 600_000) for h in range(1, 6)]
    every = sorted(a + b)
    point = T0 + 2100  # ev(1) reaches back to T0 + 35 min 2.804 s
    assert stretch(every, H, point, T0 + 6 * H, 60, 86400, every) == Run(ev(1), ev(1), H)
    # a set evaluated every 30 min while its label says an hour: one at a time too
    half = sorted(a + [t + 1_800_000 for t in a])
    assert stretch(half, H, point, T0 + 6 * H, 60, 86400, half) == Run(ev(1), ev(1), H)
    # an evaluation between two, partly failed (some rules recorded, so not in `evaluated`)
    partial = [*a, ev(2) + 600_000]
    assert stretch(a, H, point, T0 + 6 * H, 60, 86400, partial) == Run(ev(1), ev(2), H)
    # an evaluation a millisecond before the first, partly failed (not in `evaluated`)
    assert stretch(a, H, point, T0 + 6 * H, 60, 86400, [*a, ev(1) - 1]) == T0 + H + 2100


def test_an_evaluation_a_millisecond_before_a_minute_is_read_raw() -> None:
    late = [ev(h, 59_999) for h in range(1, 4)]  # its hour starts at hh:00:59.999 + 1 ms
    assert stretch(late, H, T0 + 60, T0 + 4 * H, 60, 86400, late) == T0 + H


class Markers:
    """A Prometheus answering the markers query with these series."""

    def __init__(
        self, series: list[RangeSeries] | MetricsError, warnings: tuple[str, ...] = ()
    ) -> None:
        self.series, self.asked, self.warnings = series, "", warnings

    async def points(
        self, expr: str, at: datetime
    ) -> tuple[tuple[RangeSeries, ...], tuple[str, ...]]:
        self.asked = expr
        if isinstance(self.series, MetricsError):
            raise self.series
        return tuple(self.series), self.warnings


def _markers(names: tuple[str, ...], interval: str, times: list[float]) -> list[RangeSeries]:
    return [
        RangeSeries({"__name__": n, "costgov_rules": "1", "interval": interval, "step": "60"},
                    tuple((t, 0.0) for t in times))
        for n in names
    ]  # fmt: skip


def test_only_times_every_rule_was_evaluated_at_count() -> None:
    names = NAMES
    series = _markers(names, "3600", [T0 + 3600.5, T0 + 7200.5])
    series += _markers(names[:1], "3600", [T0 + 10800.5])  # one rule only: a failed group
    series += _markers(names[:4], "1800", [T0 + 1800.0])  # an incomplete set
    fake = Markers(series)
    found = asyncio.run(evaluations(cast(PrometheusSource, fake), T0, T0 + 4 * H, 60))
    complete = [(T0 + 3600) * 1000 + 500, (T0 + 7200) * 1000 + 500]
    assert found == (3600, complete, [*complete, (T0 + 10800) * 1000 + 500])
    assert 'step="60"' in fake.asked and "[14400000ms] @ " in fake.asked
    down = Markers(MetricsError("Prometheus did not answer within 10 s"))
    assert asyncio.run(evaluations(cast(PrometheusSource, down), T0, T0 + H, 60)) is None


def test_a_recorded_chunk_is_read_at_its_last_evaluation_and_ends_on_the_grid() -> None:
    cycle = recorded_plan(T0 + 2100, Run(ev(1), ev(3), H), 60, "history")
    end = T0 + 3 * H + 2100  # ev(3) is 35 min 2.804 s past the hour: down to the minute
    assert cycle.spans == {"history": end - T0 - 2100}
    assert cycle.steps == {"history": 60}
    # ev(1)..ev(3), 2 h apart, and a millisecond before ev(1) (Prometheus 3's ranges are
    # open at the start; `stretch` leaves no other sample there)
    assert all("[7200001ms] @ 1796013302.804" in e for e in cycle.exprs.values())
    with pytest.raises(ValueError, match="no recorded chunk"):
        recorded_plan(T0, Run(ev(1), ev(60), H), 60, "history")  # beyond 2,880 points
