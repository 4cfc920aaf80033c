"""One accounting cycle: a fixed set of cluster-wide PromQL queries, turned into a Snapshot.

The number of queries depends on how many distinct windows are asked for (at most five,
usually one: every resource's accounting cursor is the last cycle), never on the number of
pods, nodes or costgov objects. A failed query does not fail the cycle silently:
the snapshot carries the error, and the caller keeps its last figures and says why.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property

from costgov.adapters import promql
from costgov.adapters.prometheus import MetricsError, PrometheusSource, QueryResult
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

__all__ = ["MAX_POINTS", "Snapshot", "WindowSpend", "collect", "window_step"]

PodKey = tuple[str, str]
UNIT_COST_SPAN_SECONDS = 3600
"""$ per 1M tokens and per 1k requests are measured over the trailing hour: one cycle's
interval holds a sample point or two, too few for a ratio that does not jump about."""
_NODE_KEYS = (
    *INSTANCE_TYPE_LABELS, *REGION_LABELS, *ZONE_LABELS, *CAPACITY_LABELS,
    *GPU_PRODUCT_LABELS, GPU_COUNT_LABEL, PROVIDER_LABEL,
)  # fmt: skip


_FROM_KSM = {promql.ksm_label_name(k): k for k in _NODE_KEYS}


@dataclass(frozen=True)
class WindowSpend:
    """What every pod cost between `start` and the snapshot time."""

    start: datetime
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

    @property
    def attribution(self) -> Attribution:
        return Attribution(self.owners, self.owners_known)

    @cached_property
    def hourly_by_namespace(self) -> Mapping[str, tuple[PodCost, ...]]:
        return _group(self.hourly)

    """Where the windows end (the cycle time, down to the step grid): the next cursor."""


def _group(lines: Iterable[PodCost]) -> dict[str, tuple[PodCost, ...]]:
    out: dict[str, list[PodCost]] = {}
    for line in lines:
        out.setdefault(line.usage.namespace, []).append(line)
    return {ns: tuple(group) for ns, group in out.items()}


def _floor(moment: datetime, step: int) -> datetime:
    seconds = int(moment.timestamp()) // step * step
    return datetime.fromtimestamp(seconds, moment.tzinfo)


def _d(value: float) -> Decimal:
    return Decimal(repr(value))


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


def _nodes(
    labels: QueryResult, live: Mapping[str, Mapping[str, str]], catalog: PriceCatalog
) -> dict[str, Offering | Unpriced]:
    known: dict[str, dict[str, str]] = {}
    for sample in labels.samples:
        node = sample.labels.get("node")
        if node:
            known[node] = {_FROM_KSM[k]: v for k, v in sample.labels.items() if k in _FROM_KSM}
    for node, node_labels in live.items():  # the API's labels are exact: they win
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


MAX_POINTS = 2880
"""Most sample points one window's subquery may evaluate: beyond 2 days at 60 s, the step
grows (a month is sampled every 15 minutes). Bounds Prometheus' work per cycle."""


def window_step(span: int, step: int) -> int:
    """The sampling step for a window: `step`, or a multiple of it keeping <= MAX_POINTS."""
    multiple = max(1, math.ceil(span / MAX_POINTS / step))
    return step * multiple


@dataclass(frozen=True)
class _Plan:
    """The cycle's queries: names, PromQL, evaluation time."""

    accounted_to: datetime
    spans: Mapping[str, int]
    steps: Mapping[str, int]
    empty: frozenset[str]
    rate_window: str | None
    exprs: Mapping[str, str]


def _plan(
    at: datetime,
    windows: Mapping[str, datetime],
    interval_seconds: int,
    step: int,
    unit_costs: bool = True,
) -> _Plan:
    # Windows end on the step grid, and start on it, so that consecutive windows partition
    # time exactly: cycle after cycle, every sample point is counted once.
    accounted_to = _floor(at, step)
    all_spans = {
        n: int((accounted_to - _floor(s, step)).total_seconds()) for n, s in windows.items()
    }
    spans = {name: span for name, span in all_spans.items() if span > 0}
    longest = max([interval_seconds, *spans.values()])
    # The current rate comes from a one-step window when there is one (steady state: the
    # window since the last cycle); otherwise from its own query.
    rate_window = next((n for n, span in spans.items() if span == step), None)
    unit_span = max(interval_seconds, UNIT_COST_SPAN_SECONDS // step * step)
    exprs: dict[str, str] = {
        "nodes": promql.node_labels(longest),
        "owners": promql.pod_owners(longest),
        "util": promql.gpu_utilization(interval_seconds, step),
    }
    if unit_costs:  # GPU cost, tokens and requests over one span (the trailing hour, or a
        # younger server's life), ending at accounted_to
        end = int(accounted_to.timestamp())
        exprs["unit:gpu"] = promql.vllm_serving_gpu_samples(unit_span, step, end)
        exprs["unit:tokens"] = promql.vllm_tokens(unit_span)
        exprs["unit:requests"] = promql.vllm_requests(unit_span)
    if rate_window is None:
        exprs["now"] = promql.gpu_allocation()
    steps = {name: window_step(span, step) for name, span in spans.items()}
    interval_start = at.timestamp() - interval_seconds
    for name, span in spans.items():
        exprs[f"hours:{name}"] = promql.gpu_samples(span, steps[name])
        # idle dollars need each pod's utilisation over the window; the interval's serves
        # a window inside it (steady state), a longer one gets its own query
        if accounted_to.timestamp() - span < interval_start:
            exprs[f"util:{name}"] = promql.gpu_utilization(span, steps[name])
    empty = frozenset(n for n, span in all_spans.items() if span <= 0)
    return _Plan(accounted_to, spans, steps, empty, rate_window, exprs)


async def _run(
    source: PrometheusSource, plan: _Plan, at: datetime
) -> tuple[dict[str, QueryResult], list[str]]:
    """Every query at once; results by name, and the errors (a failed query is reported)."""
    names = list(plan.exprs)
    outcomes = await asyncio.gather(
        *(source.query(plan.exprs[n], plan.accounted_to if ":" in n else at) for n in names),
        return_exceptions=True,
    )
    results: dict[str, QueryResult] = {}
    errors: list[str] = []
    for name, outcome in zip(names, outcomes, strict=True):
        if isinstance(outcome, MetricsError):
            errors.append(str(outcome))
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            results[name] = outcome
    return results, errors


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
) -> Snapshot:
    """Run one cycle's queries concurrently and price what they return.

    `live_node_labels` and `live_pod_owners` (the Job of each GPU pod the API shows, or
    None) are exact and win over what Prometheus says. `unit_costs`: measure vLLM pods'
    cost, tokens and requests (three queries; only InferenceDeployments read them)."""
    plan = _plan(at, windows, interval_seconds, step_seconds, unit_costs)
    results, errors = await _run(source, plan, at)
    warnings = tuple(w for r in results.values() for w in r.warnings)
    if errors:
        return Snapshot(
            at, {}, (), {}, {}, {}, {}, interval_seconds, {}, len(plan.exprs), warnings,
            "; ".join(errors), plan.accounted_to,
        )  # fmt: skip
    nodes = _nodes(results["nodes"], live_node_labels, catalog)
    utilization = _by_pod(results["util"])
    spend = {
        name: WindowSpend(
            windows[name],
            tuple(price_usage(_usage(results[f"hours:{name}"], plan.steps[name]), nodes)),
            _by_pod(results[f"util:{name}"]) if f"util:{name}" in results else utilization,
        )
        for name in plan.spans
    }
    spend.update({name: WindowSpend(windows[name], ()) for name in plan.empty})
    # the one-step window's single sample point is the GPUs held now
    now_query = "now" if plan.rate_window is None else f"hours:{plan.rate_window}"
    owners = attribute(_owners(results["owners"]), live_pod_owners or {})
    return Snapshot(
        at=at,
        windows=spend,
        hourly=tuple(price_usage(_usage(results[now_query], 3600), nodes)),
        owners=owners.jobs,
        utilization=utilization,
        tokens=_by_pod(results["unit:tokens"]) if unit_costs else {},
        requests=_by_pod(results["unit:requests"]) if unit_costs else {},
        interval_seconds=interval_seconds,
        nodes=nodes,
        queries=len(plan.exprs),
        warnings=warnings,
        accounted_to=plan.accounted_to,
        owners_known=owners.known,
        unit_costs=tuple(price_usage(_usage(results["unit:gpu"], step_seconds), nodes))
        if unit_costs
        else (),
    )
