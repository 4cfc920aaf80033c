"""costgov_spend_dollars_total: each interval added once, in order, never a window twice.

Figures by hand: a p5.48xlarge is $55.04/h (8 GPUs); a pod holding all 8 GPUs for 60 s
costs 55.04 / 60 = $0.917333..., i.e. 8 x 60 = 480 GPU-seconds at $6.88 per GPU-hour.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costgov.adapters.metrics import OperatorMetrics
from costgov.adapters.prometheus import PrometheusSource
from costgov.catalog import load_catalog
from costgov.domain.spend import PodCost, PodUsage
from costgov.services.accounting import Snapshot, WindowSpend
from costgov.services.exporting import export_snapshot
from costgov.services.inventory import Inventory
from costgov.services.runtime import Runtime
from costgov.services.windows import window_key
from costgov.settings import Settings

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
INV = Inventory(namespaces={"ml": {"team": "nlp"}})


def _line(ns: str, pod: str, cost: str | None) -> PodCost:
    usage = PodUsage(ns, pod, "node-1", Decimal(480))
    return PodCost(usage, Decimal(cost) if cost is not None else None, None if cost else "x")


def _snap(start: datetime, end: datetime, *lines: PodCost) -> Snapshot:
    return Snapshot(
        at=end,
        windows={"w": WindowSpend(start, end, lines)},
        hourly=(),
        owners={},
        utilization={},
        tokens={},
        requests={},
        interval_seconds=60,
        nodes={},
        queries=1,
        accounted_to=end,
    )


def _spent(metrics: OperatorMetrics, ns: str, team: str) -> float:
    value = metrics.registry.get_sample_value(
        "costgov_spend_dollars_total", {"namespace": ns, "team": team}
    )
    return 0.0 if value is None else value


def test_each_interval_is_added_once_in_order() -> None:
    metrics = OperatorMetrics()
    minute = "0.917333"  # 55.04 $/h x 1/60 h
    # the first cycle has nothing to continue from: what came before the start is not added
    cursor = export_snapshot(metrics, _snap(T0 - MINUTE, T0, _line("ml", "a", minute)), INV, None)
    assert cursor == T0 and _spent(metrics, "ml", "nlp") == 0.0
    # the next two cycles each add their minute: 2 x 0.917333 = 1.834666
    for i in (1, 2):
        start = T0 + (i - 1) * MINUTE
        snap = _snap(start, start + MINUTE, _line("ml", "a", minute))
        cursor = export_snapshot(metrics, snap, INV, cursor)
    assert cursor == T0 + 2 * MINUTE
    assert abs(_spent(metrics, "ml", "nlp") - 1.834666) < 1e-9


def test_a_window_not_starting_where_the_counter_stands_is_not_added() -> None:
    # a budget's catch-up window from an hour back overlaps what was counted: not added
    metrics = OperatorMetrics()
    snap = _snap(T0 - 60 * MINUTE, T0 + MINUTE, _line("ml", "a", "55.957"))
    assert export_snapshot(metrics, snap, INV, T0) == T0 + MINUTE
    assert _spent(metrics, "ml", "nlp") == 0.0


def test_unpriced_lines_add_nothing_and_namespaces_stay_apart() -> None:
    metrics = OperatorMetrics()
    snap = _snap(
        T0,
        T0 + MINUTE,
        _line("ml", "a", "0.917333"),
        _line("ml", "b", None),  # unpriced: counted nowhere, never as $0
        _line("sandbox", "c", "0.0127"),  # a namespace without a team label
    )
    export_snapshot(metrics, snap, INV, T0)
    assert abs(_spent(metrics, "ml", "nlp") - 0.917333) < 1e-9
    assert abs(_spent(metrics, "sandbox", "") - 0.0127) < 1e-9


def test_the_counter_always_has_a_window_to_continue_from() -> None:
    # found by review: at a budget's period rollover (its window starts at the period
    # start) or with no budget at all, no window started where the counter stood, and the
    # interval was skipped; the cycle now also measures the counter's own window
    settings = Settings()
    runtime = Runtime(settings=settings, catalog=load_catalog(None),
                      source=PrometheusSource(settings), kube=None)  # fmt: skip
    assert runtime.windows(INV, T0) == {}  # before the first cycle: nothing to continue
    runtime._spend_counted_to = T0
    assert runtime.windows(INV, T0 + MINUTE) == {window_key(T0): T0}
