"""Long windows are sampled more coarsely so one cycle's Prometheus work stays bounded."""

from __future__ import annotations

import pytest

from costgov.services.accounting import MAX_POINTS, window_step


@pytest.mark.parametrize(
    ("span", "step", "expected"),
    [
        (4 * 3600, 60, 60),  # 240 points: the configured step
        (2 * 86400, 60, 60),  # exactly 2,880 points
        (2 * 86400 + 60, 60, 120),  # one more point would exceed: double the step
        (30 * 86400, 60, 900),  # a month: 43,200 / 2,880 = 15 -> every 15 minutes
    ],
)
def test_window_step(span: int, step: int, expected: int) -> None:
    assert window_step(span, step) == expected
    assert span / window_step(span, step) <= MAX_POINTS
