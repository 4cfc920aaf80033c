"""One accounting cycle: a fixed set of cluster-wide PromQL queries, turned into a Snapshot.

The number of queries depends on how many distinct windows are asked for (at most five,
usually one: every resource's accounting cursor is the last cycle); a second round asks
again, by name, for the pods the cheap forms cannot settle alone, in at most five batches
of 200 per kind and window, then in one query for all. A failed query does not fail the cycle silently:
the snapshot carries the error, and the caller keeps its last figures and says why. A window
far behind is accounted a chunk at a time (services/planning.py); a chunk that fails only
holds back its own window, named in `Snapshot.lagging`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING

from costgov.adapters import promql
from costgov.adapters.prometheus import PrometheusSource, QueryResult
from costgov.domain.attribution import Attribution, attribute
from costgov.domain.capacity import (
    CAPACITY_LABELS,
    GPU_COUNT_LABEL,
    GPU_PRODUCT_LABELS,
    INSTANCE_TYPE_LABELS,
    PROVIDER_LABEL,
    REGION_LABELS,
    ZONE_LABELS,
)
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.offerings import Offering, Unpriced, offering_for_node
from costgov.domain.spend import PodCost, PodUsage, price_usage
from costgov.services.planning import MAX_POINTS, Plan, chunk_plan, plan, window_step
from costgov.services.querying import Answers, PodKey, follow_up, run

if TYPE_CHECKING:
    from costgov.services.api_spend import ApiFigures

__all__ = ["MAX_POINTS", "Snapshot", "WindowSpend", "chunk_spend", "collect", "window_step"]

_NODE_KEYS = (
    *INSTANCE_TYPE_LABELS, *REGION_LABELS, *ZONE_LABELS, *CAPACITY_LABELS,
    *GPU_PRODUCT_LABELS, GPU_COUNT_LABEL, PROVIDER_LABEL,
)  # fmt: skip


_FROM_KSM = {promql.ksm_label_name(k): k for k in _NODE_KEYS}


@dataclass(frozen=True)
class WindowSpend:
    """What every pod cost between `start` and `end` (the snapshot's `accounted_to`, or
    sooner when the window is catching up a chunk at a time): `end` is the next cursor."""

    start: datetime
    end: datetime
    pods: tuple[PodCost, ...]
    utilization: Mapping[PodKey, float] = field(default_factory=dict)
    """Mean GPU utilisation by pod over this window, from the same sample points as the
    spend (used for idle dollars: a pod that ended early in the window still counts)."""

    @cached_property
    def by_namespace(self) -> Mapping[str, tuple[PodCost, ...]]:
        """The pods' lines grouped by namespace, built once per snapshot."""
        return _group(self.pods)


@dataclass(frozen=True)
class Snapshot:
    """Everything one cycle learned; `error` set means the figures must not replace old ones."""

    at: datetime
    windows: Mapping[str, WindowSpend]
    hourly: tuple[PodCost, ...]
    """Current $/h per Running GPU pod (the `gpu_hours` field holds GPUs held now)."""
    owners: Mapping[PodKey, str]
    """The Job each pod belongs to (the API, else kube_pod_owner, else kube_pod_info)."""
    utilization: Mapping[PodKey, float]
    """Mean GPU utilisation over the last interval, by pod."""
    tokens: Mapping[PodKey, float]
    """Tokens each vLLM pod counted over the trailing hour (UNIT_COST_SPAN_SECONDS), up to
    its newest sample."""
    requests: Mapping[PodKey, float]
    """Successful requests, over the same span as `tokens`."""
    interval_seconds: int
    nodes: Mapping[str, Offering | Unpriced]
    queries: int
    warnings: tuple[str, ...] = ()
    error: str | None = None
    accounted_to: datetime | None = None
    owners_known: frozenset[PodKey] = frozenset()
    """Pods whose owner (or lack of one) some source described."""
    unit_costs: tuple[PodCost, ...] = ()
    """What each vLLM pod's GPUs cost over the span its `tokens` and `requests` cover."""
    lagging: Mapping[str, str] = field(default_factory=dict)
    """Windows asked for that this snapshot does not advance (a chunk failed, or older
    windows are caught up on first), and why."""
    catchup_seconds: float | None = None
    """How long the slowest catch-up query took (None: no window was catching up)."""
    catchup_failed: bool = False
    api: ApiFigures | None = None
    """Hosted-API spend over each window and the last hour (services/api_spend.py)."""

    @property
    def attribution(self) -> Attribution:
        return Attribution(self.owners, self.owners_known)

    @cached_property
    def hourly_by_namespace(self) -> Mapping[str, tuple[PodCost, ...]]:
        return _group(self.hourly)

    @cached_property
    def hourly_by_pod(self) -> Mapping[PodKey, tuple[PodCost, ...]]:
        """Each running pod's current $/h lines (one per node it is seen on)."""
        out: dict[PodKey, list[PodCost]] = {}
        for line in self.hourly:
            out.setdefault(line.usage.key, []).append(line)
        return {key: tuple(lines) for key, lines in out.items()}

    @cached_property
    def running_by_job(self) -> Mapping[tuple[str, str], frozenset[PodKey]]:
        """The running GPU pods of each Job, by (namespace, Job), built once per snapshot
        (a hundred budgets each looking through every pod took a tenth of the operator's
        CPU at 10,000 pods)."""
        out: dict[tuple[str, str], set[PodKey]] = {}
        for line in self.hourly:
            job = self.owners.get(line.usage.key)
            if job is not None:
                out.setdefault((line.usage.namespace, job), set()).add(line.usage.key)
        return {key: frozenset(pods) for key, pods in out.items()}


def _group(lines: Iterable[PodCost]) -> dict[str, tuple[PodCost, ...]]:
    out: dict[str, list[PodCost]] = {}
    for line in lines:
        out.setdefault(line.usage.namespace, []).append(line)
    return {ns: tuple(group) for ns, group in out.items()}


def _d(value: float) -> Decimal:
    return Decimal(repr(value))


_NONE = QueryResult(())
"""The answer of a query not asked (no unit costs): no pods."""


def _by_pod(result: QueryResult) -> dict[PodKey, float]:
    return {
        (s.labels.get("namespace", ""), s.labels.get("pod", "")): s.value
        for s in result.samples
        if not math.isnan(s.value)
    }


def _usage(result: QueryResult, step: int) -> list[PodUsage]:
    """Usage lines from a sample-sum query: GPU-seconds = sum x step, exactly. With step
    3600 and one sample it is the current allocation: GPUs held, per hour."""
    return [
        PodUsage(
            s.labels["namespace"],
            s.labels["pod"],
            s.labels.get("node", ""),
            _d(s.value) * step,
        )
        for s in result.samples
        if not math.isnan(s.value) and s.value > 0 and "namespace" in s.labels and "pod" in s.labels
    ]


def _instance_type(labels: Mapping[str, str]) -> str | None:
    return next((labels[k] for k in INSTANCE_TYPE_LABELS if labels.get(k)), None)


def _nodes(
    labels: QueryResult,
    live: Mapping[str, Mapping[str, str]],
    catalog: PriceCatalog,
    past: bool = False,
) -> dict[str, Offering | Unpriced]:
    """Each node's offering from kube_node_labels, the API's labels winning (they are
    exact and complete). `past`: labels as of a chunk of history, where a node name now
    on another instance type keeps the type it had then."""
    known: dict[str, dict[str, str]] = {}
    for sample in labels.samples:
        node = sample.labels.get("node")
        if node:
            known[node] = {_FROM_KSM[k]: v for k, v in sample.labels.items() if k in _FROM_KSM}
    for node, node_labels in live.items():
        then = _instance_type(known.get(node, {}))
        if past and then is not None and then != _instance_type(node_labels):
            continue  # the name was another machine then
        known[node] = dict(node_labels)
    return {node: offering_for_node(node_labels, catalog) for node, node_labels in known.items()}


def _owners(result: QueryResult) -> dict[PodKey, tuple[str, str]]:
    return {
        (s.labels.get("namespace", ""), s.labels.get("pod", "")): (
            s.labels.get("owner_kind", ""),
            s.labels.get("owner_name", ""),
        )
        for s in result.samples
    }


def _lagging(cycle: Plan, answers: Answers, windows: Mapping[str, datetime]) -> dict[str, str]:
    """Windows this snapshot does not advance: left for later, or a chunk that failed."""
    out = dict(cycle.deferred)
    for name, error in answers.errors.items():
        window = cycle.owner.get(name, "")
        if window and window not in out:
            start = windows[window].isoformat().replace("+00:00", "Z")
            out[window] = f"the chunk of history from {start} failed, retried smaller: {error}"
    return out


def _spend(
    cycle: Plan,
    answers: Answers,
    windows: Mapping[str, datetime],
    now: tuple[Mapping[str, Offering | Unpriced], Mapping[PodKey, float]],
    live_node_labels: Mapping[str, Mapping[str, str]],
    catalog: PriceCatalog,
    lagging: Mapping[str, str],
) -> dict[str, WindowSpend]:
    """Each window's pods priced: a steady one on the nodes as they are `now` (with the
    interval's utilisation), a chunk of history on its nodes as they were at its end."""
    results = answers.results
    nodes, utilization = now
    spend = {}
    for name in cycle.spans:
        if name in lagging:
            continue
        priced_on = nodes
        if name in cycle.catching_up:
            priced_on = _nodes(results[f"nodes:{name}"], live_node_labels, catalog, past=True)
        usage = _usage(results[f"hours:{name}"], cycle.steps[name])
        spend[name] = WindowSpend(
            windows[name],
            cycle.ends[name],
            tuple(price_usage(usage, priced_on)),
            _by_pod(results[f"util:{name}"]) if f"util:{name}" in results else utilization,
        )
    spend.update({n: WindowSpend(windows[n], cycle.accounted_to, ()) for n in cycle.empty})
    return spend


def _owners_seen(
    cycle: Plan, results: Mapping[str, QueryResult], past: Mapping[PodKey, tuple[str, str]]
) -> dict[PodKey, tuple[str, str]]:
    """Owners from history counted apart (`past`), then from the chunks of history, then
    the cycle's own (newer) on top."""
    seen: dict[PodKey, tuple[str, str]] = dict(past)
    for name in sorted(cycle.catching_up):
        if f"owners:{name}" in results:
            seen.update(_owners(results[f"owners:{name}"]))
    seen.update(_owners(results["owners"]))
    return seen


async def collect(
    source: PrometheusSource,
    catalog: PriceCatalog,
    *,
    at: datetime,
    windows: Mapping[str, datetime],
    interval_seconds: int,
    step_seconds: int,
    live_node_labels: Mapping[str, Mapping[str, str]],
    live_pod_owners: Mapping[PodKey, str | None] | None = None,
    unit_costs: bool = True,
    chunk_seconds: int | None = None,
    past_owners: Mapping[PodKey, tuple[str, str]] | None = None,
    serving: Collection[PodKey] | None = None,
    owners_in: Collection[str] | None = None,
) -> Snapshot:
    """Run one cycle's queries concurrently and price what they return. `live_node_labels`
    and `live_pod_owners` (the Job of each GPU pod the API shows, or None) win over
    Prometheus. `unit_costs`: measure vLLM pods' cost, tokens and requests; `serving`: the
    cost of only these (the model servers the API shows; None: every pod counting tokens).
    `chunk_seconds`: the most history one window accounts this cycle (None: all).
    `past_owners`: owners history counted apart showed. Given `live_pod_owners`, only the
    owners of pods the API does not show are asked of Prometheus (in the `owners_in`
    namespaces only, when given: where something reads them)."""
    live, interval = live_pod_owners, (interval_seconds, step_seconds)
    cycle = plan(at, windows, *interval, unit_costs, chunk_seconds, serving, live is None)
    answers = await run(source, cycle)
    retaken = await follow_up(source, cycle, answers, interval, serving, live or {}, owners_in)
    results = answers.results
    warnings = tuple(w for r in results.values() for w in r.warnings)
    queries = len(cycle.exprs) + retaken
    if failed := [e for n, e in answers.errors.items() if not cycle.owner.get(n)]:
        return Snapshot(at, {}, (), {}, {}, {}, {}, interval_seconds, {}, queries, warnings,
                        "; ".join(failed), cycle.accounted_to)  # fmt: skip
    lagging = _lagging(cycle, answers, windows)
    nodes = _nodes(results["nodes"], live_node_labels, catalog)
    utilization = _by_pod(results["util"])
    owners = attribute(_owners_seen(cycle, results, past_owners or {}), live_pod_owners or {})
    return Snapshot(
        at=at,
        windows=_spend(
            cycle, answers, windows, (nodes, utilization), live_node_labels, catalog, lagging
        ),
        hourly=tuple(price_usage(_usage(results["now"], 3600), nodes)),
        owners=owners.jobs,
        utilization=utilization,
        tokens=_by_pod(results.get("unit:tokens", _NONE)),
        requests=_by_pod(results.get("unit:requests", _NONE)),
        interval_seconds=interval_seconds,
        nodes=nodes,
        queries=queries,
        warnings=warnings,
        accounted_to=cycle.accounted_to,
        owners_known=owners.known,
        unit_costs=tuple(price_usage(_usage(results.get("unit:gpu", _NONE), step_seconds), nodes)),
        lagging=lagging,
        catchup_seconds=answers.catchup_seconds,
        catchup_failed=any(cycle.owner.get(n) for n in answers.errors),
    )


async def chunk_spend(
    source: PrometheusSource,
    catalog: PriceCatalog,
    *,
    start: datetime,
    to: datetime,
    step: int,
    chunk: int,
    live_node_labels: Mapping[str, Mapping[str, str]],
    recorded: Plan | None = None,
) -> tuple[WindowSpend, dict[PodKey, tuple[str, str]]] | str:
    """One chunk of history from `start` towards `to` (planning.chunk_plan), priced on the
    nodes as they were at its end, with the owners then; or why it failed. `recorded`: the
    chunk's plan read from recording rules (services/recorded.py) instead."""
    cycle = recorded or chunk_plan(to, start, step, chunk, "history")
    answers = await run(source, cycle)
    await follow_up(source, cycle, answers, (chunk, step))
    if answers.errors:
        return "; ".join(sorted(set(answers.errors.values())))
    spend = _spend(cycle, answers, {"history": start}, ({}, {}), live_node_labels, catalog, {})
    return spend["history"], _owners(answers.results["owners:history"])
