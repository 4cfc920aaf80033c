"""A steady window asked point by point reads each pod's node from its GPU requests
(`promql.gpu_points_requested`: about 40 % cheaper than the join through kube_pod_info,
most of a cycle's cost at 10,000 pods). The pods that form cannot place, seen on no node
while Running or on two nodes at one point, are asked for again by the exact join, by
name, in the cycle's second round; their lines from the first are dropped, never added to.
In the simulated cluster that is a few pods while Jobs start: kube-state-metrics exported
a starting pod's requests without `node` one scrape after its kube_pod_info had the node
and its phase was Running.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime

from costgov.adapters import promql
from costgov.adapters.prometheus import (
    MetricsError,
    PrometheusSource,
    QueryResult,
    RangeSeries,
    Sample,
    gather_answers,
)
from costgov.services.planning import Plan, name_batches

__all__ = ["place", "summed", "unplaced"]

PodKey = tuple[str, str]


def _key(labels: Mapping[str, str]) -> PodKey:
    return labels.get("namespace", ""), labels.get("pod", "")


def unplaced(series: Iterable[RangeSeries]) -> set[PodKey]:
    """Pods these points show holding GPUs on no node, or on more than one node at one
    point (a point of 0 GPUs places nothing; NaN is not 0, and is taken again)."""
    points: dict[PodKey, list[RangeSeries]] = {}
    flagged: set[PodKey] = set()
    for s in series:
        key = _key(s.labels)
        if not s.labels.get("node") and any(v != 0 for _, v in s.points):
            flagged.add(key)
        points.setdefault(key, []).append(s)
    for key, lines in points.items():
        if len(lines) > 1 and key not in flagged:
            times = [t for line in lines for t, v in line.points if v != 0]
            if len(times) != len(set(times)):
                flagged.add(key)
    return flagged


def summed(
    cycle: Plan, name: str, series: Iterable[RangeSeries], warnings: tuple[str, ...], at: datetime
) -> dict[str, QueryResult]:
    """A point-by-point answer as the cycle reads it: each line's points summed (`name`),
    and, for the rate window, the lines' points at its end (`now`, the GPUs held)."""
    lines = list(series)
    sums = (Sample(s.labels, math.fsum(v for _, v in s.points)) for s in lines)
    found = {name: QueryResult(tuple(sums), warnings)}
    if name == f"hours:{cycle.rate_window}":  # its last point is on the step grid: now
        end = at.timestamp()
        last = (Sample(s.labels, s.points[-1][1]) for s in lines if _ends_at(s, end))
        found["now"] = QueryResult(tuple(last))  # its warnings are the window's, said once
    return found


def _ends_at(series: RangeSeries, end: float) -> bool:
    return bool(series.points) and abs(series.points[-1][0] - end) < 0.001


def _batches(pods: Collection[PodKey]) -> list[list[str] | None]:
    """The names to ask for, MOVED_PER_QUERY a query; [None] (every pod) for too many, or
    for a name no Kubernetes pod could carry in a query (a relabelled `pod` label)."""
    names = sorted({pod for _, pod in pods})
    if any(not promql.POD_NAME.fullmatch(n) for n in names):
        return [None]
    return name_batches(names)


async def place(
    source: PrometheusSource,
    cycle: Plan,
    results: dict[str, QueryResult],
    pods: Mapping[str, set[PodKey]],
) -> tuple[int, dict[str, str]]:
    """`pods` of each point-by-point answer of `results` (by name) asked for again by the
    exact join, their lines replaced (the rate window's `now` too), the windows side by
    side. Returns how many queries it made, and the errors by name (that answer is then
    dropped)."""
    names = [n for n, flagged in pods.items() if flagged and n in results]
    done = await asyncio.gather(*(_place(source, cycle, results, n, pods[n]) for n in names))
    errors = {name: error for name, (_, error) in zip(names, done, strict=True) if error}
    return sum(asked for asked, _ in done), errors


async def _place(
    source: PrometheusSource,
    cycle: Plan,
    results: dict[str, QueryResult],
    name: str,
    flagged: set[PodKey],
) -> tuple[int, str | None]:
    window = name.removeprefix("hours:")
    batches = _batches(flagged)
    exprs = [promql.gpu_points(cycle.spans[window], cycle.steps[window], b) for b in batches]
    again = await _points(source, exprs, cycle.times[name])
    if isinstance(again, MetricsError):
        return len(exprs), str(again)
    every = batches == [None]
    exact = [s for s in again[0] if every or _key(s.labels) in flagged]
    retaken = summed(cycle, name, exact, (*again[1], *_lost(flagged, exact)), cycle.times[name])
    for key, result in retaken.items():
        first = results.get(key, QueryResult(()))
        kept = () if every else [s for s in first.samples if _key(s.labels) not in flagged]
        results[key] = QueryResult((*kept, *result.samples), (*first.warnings, *result.warnings))
    return len(exprs), None


def _lost(flagged: set[PodKey], exact: list[RangeSeries]) -> list[str]:
    """A warning for pods the requests show holding GPUs that the join through kube_pod_info
    places on no node (Prometheus keeps no kube_pod_info of theirs): not counted."""
    held = {_key(s.labels) for s in exact if any(v != 0 for _, v in s.points)}
    lost = sorted(flagged - held)
    if not lost:
        return []
    first = "/".join(lost[0])
    return [
        f"{len(lost)} pod(s) hold GPUs by their requests on no node kube_pod_info gives "
        f"(first: {first}): not counted in this window; keep kube_pod_info with its node "
        "label in Prometheus"
    ]


async def _points(
    source: PrometheusSource, exprs: list[str], at: datetime
) -> tuple[list[RangeSeries], tuple[str, ...]] | MetricsError:
    found = await gather_answers(source.points(e, at) for e in exprs)
    if isinstance(found, MetricsError):
        return found
    return [s for series, _ in found for s in series], tuple(w for _, ws in found for w in ws)
