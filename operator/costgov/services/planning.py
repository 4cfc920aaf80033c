"""Which PromQL queries one accounting cycle asks, and for which stretch of time.

Every window (a resource's accounting cursor up to now) ends on the sample-step grid and
starts on it, so consecutive windows partition time exactly. A window longer than the
catch-up chunk (a fresh install over a month of history, a long Prometheus outage) is
accounted a chunk at a time: it ends on the chunk grid (multiples of the chunk since the
epoch, so windows that started apart meet at a common boundary and merge), its queries are
evaluated at that end, and they fail on their own: a chunk that times out leaves that
window where it was and never takes the steady windows' figures with it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from costgov.adapters import promql

__all__ = [
    "MAX_CATCHUP",
    "MAX_POINTS",
    "MOVED_PER_QUERY",
    "UNIT_COST_SPAN_SECONDS",
    "Plan",
    "chunk_end",
    "chunk_plan",
    "floor_to",
    "name_batches",
    "next_chunk",
    "plan",
    "steady_span",
    "unit_span",
    "window_step",
]

MAX_POINTS = 2880
"""Most sample points one window's subquery may evaluate: beyond 2 days at 60 s, the step
grows (a month in one window is sampled every 15 minutes). Bounds Prometheus' work."""
MAX_CATCHUP = 2
"""Windows a cycle catches up on at once (the oldest first; each adds four queries)."""
GROWTH = 4.0
"""How much larger the next chunk may be than one that answered fast (an hour, then 4 h,
16 h, then the most: a month to date on a small cluster is caught up in a few chunks).
Prometheus' time grows faster than linearly with a chunk at 10,000 pods: 16x growth timed
out twice in bench-catchup, each failure costing the timeout and a pause."""
EXACT_POINTS = 4
"""A steady window of at most this many sample points is asked for point by point, by the
allocation join itself (`promql.gpu_points_requested`, the node read from the requests):
its last point is the GPUs held now, so the cycle needs no query of its own for that.
Measured at 10,000 pods in the simulated cluster (docs/benchmarks.md), 2 points cost
0.2-0.4 s of Prometheus' time and 4 points 0.3-0.6 s (through kube_pod_info: 0.5-0.7 s and
0.7-1.5 s), against 1.6-2.6 s for the sums form plus a query for now."""
UNIT_COST_SPAN_SECONDS = 3600
"""$ per 1M tokens and per 1k requests are measured over the trailing hour: one cycle's
interval holds a sample point or two, too few for a ratio that does not jump about."""


def floor_to(moment: datetime, step: int) -> datetime:
    seconds = int(moment.timestamp()) // step * step
    return datetime.fromtimestamp(seconds, moment.tzinfo)


def window_step(span: int, step: int) -> int:
    """The sampling step for a window: `step`, or a multiple of it keeping <= MAX_POINTS."""
    multiple = max(1, math.ceil(span / MAX_POINTS / step))
    return step * multiple


def chunk_end(start: datetime, to: datetime, chunk: int | None) -> datetime:
    """Where a window from `start` ends this cycle: `to`, or, when it is more than `chunk`
    seconds away, the first multiple of `chunk` (seconds since the epoch) after `start`."""
    if chunk is None or (to - start).total_seconds() <= chunk:
        return to
    boundary = (int(start.timestamp()) // chunk + 1) * chunk
    return datetime.fromtimestamp(boundary, start.tzinfo)


@dataclass(frozen=True)
class Plan:
    """The cycle's queries (PromQL, evaluation time, the window each belongs to) and the
    windows' ends."""

    accounted_to: datetime
    """Where the steady windows end (the cycle time, down to the step grid)."""
    spans: Mapping[str, int]
    ends: Mapping[str, datetime]
    steps: Mapping[str, int]
    empty: frozenset[str]
    deferred: Mapping[str, str]
    """Windows left for a later cycle (more than MAX_CATCHUP behind), and why."""
    catching_up: frozenset[str]
    """Windows that end before `accounted_to` this cycle (one chunk of their history)."""
    rate_window: str | None
    """The steady window whose last point, at `accounted_to` (the cycle time down to the
    step), is the GPUs held now (None: the `now` query, at the cycle time)."""
    exprs: Mapping[str, str]
    """Every query by name: `hours:W` for window W's GPU samples (point by point for a
    steady window of at most EXACT_POINTS, else the history form beyond one point),
    `util:W`, and, for a window catching up, `owners:W` and `nodes:W`."""
    times: Mapping[str, datetime]
    owner: Mapping[str, str]
    """The catch-up window a query belongs to ("" for the cycle's own queries)."""
    util: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """The window and step of each utilisation query (`util`, `util:W`): their pods whose
    GPUs the per-series means do not settle are asked for again exactly."""
    points: frozenset[str] = frozenset()
    """Queries answered point by point (`promql.gpu_points_requested`), summed by
    `querying.run`; the pods they cannot place are asked for again (services/placement.py)."""
    owners_later: bool = False
    """No `owners` query in the first round: the pods the answers show and the API does
    not are asked for by name afterwards (`querying.follow_up`)."""


def _steady(
    at: datetime,
    accounted_to: datetime,
    spans: Mapping[str, int],
    interval: int,
    step: int,
    owners: bool = True,
) -> tuple[dict[str, str], dict[str, int], str | None]:
    """The steady windows' queries (they end at `accounted_to`); `owners`: ask for every
    pod's owner (else only those the API does not show, afterwards)."""
    longest = _longest(spans, interval)
    exact = {n: span for n, span in spans.items() if _pointwise(span, step)}
    # The current rate is the last point of a window asked for point by point (steady
    # state: the window since the last cycle); otherwise from its own query.
    rate_window = min(exact, key=lambda n: (exact[n], n)) if exact else None
    exprs = {"nodes": promql.node_labels(longest)}
    if owners:
        exprs["owners"] = promql.pod_owners(longest)
    exprs["util"] = promql.gpu_utilization_series(interval, step)
    if rate_window is None:
        exprs["now"] = promql.gpu_allocation()
    steps = {name: window_step(span, step) for name, span in spans.items()}
    interval_start = at.timestamp() - interval
    for name, span in spans.items():
        exact_form = promql.gpu_points_requested(span, step) if name in exact else None
        exprs[f"hours:{name}"] = exact_form or _samples(span, steps[name])
        # idle dollars need each pod's utilisation over the window; the interval's serves
        # a window inside it (steady state), a longer one gets its own query
        if accounted_to.timestamp() - span < interval_start:
            exprs[f"util:{name}"] = promql.gpu_utilization_series(span, steps[name])
    return exprs, steps, rate_window


def _longest(spans: Mapping[str, int], interval: int) -> int:
    """How far back the cycle's own nodes and owners look: over every steady window."""
    return max([interval, *spans.values()])


def steady_span(cycle: Plan, interval: int) -> int:
    """`_longest` for a plan made with this `interval` (seconds)."""
    return _longest({n: s for n, s in cycle.spans.items() if n not in cycle.catching_up}, interval)


def _pointwise(span: int, step: int) -> bool:
    """A steady window short enough to be asked for point by point (EXACT_POINTS)."""
    return span <= EXACT_POINTS * step


def _samples(span: int, step: int) -> str:
    """GPU samples over a window: one point (the steady window) by the allocation join
    itself, more by the same sums at a fraction of the cost (pods that moved nodes are
    then taken again exactly: `accounting`'s second round)."""
    if span <= step:
        return promql.gpu_samples(span, step)
    return promql.gpu_samples_history(span, step)


def _catchup(name: str, span: int, step: int) -> dict[str, str]:
    """One chunk of a window's history: what every pod cost, how busy its GPUs were, who
    owned it and what its nodes were, all as of the chunk's end."""
    return {
        f"hours:{name}": _samples(span, step),
        f"util:{name}": promql.gpu_utilization_series(span, step),
        f"owners:{name}": promql.pod_owners(span),
        f"nodes:{name}": promql.node_labels(span),
    }


def unit_span(interval: int, step: int) -> int:
    """The span unit costs are measured over: the trailing hour, or the interval if longer."""
    return max(interval, UNIT_COST_SPAN_SECONDS // step * step)


MOST_NAMED = 1000
"""The most model servers the unit-cost queries name; beyond, they ask for every pod."""


def _unit_costs(interval: int, step: int, serving: Collection[str] | None) -> dict[str, str]:
    """Tokens and requests over the unit-cost span ending at accounted_to, of the `serving`
    pod names (None: every pod). The GPU time over it is asked for afterwards, for the pods
    these show count tokens (services/querying.py)."""
    span = unit_span(interval, step)
    pods = None if serving is None or len(serving) > MOST_NAMED else sorted(serving)
    return {
        "unit:tokens": promql.vllm_tokens(span, pods),
        "unit:requests": promql.vllm_requests(span, pods),
    }


def plan(
    at: datetime,
    windows: Mapping[str, datetime],
    interval_seconds: int,
    step: int,
    unit_costs: bool = True,
    chunk: int | None = None,
    serving: Collection[tuple[str, str]] | None = None,
    owners: bool = True,
) -> Plan:
    """The cycle's queries for `windows` (name -> start). `chunk`: the most seconds of
    history one window accounts in this cycle (None: all of it). `serving`: the pods
    (namespace, name) unit costs are measured for (None: every pod counting tokens).
    `owners`: ask for every pod's owner in the first round (False: the API's owners are
    known, and only the pods it does not show are asked for, afterwards)."""
    accounted_to = floor_to(at, step)
    chunk = None if chunk is None else max(step, chunk // step * step)
    starts = {n: floor_to(s, step) for n, s in windows.items()}
    ends = {n: chunk_end(s, accounted_to, chunk) for n, s in starts.items()}
    spans = {n: int((ends[n] - s).total_seconds()) for n, s in starts.items()}
    empty = frozenset(n for n, span in spans.items() if span <= 0)
    behind = sorted((n for n in spans if n not in empty and ends[n] < accounted_to),
                    key=lambda n: starts[n])  # fmt: skip
    catching, later = behind[:MAX_CATCHUP], behind[MAX_CATCHUP:]
    steady = {n: s for n, s in spans.items() if n not in empty and n not in behind}
    exprs, steps, rate_window = _steady(at, accounted_to, steady, interval_seconds, step, owners)
    points = frozenset(f"hours:{n}" for n in steady if _pointwise(steady[n], step))
    if unit_costs and (serving is None or serving):
        names = None if serving is None else {pod for _, pod in serving}
        exprs.update(_unit_costs(interval_seconds, step, names))
    times = {n: (accounted_to if ":" in n else at) for n in exprs}
    owner = dict.fromkeys(exprs, "")
    for name in catching:
        steps[name] = window_step(spans[name], step)
        chunk_exprs = _catchup(name, spans[name], steps[name])
        exprs.update(chunk_exprs)
        times.update(dict.fromkeys(chunk_exprs, ends[name]))
        owner.update(dict.fromkeys(chunk_exprs, name))
    deferred = {n: f"{len(catching)} older windows are being caught up on first" for n in later}
    # a window's name is its start (window_key: an RFC 3339 time, colons and all)
    util = {n: (spans[n[5:]], steps[n[5:]]) for n in exprs if n.startswith("util:")}
    util["util"] = (interval_seconds, step)
    return Plan(
        accounted_to,
        {n: spans[n] for n in [*steady, *catching]},
        ends,
        steps,
        empty,
        deferred,
        frozenset(catching),
        rate_window,
        exprs,
        times,
        owner,
        util,
        points,
        not owners,
    )


def chunk_plan(to: datetime, start: datetime, step: int, chunk: int, name: str) -> Plan:
    """One chunk of window `name`'s history, as the background catch-up counts it
    (services/catching_up.py): from `start` to the chunk's end (`to` at most), with the
    nodes and owners as of that end, and none of a cycle's own queries. `start` must be at
    least a step before `to`."""
    accounted_to, start = floor_to(to, step), floor_to(start, step)
    end = chunk_end(start, accounted_to, max(step, chunk // step * step))
    span = int((end - start).total_seconds())
    if span <= 0:
        raise ValueError(f"no history to count from {start} to {accounted_to}")
    steps = {name: window_step(span, step)}
    exprs = _catchup(name, span, steps[name])
    return Plan(
        accounted_to,
        {name: span},
        {name: end},
        steps,
        frozenset(),
        {},
        frozenset({name}),
        None,
        exprs,
        dict.fromkeys(exprs, end),
        dict.fromkeys(exprs, name),
        {f"util:{name}": (span, steps[name])},
    )


def next_chunk(
    chunk: int, took: float | None, failed: bool, *, timeout: float, step: int, most: int
) -> int:
    """The chunk for the next cycle: halved after a chunk failed; otherwise scaled so its
    slowest query would take half the query timeout (Prometheus' work grows with the sample
    points, so about linearly with the chunk; at most GROWTH times larger, never beyond
    `most`, never below one step). Unchanged when nothing was catching up."""
    if failed:
        wanted = chunk / 2
    elif took is None:
        return chunk
    else:
        wanted = chunk * min(GROWTH, timeout / 2 / max(took, 0.001))
    return max(step, min(most, int(wanted) // step * step))


MOVED_PER_QUERY = 200
"""Pod names one exact second-round query selects (they travel in the query's URL)."""
MOST_BATCHES = 5
"""Beyond this many batches of names, one query asks for every pod instead (two scrape jobs
for every dcgm-exporter, thousands of model servers): the queries a cycle makes stay few."""


def name_batches(names: list[str]) -> list[list[str] | None]:
    """`names` in batches of MOVED_PER_QUERY, or [None] (every pod) when too many."""
    if len(names) > MOST_BATCHES * MOVED_PER_QUERY:
        return [None]
    return [names[i : i + MOVED_PER_QUERY] for i in range(0, len(names), MOVED_PER_QUERY)]
