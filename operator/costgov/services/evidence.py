"""What recommendations rest on: per-pod GPU and vLLM figures over an evidence window, read
with a fixed set of cluster-wide queries (never one per pod), and the advice a workload's
running pods earn from them (domain/advising.py).

A query that fails costs only its own figure (the rules that need it say nothing). The
operator reads the evidence in the background every `advice_refresh_minutes` (default 15),
on two threads of its own: a reconcile never waits for it, nor for threads it holds.
Evidence older than four refreshes (at least an hour) is stale: advice resting on it goes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from costgov.adapters import promql_advice
from costgov.adapters.prometheus import MetricsError, PrometheusSource, try_query
from costgov.domain.advising import GpuUse, Running, ServingUse, right_size, serving_advice
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.offerings import Offering
from costgov.domain.recommending import Advice
from costgov.domain.spend import PodCost

__all__ = [
    "EvidenceCache",
    "PodEvidence",
    "advice_for",
    "collect_evidence",
    "seasoned",
    "window_label",
]

log = logging.getLogger(__name__)
PodKey = tuple[str, str]
MAX_POINTS = 288
"""Sample points of the idle-share sub-query (every 5 minutes over a day)."""
MIN_OBSERVED_SECONDS = 6 * 3600
"""Pods younger than this (or than the window, if shorter) get no advice yet."""


@dataclass(frozen=True)
class PodEvidence:
    """Figures by pod over `window_seconds` up to `at`; `error` set: none could be read;
    `missing` names figures whose query failed."""

    at: datetime
    window_seconds: int
    figures: Mapping[str, Mapping[PodKey, float]] = field(default_factory=dict)
    hourly_requests: Mapping[PodKey, Mapping[float, float]] = field(default_factory=dict)
    error: str | None = None
    missing: tuple[str, ...] = ()
    stale: bool = False
    """Read once, but too long ago to rest advice on (reads have failed since)."""


def window_label(seconds: int) -> str:
    """How a window is shown: hours up to two days (24h), whole days beyond (7d)."""
    if seconds > 2 * 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{max(1, seconds // 60)}m"


async def collect_evidence(source: PrometheusSource, at: datetime, window: int) -> PodEvidence:
    """The figures advice rests on, one query each, side by side."""
    step = max(60, math.ceil(window / MAX_POINTS / 60) * 60)
    queries = promql_advice.advice_evidence(window, step)
    results = await asyncio.gather(*(try_query(source, q, at) for q in queries.values()))
    figures: dict[str, dict[PodKey, float]] = {}
    missing = []
    for name, r in zip(queries, results, strict=True):
        if isinstance(r, MetricsError):
            missing.append(f"{name}: {r}"[:300])
            continue
        figures[name] = {
            (s.labels.get("namespace", ""), s.labels.get("pod", "")): s.value
            for s in r.samples
            if not math.isnan(s.value)
        }
    hourly: dict[PodKey, dict[float, float]] = {}
    if window >= 2 * 3600:  # a shorter window has no whole hours to tell idle ones by
        try:
            series, _ = await source.query_range(
                promql_advice.vllm_hourly_requests(),
                at - timedelta(seconds=window - 3600),
                at,
                3600,
            )
            hourly = {
                (s.labels.get("namespace", ""), s.labels.get("pod", "")): dict(s.points)
                for s in series
            }
        except MetricsError as exc:
            missing.append(f"hourly requests: {exc}"[:300])
    if not figures:
        return PodEvidence(at, window, error="; ".join(missing)[:1000], missing=tuple(missing))
    return PodEvidence(at, window, figures, hourly, missing=tuple(missing))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _age(ev: PodEvidence, pod: PodKey) -> int:
    """Seconds a pod has run within the window (the whole window when its start is not
    known: kube_pod_start_time not kept)."""
    started = ev.figures.get("started", {}).get(pod)
    if started is None:
        return ev.window_seconds
    return max(0, min(ev.window_seconds, int(ev.at.timestamp() - started)))


def seasoned(ev: PodEvidence, pods: Collection[PodKey]) -> list[PodKey]:
    """The pods old enough for advice: six hours, or the window if shorter (a pod loading
    its model, or just scaled up, is not judged idle)."""
    least = min(MIN_OBSERVED_SECONDS, ev.window_seconds * 0.9)
    return [k for k in pods if _age(ev, k) >= least]


def _gpu_use(ev: PodEvidence, pods: Collection[PodKey], observed: int) -> GpuUse:
    f = ev.figures

    def each(name: str) -> list[float]:
        return [f[name][k] for k in pods if k in f.get(name, {})]

    memory = each("memory")
    return GpuUse(
        window_label(observed),
        busy_percent=_mean(each("busy")),
        idle_share=_mean(each("idle")),
        peak_memory_mib=max(memory) if memory else None,
    )


def _serving_use(ev: PodEvidence, pods: Collection[PodKey], observed: int) -> ServingUse | None:
    f = ev.figures
    if not any(k in f.get(n, {}) for k in pods for n in ("running", "prompt", "generated")):
        return None

    def total(name: str) -> float | None:
        found = [f[name][k] for k in pods if k in f.get(name, {})]
        return sum(found) if found else None

    kv = [f["kv"][k] for k in pods if k in f.get("kv", {})]
    by_hour: dict[float, float] = {}
    for k in pods:
        for ts, n in ev.hourly_requests.get(k, {}).items():
            by_hour[ts] = by_hour.get(ts, 0.0) + n
    return ServingUse(
        window_label(observed),
        running=total("running"), waiting=total("waiting"), kv_usage=max(kv) if kv else None,
        prompt_tokens=total("prompt"), generation_tokens=total("generated"),
        prefix_queries=total("prefix"), idle_hours=sum(1 for n in by_hour.values() if n == 0),
        observed_hours=len(by_hour),
    )  # fmt: skip


def _running(lines: list[PodCost], nodes: Mapping[str, object], ev: PodEvidence) -> Running:
    """`lines` priced on Offerings (the caller checks), as one Running."""
    top = max(lines, key=lambda c: c.cost or 0)
    offering = nodes[top.usage.node]
    assert isinstance(offering, Offering)
    cpu = [ev.figures.get("cpu", {}).get(c.usage.key) for c in lines]
    ram = [ev.figures.get("ram", {}).get(c.usage.key) for c in lines]
    known_cpu, known_ram = [v for v in cpu if v is not None], [v for v in ram if v is not None]
    return Running(
        hourly=sum((c.cost or Decimal(0) for c in lines), Decimal(0)),
        pods=len(lines),
        gpus_per_pod=max(c.usage.gpu_hours for c in lines),
        offering=offering,
        cpu=Decimal(repr(max(known_cpu))) if known_cpu else None,
        memory_gib=Decimal(repr(max(known_ram))) / 2**30 if known_ram else None,
    )


def _alike(lines: list[PodCost], nodes: Mapping[str, object]) -> list[list[PodCost]]:
    """Pods grouped by what they run on (node type, capacity, GPUs held): each group is
    right-sized on its own, so no saving is told at one group's price for another's pods."""
    groups: dict[tuple[object, ...], list[PodCost]] = {}
    for c in lines:
        o = nodes[c.usage.node]
        assert isinstance(o, Offering)
        key = (o.provider, o.region, o.instance_type, o.gpu_model, o.capacity, c.usage.gpu_hours)
        groups.setdefault(key, []).append(c)
    return list(groups.values())


def advice_for(
    pods: Collection[PodKey],
    hourly: list[PodCost],
    nodes: Mapping[str, object],
    evidence: PodEvidence | None,
    catalog: PriceCatalog,
    *,
    min_replicas: int = 0,
) -> list[Advice]:
    """Right-sizing or serving advice for one workload's running pods (`hourly`: running
    pods' current $/h lines; only those in `pods` count). A model server (vLLM figures) is
    judged on its load, not its memory (vLLM preallocates it); pods younger than six hours
    (or the window) are left out until they are not."""
    if evidence is None or evidence.error is not None:
        return []
    old_enough = set(seasoned(evidence, pods))
    priced = [c for c in hourly if c.usage.key in old_enough and c.cost is not None
              and isinstance(nodes.get(c.usage.node), Offering)]  # fmt: skip
    keys = [c.usage.key for c in priced]
    if not priced:
        return []
    observed = min(_age(evidence, k) for k in keys)
    serving = _serving_use(evidence, keys, observed)
    if serving is not None:
        busy = _gpu_use(evidence, keys, observed).busy_percent
        run = _running(priced, nodes, evidence)
        return serving_advice(
            run, serving, busy_percent=busy, min_replicas=min_replicas, catalog=catalog
        )
    found = []
    for group in _alike(priced, nodes):
        use = _gpu_use(evidence, [c.usage.key for c in group], observed)
        found.append(right_size(_running(group, nodes, evidence), use, catalog))
    return [a for a in found if a is not None]


class EvidenceCache:
    """Evidence read in the background, at most once per `refresh` seconds (a failed read is
    retried after a minute, the last good evidence kept meanwhile; once reads have failed for
    longer than four refreshes after it, it is stale); `get` never waits."""

    def __init__(self, source: PrometheusSource, *, window: int, refresh: int) -> None:
        self._source, self._window, self._refresh = source, window, refresh
        self._found: PodEvidence | None = None
        self._found_at = -math.inf
        self._failed = self._closed = False
        self._tried = -math.inf
        self._task: asyncio.Task[None] | None = None

    @property
    def max_age(self) -> float:
        return max(3600.0, 4.0 * self._refresh)

    def get(self, at: datetime) -> PodEvidence | None:
        """The evidence now (None: none yet, or too old); starts a read when one is due."""
        wait = 60 if self._failed else self._refresh
        idle = self._task is None or self._task.done()
        if not self._closed and idle and time.monotonic() - self._tried >= wait:
            self._tried = time.monotonic()
            self._task = asyncio.get_running_loop().create_task(
                self._read(at), name="costgov recommendation evidence"
            )
        old = time.monotonic() - self._found_at > self.max_age
        if self._found is not None and self._failed and old:  # reads failing that long
            return PodEvidence(at, self._window, error="evidence too old", stale=True)
        return self._found

    async def _read(self, at: datetime) -> None:
        try:
            new = await collect_evidence(self._source, at, self._window)
        except Exception:  # a bug must not end the reads for good; logged, retried
            log.exception("reading recommendation evidence failed")
            self._failed = True
            return
        self._failed = new.error is not None
        if new.error is not None:
            log.warning("recommendation evidence unreadable (last good kept): %s", new.error)
            return
        for missing in new.missing:
            log.warning("recommendation evidence incomplete: %s", missing)
        self._found, self._found_at = new, time.monotonic()

    def close(self) -> None:
        """Stop a read under way, and any later one (the operator is stopping)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        self._source.close()
