"""The CaughtUp condition: what a kubectl user reads while past spend is counted in chunks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from costgov.services.accounting import Snapshot, WindowSpend
from costgov.services.figures import caught_up_condition, figures_as_of

NOW = datetime(2026, 11, 14, 12, 0, tzinfo=UTC)
NOV1 = datetime(2026, 11, 1, tzinfo=UTC)


def _snap(windows: dict[str, WindowSpend], lagging: dict[str, str] | None = None) -> Snapshot:
    return Snapshot(
        NOW, windows, (), {}, {}, {}, {}, 300, {}, 8, accounted_to=NOW, lagging=lagging or {}
    )


def test_a_chunk_short_of_now_says_how_far_and_that_it_is_a_lower_bound() -> None:
    snap = _snap({"w": WindowSpend(NOV1, NOV1 + timedelta(days=1), ())})
    cond = caught_up_condition(snap, "w", None, 3, NOW)
    assert cond is not None
    assert (cond.status, cond.reason, cond.observed_generation) == ("False", "CatchingUp", 3)
    # from Nov 2 00:00 to Nov 14 12:00: 12.5 days to go
    assert cond.message == (
        "catching up on past spend a chunk at a time: counted up to 2026-11-02T00:00:00Z, "
        "12.5 days of history to go; the figures so far are a lower bound"
    )
    assert figures_as_of(snap, NOV1 + timedelta(days=1)) == NOV1 + timedelta(days=1)


def test_a_window_held_back_says_why_and_where_its_figures_stand() -> None:
    why = "the chunk of history from 2026-11-01T00:00:00Z failed, retried smaller: timeout"
    snap = _snap({}, {"w": why})
    cond = caught_up_condition(snap, "w", NOV1 + timedelta(hours=30), 1, NOW)
    assert cond is not None and cond.status == "False"
    # cursor Nov 2 06:00 -> Nov 14 12:00 is 12 days 6 hours: 12.25 days, shown to one decimal
    assert "counted up to 2026-11-02T06:00:00Z, 12.2 days of history to go" in cond.message
    assert cond.message.endswith(f"({why})")
    fresh = caught_up_condition(snap, "w", None, 1, NOW)
    assert fresh is not None and "nothing counted yet" in fresh.message


def test_hours_are_shown_under_two_days_and_current_figures_are_true() -> None:
    snap = _snap({"w": WindowSpend(NOW - timedelta(hours=9), NOW - timedelta(hours=3), ())})
    cond = caught_up_condition(snap, "w", None, 1, NOW)
    assert cond is not None and "3.0 h of history to go" in cond.message
    now = _snap({"w": WindowSpend(NOW - timedelta(minutes=1), NOW, ())})
    done = caught_up_condition(now, "w", None, 1, NOW)
    assert done is not None
    assert (done.status, done.reason) == ("True", "Current")
    assert done.message == "spend counted up to 2026-11-14T12:00:00Z"
    assert figures_as_of(now, NOW) == NOW


def test_nothing_is_said_of_a_window_the_snapshot_did_not_ask_for_or_a_failed_cycle() -> None:
    assert caught_up_condition(_snap({}), "w", None, 1, NOW) is None
    failed = Snapshot(NOW, {}, (), {}, {}, {}, {}, 300, {}, 4, error="down", accounted_to=NOW)
    assert caught_up_condition(failed, "w", NOV1, 1, NOW) is None
