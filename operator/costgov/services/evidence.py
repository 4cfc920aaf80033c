"""What recommendations rest on: per-pod GPU and vLLM figures over an evidence window, read
with a fixed set of cluster-wide queries (never one per pod), and the advice a workload's
running pods earn from them (domain/advising.py).

The operator reads the evidence every `advice_refresh_minutes` (default 15), not every
cycle: it looks back a day, and a recommendation needs no fresher figures.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from costgov.adapters import promql
from costgov.adapters.prometheus import MetricsError, PrometheusSource, try_query
from costgov.domain.advising import GpuUse, Running, ServingUse, right_size, serving_advice
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.offerings import Offering
from costgov.domain.recommending import Advice
from costgov.domain.spend import PodCost

__all__ = ["EvidenceCache", "PodEvidence", "advice_for", "collect_evidence", "window_label"]

PodKey = tuple[str, str]
MAX_POINTS = 720


@dataclass(frozen=True)
class PodEvidence:
    """Figures by pod over `window_seconds` up to `at`; `error` set: none could be read."""

    at: datetime
    window_seconds: int
    figures: Mapping[str, Mapping[PodKey, float]] = field(default_factory=dict)
    hourly_requests: Mapping[PodKey, Mapping[float, float]] = field(default_factory=dict)
    error: str | None = None


def window_label(seconds: int) -> str:
    """How a window is shown: hours up to two days (24h), whole days beyond (7d)."""
    if seconds > 2 * 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


async def collect_evidence(source: PrometheusSource, at: datetime, window: int) -> PodEvidence:
    """The figures advice rests on, one query each, side by side."""
    step = max(60, math.ceil(window / MAX_POINTS / 60) * 60)
    queries = promql.advice_evidence(window, step)
    results = await asyncio.gather(*(try_query(source, q, at) for q in queries.values()))
    failed = [f"{name}: {r}" for name, r in zip(queries, results, strict=True)
              if isinstance(r, MetricsError)]  # fmt: skip
    if failed:
        return PodEvidence(at, window, error="; ".join(failed)[:500])
    figures = {
        name: {
            (s.labels.get("namespace", ""), s.labels.get("pod", "")): s.value
            for s in r.samples  # type: ignore[union-attr]
            if not math.isnan(s.value)
        }
        for name, r in zip(queries, results, strict=True)
    }
    try:
        series, _ = await source.query_range(
            promql.vllm_hourly_requests(), at - timedelta(seconds=window - 3600), at, 3600
        )
    except MetricsError as exc:
        return PodEvidence(at, window, error=f"hourly requests: {exc}"[:500])
    hourly = {
        (s.labels.get("namespace", ""), s.labels.get("pod", "")): dict(s.points) for s in series
    }
    return PodEvidence(at, window, figures, hourly)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _gpu_use(ev: PodEvidence, pods: Collection[PodKey]) -> GpuUse:
    f = ev.figures

    def each(name: str) -> list[float]:
        return [f[name][k] for k in pods if k in f.get(name, {})]

    memory = each("memory")
    return GpuUse(
        window_label(ev.window_seconds),
        busy_percent=_mean(each("busy")),
        idle_share=_mean(each("idle")),
        peak_memory_mib=max(memory) if memory else None,
    )


def _serving_use(ev: PodEvidence, pods: Collection[PodKey]) -> ServingUse | None:
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
        window_label(ev.window_seconds),
        running=total("running"), waiting=total("waiting"), kv_usage=max(kv) if kv else None,
        prompt_tokens=total("prompt"), generation_tokens=total("generated"),
        prefix_queries=total("prefix"), idle_hours=sum(1 for n in by_hour.values() if n == 0),
        observed_hours=len(by_hour),
    )  # fmt: skip


def _running(lines: list[PodCost], nodes: Mapping[str, object], ev: PodEvidence) -> Running | None:
    priced = [
        c for c in lines if c.cost is not None and isinstance(nodes.get(c.usage.node), Offering)
    ]
    if not priced:
        return None
    top = max(priced, key=lambda c: c.cost or 0)
    offering = nodes[top.usage.node]
    assert isinstance(offering, Offering)
    cpu = [ev.figures.get("cpu", {}).get(c.usage.key) for c in priced]
    ram = [ev.figures.get("ram", {}).get(c.usage.key) for c in priced]
    known_cpu, known_ram = [v for v in cpu if v is not None], [v for v in ram if v is not None]
    return Running(
        hourly=sum((c.cost or Decimal(0) for c in priced), Decimal(0)),
        pods=len(priced),
        gpus_per_pod=max(c.usage.gpu_hours for c in priced),
        offering=offering,
        cpu=Decimal(repr(max(known_cpu))) if known_cpu else None,
        memory_gib=Decimal(repr(max(known_ram))) / 2**30 if known_ram else None,
    )


def advice_for(
    pods: Collection[PodKey],
    hourly: list[PodCost],
    nodes: Mapping[str, object],
    evidence: PodEvidence | None,
    catalog: PriceCatalog,
    *,
    min_replicas: int = 0,
) -> list[Advice]:
    """Right-sizing and serving advice for one workload's running pods (`hourly`: every
    running pod's current $/h line; only those in `pods` count)."""
    if evidence is None or evidence.error is not None:
        return []
    run = _running([c for c in hourly if c.usage.key in pods], nodes, evidence)
    if run is None:
        return []
    keys = list(pods)
    use = _gpu_use(evidence, keys)
    found = [right_size(run, use, catalog)]
    serving = _serving_use(evidence, keys)
    if serving is not None:
        found += serving_advice(
            run, serving, busy_percent=use.busy_percent, min_replicas=min_replicas, catalog=catalog
        )
    return [a for a in found if a is not None]


class EvidenceCache:
    """Evidence read at most once per `refresh` seconds (a failed read is retried after a
    minute, keeping the last good evidence meanwhile), shared by every reconciler."""

    def __init__(self, source: PrometheusSource, *, window: int, refresh: int) -> None:
        self._source, self._window, self._refresh = source, window, refresh
        self._found: PodEvidence | None = None
        self._failed = False
        self._tried = -math.inf
        self._lock = asyncio.Lock()

    async def get(self, at: datetime) -> PodEvidence | None:
        async with self._lock:
            wait = 60 if self._failed else self._refresh
            if time.monotonic() - self._tried >= wait:
                self._tried = time.monotonic()
                new = await collect_evidence(self._source, at, self._window)
                self._failed = new.error is not None
                # a failed read keeps the last good evidence (recommendations stay put)
                if not self._failed or self._found is None or self._found.error:
                    self._found = new
            return self._found
