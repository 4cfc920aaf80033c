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

import logging
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from costgov.adapters import promql_rules
from costgov.adapters.prometheus import MetricsError, PrometheusSource, RangeSeries
from costgov.services import recorded_health
from costgov.services.planning import MAX_POINTS, Plan

log = logging.getLogger("costgov")
_INTERVAL = re.compile(r"[1-9][0-9]{0,8}")
"""An `interval` label `costgov rules` could write (ASCII digits; none with thousands)."""

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
    evaluated: Sequence[int],
    interval: int,
    point: int,
    to: int,
    step: int,
    most: int,
    seen: Collection[int] = (),
) -> Run | int | None:
    """What to count next from `point` (a grid time, unix seconds) towards `to`, given the
    times (unix ms) at which every rule was evaluated: a `Run` of consecutive evaluations,
    reaching at most `most` seconds past `point` (the first one always); or the grid time to
    count raw samples up to first; or None, when no evaluation in (point, to] reaches back no
    further than `point`. `seen`: every time any of the rules recorded something (an
    evaluation at another offset, a group evaluated more often than its `interval` label
    says, one that partly failed): a run never holds one, since its sums would add it.
    Evaluations whose hour starts a millisecond before a grid point are not read (Prometheus
    3's subqueries are open at the start and would leave that point out); raw samples are."""
    reach, grid_ms = interval * 1000, step * 1000
    ahead = [t for t in sorted(evaluated) if t - reach >= point * 1000 and t <= to * 1000]
    if not ahead or interval < step:
        return None
    first, every = ahead[0], sorted(set(seen) | set(evaluated))
    head = _grid(first - reach, step)
    if head > point:
        return head
    if (first + 1) % grid_ms == 0 or first - 1 in every:
        return _grid(first, step)  # not readable alone: raw samples
    last = first
    for t in ahead[1:]:
        clean = (t + 1) % grid_ms and not any(last < o < t for o in every)
        if t - last != reach or not clean or _grid(t, step) - point > most:
            break
        last = t
    return Run(first, last, interval)


def _markers(series: Iterable[RangeSeries]) -> dict[int, dict[str, set[int]]]:
    """For each interval: per rule of this VERSION, the times (unix ms) of its markers."""
    seen: dict[int, dict[str, set[int]]] = {}
    for s in series:
        name, interval = s.labels.get("__name__", ""), s.labels.get("interval", "")
        mine = s.labels.get(promql_rules.VERSION_LABEL) == promql_rules.VERSION
        if mine and name in promql_rules.NAMES and _INTERVAL.fullmatch(interval):
            times = seen.setdefault(int(interval), {}).setdefault(name, set())
            times.update(round(t * 1000) for t, _ in s.points)
    return seen


def _times(by_name: dict[str, set[int]]) -> tuple[list[int], list[int]]:
    """The evaluation times (unix ms) at which every rule's marker is present, and those at
    which any is."""
    every = len(by_name) == len(promql_rules.NAMES)
    return (
        sorted(set.intersection(*by_name.values())) if every else [],
        sorted(set.union(*by_name.values())),
    )


async def evaluations(
    source: PrometheusSource, point: int, to: int, step: int
) -> tuple[int, list[int], list[int]] | None:
    """The rules' interval, the times (unix ms) at which all of them were evaluated in
    (point, to] and those at which any was (the rule set with the most, when several), or
    None when there are none or Prometheus could not say (the chunk is then counted from raw
    samples)."""
    if to <= point:
        return None
    expr = promql_rules.evaluations(step, (to - point) * 1000, float(to))
    try:
        series, warnings = await source.points(expr, datetime.fromtimestamp(to, UTC))
    except MetricsError:
        return None
    markers = {
        i: by_name
        for i, by_name in _markers(series).items()
        if i % step == 0 and step <= i <= MAX_POINTS * step // 2
    }  # intervals `costgov rules` makes: a multiple of the step (`stretch` relies on it)
    found = {i: _times(by_name) for i, by_name in markers.items()}
    if not warnings:  # a partial answer (Thanos, a federation) may lack some markers
        recorded_health.failing_rules(markers, found, step)
    if not any(complete for complete, _ in found.values()):
        recorded_health.other_versions(series)
        return None
    interval = max(found, key=lambda i: (len(found[i][0]), -i))
    return interval, *found[interval]


def recorded_plan(point: int, run: Run, step: int, name: str) -> Plan:
    """One chunk of window `name` from `point` to the grid time at or before `run.last`,
    read from the recorded series, as `planning.chunk_plan` reads it from raw samples:
    the same query names, evaluated at the chunk's end, so the second round
    (querying.follow_up) asks raw samples for the pods the sums cannot count alone."""
    end = _grid(run.last, step)
    span = end - point
    if span <= 0 or span > MAX_POINTS * step:
        raise ValueError(f"no recorded chunk from {point} to {run.last} at step {step}")
    delta = run.last - run.first + 1  # the run's samples alone (`stretch`: none between)
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
