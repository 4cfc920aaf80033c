"""Issuing one plan's PromQL queries: all at once, each at its own evaluation time, then a
second round for pods a history query saw as several pod objects (services/planning.py
says what to ask; services/accounting.py prices the answers)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from costgov.adapters import promql
from costgov.adapters.prometheus import (
    MetricsError,
    PrometheusSource,
    QueryResult,
    Sample,
    try_all,
    try_query,
)
from costgov.services.owner_round import ask_owners, unseen_pods
from costgov.services.placement import place, summed, unplaced
from costgov.services.planning import Plan, name_batches, unit_span

__all__ = [
    "Answers",
    "PodKey",
    "follow_up",
    "retake_moved",
    "run",
    "serving_gpu",
    "settle_utilization",
]

PodKey = tuple[str, str]


@dataclass
class Answers:
    """What the cycle's queries returned: results, and the failed ones' errors, by name."""

    results: dict[str, QueryResult]
    errors: dict[str, str]
    catchup_seconds: float | None
    unplaced: dict[str, set[PodKey]] = field(default_factory=dict)
    """Pods each point-by-point answer could not place on one node (services/placement.py):
    asked for again in the second round."""


async def run(source: PrometheusSource, cycle: Plan) -> Answers:
    """Every query at once, each at its own evaluation time; a failure is reported. A
    query answered point by point (`cycle.points`) is summed per series, and the rate
    window's last point is the cycle's `now`."""

    async def timed(name: str) -> tuple[dict[str, QueryResult], float] | MetricsError:
        began = time.monotonic()
        result = await _ask(source, cycle, name, answers.unplaced)
        return result if isinstance(result, MetricsError) else (result, time.monotonic() - began)

    answers = Answers({}, {}, None)
    names = list(cycle.exprs)
    outcomes = await asyncio.gather(*(timed(n) for n in names), return_exceptions=True)
    for name, outcome in zip(names, outcomes, strict=True):
        if isinstance(outcome, MetricsError):
            answers.errors[name] = str(outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            answers.results.update(outcome[0])
            if cycle.owner[name]:
                answers.catchup_seconds = max(answers.catchup_seconds or 0.0, outcome[1])
    return answers


async def _ask(
    source: PrometheusSource, cycle: Plan, name: str, unplaced_pods: dict[str, set[PodKey]]
) -> dict[str, QueryResult] | MetricsError:
    """One query's results by name: its own, and `now` from the rate window's points (the
    pods those cannot place written to `unplaced_pods`)."""
    expr, at = cycle.exprs[name], cycle.times[name]
    if name not in cycle.points:
        result = await try_query(source, expr, at)
        return result if isinstance(result, MetricsError) else {name: result}
    try:
        series, warnings = await source.points(expr, at)
    except MetricsError as exc:
        return exc
    unplaced_pods[name] = unplaced(series)
    return summed(cycle, name, series, warnings, at)


async def follow_up(
    source: PrometheusSource,
    cycle: Plan,
    answers: Answers,
    interval: tuple[int, int],
    serving: Collection[PodKey] | None = None,
    live: Collection[PodKey] = (),
    owners_in: Collection[str] | None = None,
) -> int:
    """The second round after `run`: pods a history query saw as several objects taken
    again, utilisation means settled, the GPU time of pods that count tokens (of
    `serving` only, when given) over the unit-cost span of `interval` (seconds, step),
    and, when the plan left them for now, the owners of the pods counted that the API
    does not show (`live`), of the `owners_in` namespaces only when given. Returns how many queries it made: none when a query of the
    cycle's own failed (the snapshot is an error, and Prometheus is not asked more), none
    for a chunk of history one query of which failed."""
    failed = {cycle.owner.get(name, "") for name in answers.errors}
    if "" in failed:
        return 0
    for name in [n for n in answers.results if cycle.owner.get(n, "") in failed]:
        del answers.results[name]  # a chunk that failed is not asked for more: it is retried
    unseen = unseen_pods(cycle, answers.results, live, owners_in) if cycle.owners_later else None
    counts = await asyncio.gather(
        retake_moved(source, cycle, answers),
        settle_utilization(source, cycle, answers),
        serving_gpu(source, cycle, answers, interval, serving),
        _owners(source, cycle, answers, unseen, interval[0]),
        _placed(source, cycle, answers),
    )  # each writes its own results and errors
    return sum(counts)


async def _placed(source: PrometheusSource, cycle: Plan, answers: Answers) -> int:
    asked, errors = await place(source, cycle, answers.results, answers.unplaced)
    for name, error in errors.items():
        answers.errors[name] = error
        answers.results.pop(name, None)
        if name == f"hours:{cycle.rate_window}":
            answers.results.pop("now", None)
    return asked


async def _owners(
    source: PrometheusSource,
    cycle: Plan,
    answers: Answers,
    unseen: set[PodKey] | None,
    interval: int,
) -> int:
    if unseen is None:
        return 0  # asked for in the first round
    found, asked = await ask_owners(source, cycle, unseen, interval)
    if isinstance(found, MetricsError):
        answers.errors["owners"] = str(found)
    else:
        answers.results["owners"] = found
    return asked


def _moved(result: QueryResult) -> tuple[set[PodKey], set[PodKey]]:
    """Pods a history query saw as more than one pod object (lines of several nodes or uids,
    or promql.SEVERAL_OBJECTS: several uids among its requests), and pods seen as one
    object that several Running series report (promql.SEVERAL_SERIES)."""
    seen: dict[PodKey, int] = {}
    several: set[PodKey] = set()
    for s in result.samples:
        key = _key(s.labels)
        seen[key] = seen.get(key, 0) + (2 if s.value >= promql.SEVERAL_OBJECTS else 1)
        if s.value >= promql.SEVERAL_SERIES:
            several.add(key)
    moved = {key for key, count in seen.items() if count > 1}
    return moved, several - moved


def _again(
    moved: set[PodKey], several: set[PodKey], span: int, step: int
) -> list[tuple[set[PodKey], str, bool]]:
    """The queries taking these pods again: pods seen as several objects by the exact
    per-point join, pods several series report by the history form that merges series at
    each point; by name, or past MOST_BATCHES batches for every pod at once."""
    asked: list[tuple[set[PodKey], str, bool]] = []
    for pods, join in ((moved, True), (several, False)):
        for batch in name_batches(sorted({pod for _, pod in pods})):
            names = None if batch is None else set(batch)
            keys = pods if names is None else {k for k in pods if k[1] in names}
            asked.append((keys, _retake_expr(join, batch, span, step), join))
    return asked


def _retake_expr(join: bool, pods: list[str] | None, span: int, step: int) -> str:
    if not join:
        return promql.gpu_samples_history(span, step, pods, merged=True)
    return (
        promql.gpu_samples(span, step) if pods is None else promql.gpu_samples_of(pods, span, step)
    )


async def retake_moved(source: PrometheusSource, cycle: Plan, answers: Answers) -> int:
    """Second round: pods a window's history query could not count alone (seen as several
    pod objects, on several nodes or recreated under the name; or reported by several
    Running series) taken again exactly, narrowed to their names (`_again`). Returns how
    many queries it made."""
    asked: list[tuple[str, set[PodKey], str, bool]] = []
    for name, span in cycle.spans.items():
        key = f"hours:{name}"
        if key not in answers.results or span <= cycle.steps[name] or key in cycle.points:
            continue  # failed, or asked for by the exact join already
        moved, several = _retakeable(answers, key)
        asked += [(key, *again) for again in _again(moved, several, span, cycle.steps[name])]

    async def timed(key: str, expr: str) -> tuple[QueryResult, float] | MetricsError:
        began, result = time.monotonic(), await try_query(source, expr, cycle.times[key])
        return result if isinstance(result, MetricsError) else (result, time.monotonic() - began)

    outcomes = await asyncio.gather(
        *(timed(key, expr) for key, _, expr, _ in asked), return_exceptions=True
    )
    for (key, batch, _, join), outcome in zip(asked, outcomes, strict=True):
        if isinstance(outcome, MetricsError):
            answers.errors[key] = str(outcome)
            continue
        if isinstance(outcome, BaseException):
            raise outcome
        if cycle.owner[key]:
            answers.catchup_seconds = max(answers.catchup_seconds or 0.0, outcome[1])
        first, again = answers.results[key], outcome[0]
        kept = [s for s in first.samples if _key(s.labels) not in batch]
        exact = [s for s in again.samples if _key(s.labels) in batch]
        if not join:  # one object each: an object Prometheus took in since is not added
            objects = {_object(s.labels) for s in first.samples if _key(s.labels) in batch}
            exact = [s for s in exact if _object(s.labels) in objects]
        answers.results[key] = QueryResult((*kept, *exact), (*first.warnings, *again.warnings))
    for key in {k for k, _, _, _ in asked if k in answers.errors}:
        answers.results.pop(key, None)
    return len(asked)


async def serving_gpu(
    source: PrometheusSource,
    cycle: Plan,
    answers: Answers,
    interval: tuple[int, int],
    serving: Collection[PodKey] | None = None,
) -> int:
    """The GPU time of the pods `unit:tokens` saw count tokens (those of `serving` only,
    when given), over the same span (`unit:gpu`), asked for by name, MOVED_PER_QUERY pods a
    query: none when no pod serves a model. Returns how many queries it made."""
    if "unit:tokens" not in answers.results:
        return 0  # unit costs not asked for, or the tokens failed (the cycle failed)
    counting = _by_key(answers.results["unit:tokens"])
    keys = [k for k in counting if k[1] and (serving is None or k in serving)]
    names = sorted({pod for _, pod in keys})
    bad = [n for n in names if not promql.POD_NAME.fullmatch(n)]
    names = [n for n in names if promql.POD_NAME.fullmatch(n)]
    step = interval[1]
    span, end = unit_span(*interval), int(cycle.accounted_to.timestamp())
    batches = name_batches(names)
    exprs = [promql.vllm_serving_gpu_samples(span, step, end, b) for b in batches]
    found = await try_all(source, exprs, cycle.accounted_to)
    if isinstance(found, MetricsError):
        answers.errors["unit:gpu"] = str(found)
    else:
        left_out = [f"left out {len(bad)} token-counting series named as no Kubernetes pod is"]
        warnings = (*(left_out if bad else ()), *found.warnings)
        answers.results["unit:gpu"] = QueryResult(found.samples, warnings)
    return len(batches)


GpuKey = tuple[str, str, str, str, str]
"""A GPU of a pod: namespace, pod, gpu, UUID, GPU_I_ID (promql.GPU_IDENTITY)."""


def _gpu(labels: Mapping[str, str]) -> GpuKey:
    """The pod and GPU a dcgm-exporter series reports: the exported_* labels when set
    (scraped without honor_labels), else namespace and pod."""
    exported = bool(labels.get("exported_pod"))
    ns = labels.get("exported_namespace", "") if exported else labels.get("namespace", "")
    pod = labels.get("exported_pod", "") if exported else labels.get("pod", "")
    return (ns, pod, labels.get("gpu", ""), labels.get("UUID", ""), labels.get("GPU_I_ID", ""))


def _pod_means(result: QueryResult) -> tuple[dict[PodKey, float], set[PodKey]]:
    """Per-series means (promql.gpu_utilization_series) as each pod's mean over its GPUs,
    for pods every GPU of which one series reports with no NaN reading; and the other pods,
    to be asked for exactly."""
    per_gpu: dict[GpuKey, list[float]] = {}
    for s in result.samples:
        key = _gpu(s.labels)
        if key[1]:  # a GPU no pod holds has no pod to count for
            per_gpu.setdefault(key, []).append(s.value)
    unsettled = {k[:2] for k, v in per_gpu.items() if len(v) != 1 or math.isnan(v[0])}
    gpus: dict[PodKey, list[float]] = {}
    for key, values in per_gpu.items():
        if key[:2] not in unsettled:
            gpus.setdefault((key[0], key[1]), []).append(values[0])
    return {pod: sum(v) / len(v) for pod, v in gpus.items()}, unsettled


async def settle_utilization(source: PrometheusSource, cycle: Plan, answers: Answers) -> int:
    """Each utilisation query's per-series means merged into one mean per pod; pods a GPU of
    which several series report (an exporter replaced, two scrape jobs, label styles) or
    with a NaN reading asked for again with the exact per-point merge, by name, in batches.
    Returns how many queries it made."""
    asked: list[tuple[str, list[str] | None]] = []
    means: dict[str, dict[PodKey, float]] = {}
    warnings: dict[str, list[str]] = {}
    for name in cycle.util:
        if name not in answers.results:
            continue
        means[name], unsettled = _pod_means(answers.results[name])
        names = sorted({pod for _, pod in unsettled if promql.POD_NAME.fullmatch(pod)})
        warnings[name] = list(answers.results[name].warnings)
        if bad := {k for k in unsettled if not promql.POD_NAME.fullmatch(k[1])}:
            warnings[name].append(
                f"left out the GPU utilisation of {len(bad)} series named as no Kubernetes pod is"
            )
        asked += [(name, batch) for batch in name_batches(names)]

    async def exact(name: str, pods: list[str] | None) -> QueryResult | MetricsError:
        window, step = cycle.util[name]
        return await try_query(
            source, promql.gpu_utilization(window, step, pods), cycle.times[name]
        )

    outcomes = await asyncio.gather(*(exact(n, p) for n, p in asked), return_exceptions=True)
    for (name, _), outcome in zip(asked, outcomes, strict=True):
        if isinstance(outcome, BaseException) and not isinstance(outcome, MetricsError):
            raise outcome
        if isinstance(outcome, MetricsError):
            answers.errors[name] = str(outcome)
        else:
            means[name].update(_by_pod_value(outcome))
            warnings[name] += outcome.warnings
    for name, by_pod in means.items():
        if name in answers.errors:
            answers.results.pop(name, None)
            continue
        samples = tuple(Sample({"namespace": ns, "pod": pod}, v) for (ns, pod), v in by_pod.items())
        answers.results[name] = QueryResult(samples, tuple(warnings[name]))
    return len(asked)


def _by_pod_value(result: QueryResult) -> dict[PodKey, float]:
    return {_key(s.labels): s.value for s in result.samples if not math.isnan(s.value)}


def _object(labels: Mapping[str, str]) -> tuple[str, str, str, str]:
    return (*_key(labels), labels.get("node", ""), labels.get("uid", ""))


def _by_key(result: QueryResult) -> set[PodKey]:
    return {_key(s.labels) for s in result.samples}


def _retakeable(answers: Answers, key: str) -> tuple[set[PodKey], set[PodKey]]:
    """The pods of `key`'s result to take again exactly (`_moved`); lines of pods whose
    name is no Kubernetes name (no pod of a cluster) are dropped, with a warning, never
    queried."""
    moved, several = _moved(answers.results[key])
    bad = {k for k in moved | several if not promql.POD_NAME.fullmatch(k[1])}
    if bad:
        first = answers.results[key]
        note = f"left out GPU samples of {len(bad)} series named as no Kubernetes pod is"
        kept = tuple(s for s in first.samples if _key(s.labels) not in bad)
        answers.results[key] = QueryResult(kept, (*first.warnings, note))
    return moved - bad, several - bad


def _key(labels: Mapping[str, str]) -> PodKey:
    return (labels.get("namespace", ""), labels.get("pod", ""))
