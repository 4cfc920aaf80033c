"""Stretches of history counted apart, added into one window (services/catching_up.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costgov.domain.spend import PodCost, PodUsage, combine_costs
from costgov.services.accounting import WindowSpend
from costgov.services.catching_up import Progress, extend

T0 = datetime(2026, 11, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _line(pod: str, node: str, gpu_s: int, cost: str | None, why: str | None = None) -> PodCost:
    return PodCost(
        PodUsage("ml", pod, node, Decimal(gpu_s)), None if cost is None else Decimal(cost), why
    )


def test_a_pod_on_one_node_is_one_line_its_seconds_and_dollars_added() -> None:
    # p5.48xlarge $55.04/h for 8 GPUs: one GPU-hour is 55.04 / 8 = 6.88; two hours 13.76
    merged = combine_costs([_line("a", "n1", 3600, "6.88"), _line("a", "n1", 3600, "6.88")])
    assert merged == (_line("a", "n1", 7200, "13.76"),)


def test_other_nodes_and_unpriced_time_stay_apart() -> None:
    lines = [
        _line("a", "n1", 3600, "6.88"),
        _line("a", "n2", 1800, "3.44"),  # moved to another node
        _line("a", "n1", 600, None, "node n1 has no labels in Prometheus"),
        _line("a", "n1", 60, None, "node n1: no price for p9.huge"),
        _line("b", "n1", 3600, "6.88"),
    ]
    merged = {(c.usage.pod, c.usage.node, c.cost is None): c for c in combine_costs(lines)}
    assert len(merged) == 4
    # the unpriced 600 + 60 s are one line, with the latest reason, and no dollars
    unpriced = merged[("a", "n1", True)]
    assert (
        unpriced.usage.gpu_seconds == 660 and unpriced.unpriced == "node n1: no price for p9.huge"
    )
    assert merged[("a", "n1", False)].cost == Decimal("6.88")
    assert merged[("a", "n2", False)].cost == Decimal("3.44")


def test_progress_adds_chunks_and_weights_utilisation_by_gpu_time() -> None:
    p = Progress(T0, T0)
    # first hour: pod a holds 1 GPU at 20 %; second hour: 3 GPUs at 60 %
    extend(p, WindowSpend(T0, T0 + H, (_line("a", "n1", 3600, "6.88"),), {("ml", "a"): 20.0}), {})
    second = WindowSpend(T0 + H, T0 + 2 * H, (_line("a", "n1", 3 * 3600, "20.64"),),
                         {("ml", "a"): 60.0, ("ml", "b"): 10.0})  # fmt: skip
    extend(p, second, {("ml", "a"): ("Job", "train")})
    assert p.spend is not None and (p.spend.start, p.spend.end, p.end) == (
        T0,
        T0 + 2 * H,
        T0 + 2 * H,
    )
    (line,) = p.spend.pods
    assert (line.usage.gpu_seconds, line.cost) == (4 * 3600, Decimal("27.52"))  # 6.88 + 20.64
    # (20 x 1 + 60 x 3) / 4 GPU-h = 50 %; b held no GPU time in any line: its own mean
    assert p.spend.utilization == {("ml", "a"): 50.0, ("ml", "b"): 10.0}
    assert p.owners == {("ml", "a"): ("Job", "train")}
