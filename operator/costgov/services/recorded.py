"""Catching up from the chart's recording rules (adapters/promql_rules.py) where they cover.

The catch-up (services/catching_up.py) counts a window's history from `point` on, chunk
after chunk. Before each chunk it asks which rule evaluations lie ahead (`evaluations`) and
`stretch` says what to count next:
- a run of consecutive evaluations t1..tn, each covering the grid points in (t - interval, t],
  when the first one starts at `point` (no grid point of (point, t1 - interval] is left):
  the chunk (point, floor(tn)] is counted from the recorded series (`recorded_plan`);
- the grid time up to which to count raw samples first (`point` is before the first
  evaluation's reach: a window starting mid-hour, an evaluation Prometheus missed);
- None: no evaluation ahead covers anything (no rules, or made for another step), so the
  chunk is counted from raw samples, as without rules.
The figures are the raw form's, point for point: the same expressions at the same grid points
(promql_rules' ranges are a millisecond short of the interval, so off-grid evaluation times
neither lose nor repeat a point), and pods the sums cannot count alone (seen as several
objects, utilisation not settled) are asked for again from raw samples over the same chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from costgov.adapters import promql_rules
from costgov.adapters.prometheus import MetricsError, PrometheusSource, RangeSeries
from costgov.services.planning import MAX_POINTS, Plan

__all__ = ["Run", "evaluations", "recorded_plan", "stretch"]


@dataclass(frozen=True)
class Run:
    """Consecutive evaluations (unix milliseconds) of one rule set, `interval` seconds apart."""

    first: int
    last: int
    interval: int


def _grid(ms: int, step: int) -> int:
    """The grid time (unix seconds) at or before `ms`."""
    return ms // (step * 1000) * step


def stretch(
    evaluated: Sequence[int], interval: int, point: int, to: int, step: int, most: int
) -> Run | int | None:
    """What to count next from `point` (a grid time, unix seconds) towards `to`, given the
    rules' evaluation times (unix milliseconds): a `Run` of recorded evaluations, reaching at
    most `most` seconds past `point` (the first one always); or the grid time to count raw
    samples up to first, before the first evaluation that reaches back no further than
    `point`; or None, when no evaluation in (point, to] does."""
    reach = interval * 1000
    ahead = sorted(t for t in evaluated if t - reach >= point * 1000 and t <= to * 1000)
    if not ahead or interval < step:
        return None
    first = ahead[0]
    head = _grid(first - reach, step)
    if head > point:
        return head
    last = first
    for t in ahead[1:]:
        if abs(t - last - reach) > 1 or _grid(t, step) - point > most:
            break
        last = t
    return Run(first, last, interval)


def _complete(series: Iterable[RangeSeries]) -> dict[int, list[int]]:
    """Evaluation times (unix ms) of each interval at which every rule's marker is present."""
    seen: dict[int, dict[str, set[int]]] = {}
    for s in series:
        name, interval = s.labels.get("__name__", ""), s.labels.get("interval", "")
        if name in promql_rules.NAMES and interval.isdigit():
            times = seen.setdefault(int(interval), {}).setdefault(name, set())
            times.update(round(t * 1000) for t, _ in s.points)
    return {
        interval: sorted(set.intersection(*by_name.values()))
        for interval, by_name in seen.items()
        if set(by_name) == set(promql_rules.NAMES)
    }


async def evaluations(
    source: PrometheusSource, point: int, to: int, step: int
) -> tuple[int, list[int]] | None:
    """The rules' interval and the times (unix ms) at which all of them were evaluated in
    (point, to]
    (the rule set with the most, when several), or None when there are none or Prometheus
    could not say (the chunk is then counted from raw samples)."""
    if to <= point:
        return None
    expr = promql_rules.evaluations(step, (to - point) * 1000, float(to))
    try:
        series, _ = await source.points(expr, datetime.fromtimestamp(to, UTC))
    except MetricsError:
        return None
    found = {i: ts for i, ts in _complete(series).items() if step <= i <= MAX_POINTS * step // 2}
    if not found:
        return None
    interval = max(found, key=lambda i: (len(found[i]), -i))
    return interval, found[interval]


def recorded_plan(point: int, run: Run, step: int, name: str) -> Plan:
    """One chunk of window `name` from `point` to the grid time at or before `run.last`,
    read from the recorded series, as `planning.chunk_plan` reads it from raw samples:
    the same query names, evaluated at the chunk's end, so the second round
    (querying.follow_up) asks raw samples for the pods the sums cannot count alone."""
    end = _grid(run.last, step)
    span = end - point
    if span <= 0 or span > MAX_POINTS * step:
        raise ValueError(f"no recorded chunk from {point} to {run.last} at step {step}")
    delta = run.last - run.first + run.interval * 500
    args = (step, run.interval, delta, run.last / 1000)
    exprs = {
        f"hours:{name}": promql_rules.recorded_samples(*args),
        f"util:{name}": promql_rules.recorded_utilization(*args),
        f"owners:{name}": promql_rules.recorded_owners(*args),
        f"nodes:{name}": promql_rules.recorded_nodes(*args),
    }
    at = datetime.fromtimestamp(end, UTC)
    return Plan(
        at,
        {name: span},
        {name: at},
        {name: step},
        frozenset(),
        {},
        frozenset({name}),
        None,
        exprs,
        dict.fromkeys(exprs, at),
        dict.fromkeys(exprs, name),
        {f"util:{name}": (span, step)},
    )
