"""A window far behind is accounted a chunk of history at a time (services/planning.py).

Times are written out by hand: 2026-11-01T00:00Z is 1,793,491,200 s since the epoch
(20,758 days x 86,400), on every grid used here (60 s, an hour, a day).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from costgov.services.planning import MAX_CATCHUP, chunk_end, next_chunk, plan

NOV1 = datetime(2026, 11, 1, tzinfo=UTC)
assert NOV1.timestamp() == 1_793_491_200
HOUR, DAY = 3600, 86400


def test_a_window_within_one_chunk_ends_now() -> None:
    now = NOV1 + timedelta(days=3)
    assert chunk_end(now - timedelta(hours=23), now, DAY) == now
    assert chunk_end(now - timedelta(days=1), now, DAY) == now  # exactly one chunk
    assert chunk_end(NOV1, now, None) == now  # no chunking: all of it


def test_a_window_further_back_ends_on_the_chunk_grid() -> None:
    now = NOV1 + timedelta(days=14, hours=12)
    # from the month's start: the first whole day
    assert chunk_end(NOV1, now, DAY) == NOV1 + timedelta(days=1)
    # a budget created at 09:17 on the 3rd: to midnight, so that it meets the others there
    created = NOV1 + timedelta(days=2, hours=9, minutes=17)
    assert chunk_end(created, now, DAY) == NOV1 + timedelta(days=3)


def test_windows_behind_query_their_chunk_at_its_end_and_the_steady_one_now() -> None:
    now = NOV1 + timedelta(days=14, hours=12, seconds=30)
    cycle = now.replace(second=0)
    windows = {"steady": cycle - timedelta(minutes=1), "month": NOV1}
    p = plan(now, windows, 300, 60, unit_costs=False, chunk=DAY)
    assert p.accounted_to == cycle
    assert p.ends == {"steady": cycle, "month": NOV1 + timedelta(days=1)}
    assert p.spans == {"steady": 60, "month": DAY}
    assert p.catching_up == {"month"}
    assert p.rate_window == "steady"
    for name in ("hours:month", "util:month", "owners:month", "nodes:month"):
        assert p.times[name] == NOV1 + timedelta(days=1)
        assert p.owner[name] == "month"
        assert "[86399s:60s]" in p.exprs[name] or "[86400s]" in p.exprs[name]
    assert p.times["hours:steady"] == cycle and p.owner["hours:steady"] == ""
    assert p.times["owners"] == now and p.owner["owners"] == ""
    # the cycle's own node and owner queries look back over the steady windows only (the
    # 300 s interval), not over a month of history
    assert "[300s]" in p.exprs["owners"] and "[300s]" in p.exprs["nodes"]
    # nodes, owners, utilisation, the steady window's samples; four for the chunk
    assert len(p.exprs) == 4 + 4


def test_at_most_two_windows_catch_up_per_cycle_the_oldest_first() -> None:
    now = NOV1 + timedelta(days=10)
    windows = {
        "newest": NOV1 + timedelta(days=6),
        "oldest": NOV1,
        "middle": NOV1 + timedelta(days=3),
    }
    p = plan(now, windows, 300, 60, unit_costs=False, chunk=DAY)
    assert MAX_CATCHUP == 2
    assert p.catching_up == {"oldest", "middle"}
    assert set(p.deferred) == {"newest"}
    assert "older windows" in p.deferred["newest"]
    assert "hours:newest" not in p.exprs
    assert len(p.exprs) <= 15  # issue #9: at most 15 queries per cycle (3 + 2 x 4 + 3 unit)


def test_a_chunk_not_on_the_step_grid_is_rounded_down_to_it() -> None:
    now = NOV1 + timedelta(days=1)
    p = plan(now, {"w": NOV1}, 300, 60, unit_costs=False, chunk=3601)
    assert p.ends["w"] == NOV1 + timedelta(hours=1)  # a 3,600 s chunk


def test_next_chunk_halves_after_a_failure_and_never_goes_below_a_step() -> None:
    assert next_chunk(HOUR, None, True, timeout=10, step=60, most=DAY) == 1800
    assert next_chunk(60, None, True, timeout=10, step=60, most=DAY) == 60


def test_next_chunk_grows_towards_half_the_timeout_and_no_further_than_most() -> None:
    # an hour answered in 2 s: 5 s would fit 2.5 hours, within the 4x growth
    assert next_chunk(HOUR, 2, False, timeout=10, step=60, most=DAY) == 150 * 60
    # answered in 0.01 s: 500 hours would fit; growth stops at 4x, then at `most`
    assert next_chunk(HOUR, 0.01, False, timeout=10, step=60, most=DAY) == 4 * HOUR
    assert next_chunk(16 * HOUR, 0.01, False, timeout=10, step=60, most=DAY) == DAY
    # slower than half the timeout: smaller, 3,600 x 5/8 = 2,250 s, down to the minute grid
    assert next_chunk(HOUR, 8, False, timeout=10, step=60, most=DAY) == 37 * 60
    # nothing caught up this cycle: unchanged
    assert next_chunk(HOUR, None, False, timeout=10, step=60, most=DAY) == HOUR


@settings(deadline=None)
@given(
    start=st.integers(0, 90 * DAY),
    length=st.integers(1, 30 * DAY),
    chunk=st.sampled_from([60, 900, HOUR, 6 * HOUR, DAY, 7 * DAY]),
)
def test_chunks_partition_any_window_without_gap_or_overlap(
    start: int, length: int, chunk: int
) -> None:
    """Following the cursor from chunk to chunk covers [start, to] exactly, every chunk
    at most `chunk` long and each (but the last) ending on the chunk grid."""
    begin = NOV1 + timedelta(seconds=start // 60 * 60)
    if chunk == 60:
        length = length % (2 * DAY)  # a minute's chunks over days: enough, and quick
    to = begin + timedelta(seconds=length // 60 * 60 + 60)
    cursor, chunks = begin, 0
    while cursor < to:
        end = chunk_end(cursor, to, chunk)
        assert cursor < end <= to
        assert (end - cursor).total_seconds() <= chunk
        assert end == to or int(end.timestamp()) % chunk == 0
        cursor, chunks = end, chunks + 1
    assert cursor == to
    assert chunks <= length // chunk + 3


def test_pod_names_reach_a_query_only_as_kubernetes_names() -> None:
    """Found by review: pod labels come from Prometheus; a quote in one broke the query
    (the cycle failed) or, as `zz",namespace="none`, narrowed it to nothing ($0)."""
    import pytest

    from costgov.adapters.promql import gpu_samples_of

    expr = gpu_samples_of({"llama.sts-0", "worker-1"}, 3600, 60)
    # "." escaped for the regex, and that backslash for the PromQL string
    assert 'pod=~"llama\\\\.sts-0|worker-1"' in expr
    for hostile in ('evil"pod', 'zz",namespace="none', "a\nb", "Upper", "x" * 254):
        with pytest.raises(ValueError, match="not a Kubernetes pod name"):
            gpu_samples_of({hostile}, 3600, 60)


def test_the_windows_behind_gauge_keeps_its_value_through_a_failed_cycle() -> None:
    from costgov.adapters.prometheus import PrometheusSource
    from costgov.catalog import load_catalog
    from costgov.services.accounting import Snapshot, WindowSpend
    from costgov.services.runtime import Runtime
    from costgov.settings import Settings

    settings = Settings()
    runtime = Runtime(settings=settings, catalog=load_catalog(None),
                      source=PrometheusSource(settings), kube=None)  # fmt: skip
    now = NOV1 + timedelta(days=13)
    runtime._measured(Snapshot(now, {}, (), {}, {}, {}, {}, 300, {}, 4, accounted_to=now), 1.0, 2)
    gauge = runtime.metrics.registry.get_sample_value("costgov_accounting_windows_behind")
    assert gauge == 2  # two windows counted in the background
    runtime._measured(Snapshot(now, {}, (), {}, {}, {}, {}, 300, {}, 4, error="down"), 1.0, 0)
    assert runtime.metrics.registry.get_sample_value("costgov_accounting_windows_behind") == 2
    # of two windows counted in the background, the one this snapshot brings current is not
    # behind; the one still short of the cycle's end is
    current = WindowSpend(NOV1, now, ())
    short = WindowSpend(NOV1 + timedelta(days=1), now - timedelta(hours=1), ())
    snap = Snapshot(now, {"a": current, "b": short}, (), {}, {}, {}, {}, 300, {}, 4,
                    accounted_to=now)  # fmt: skip
    far = {"a": NOV1, "b": NOV1 + timedelta(days=1), "c": NOV1}  # c: nothing counted yet
    assert runtime._behind(snap, far) == 2
    runtime.leadership.lose("another replica took the Lease")
    assert runtime.metrics.registry.get_sample_value("costgov_accounting_windows_behind") == 0


def test_a_chunk_is_at_most_the_setting_and_never_more_than_2880_points() -> None:
    from costgov.adapters.prometheus import PrometheusSource
    from costgov.catalog import load_catalog
    from costgov.services.runtime import Runtime
    from costgov.settings import Settings

    # at most the setting (a day by default), never more than 2,880 points at the step
    # (2 days at 60 s, 12 hours at 15 s); counting starts at an hour, or less
    for setting, step, most in ((DAY, 60, DAY), (7 * DAY, 15, 2880 * 15), (1800, 60, 1800)):
        settings = Settings(catchup_chunk_seconds=setting, sample_step_seconds=step)
        runtime = Runtime(settings=settings, catalog=load_catalog(None),
                          source=PrometheusSource(settings), kube=None)  # fmt: skip
        assert runtime.catchup._most == most
        assert runtime.catchup.chunk == min(HOUR, most)


def test_a_steady_window_of_up_to_four_points_is_asked_point_by_point() -> None:
    """15 s steps: 60 s is 4 points (point by point, its last point is now), 75 s is 5
    (the sums form, and the GPUs held now asked apart)."""
    now = NOV1 + timedelta(days=3, seconds=7)
    for span, pointwise in ((15, True), (30, True), (60, True), (75, False), (600, False)):
        p = plan(now, {"w": now - timedelta(seconds=span + 7)}, 300, 15, unit_costs=False)
        assert p.spans == {"w": span}
        assert (p.points == {"hours:w"}) is pointwise
        assert (p.rate_window == "w") is pointwise
        assert ("now" not in p.exprs) is pointwise
        if pointwise:  # a range vector of the allocation join over the window's points
            assert p.exprs["hours:w"].endswith(f"[{span - 1}s:15s]")
            assert not p.exprs["hours:w"].startswith("sum_over_time")


def test_the_shortest_of_several_pointwise_windows_gives_now() -> None:
    now = NOV1 + timedelta(days=3)
    windows = {"b": now - timedelta(seconds=60), "a": now - timedelta(seconds=30)}
    p = plan(now, windows, 300, 15, unit_costs=False)
    assert p.points == {"hours:a", "hours:b"} and p.rate_window == "a"


def test_owners_left_for_later_when_the_api_knows_its_pods() -> None:
    now = NOV1 + timedelta(days=3)
    windows = {"w": now - timedelta(minutes=1), "month": NOV1}
    p = plan(now, windows, 300, 60, unit_costs=False, chunk=DAY, owners=False)
    assert "owners" not in p.exprs and p.owners_later
    assert "owners:month" in p.exprs  # a chunk of history still asks for its own
    q = plan(now, windows, 300, 60, unit_costs=False, chunk=DAY)
    assert "owners" in q.exprs and not q.owners_later
