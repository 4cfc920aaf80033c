"""A workload's advice from per-pod evidence (services/evidence.py `advice_for`): pods on
different node types are right-sized apart, model servers on their load, young pods not at
all. Prices from the bundled list: p5.48xlarge 55.04 / 8 = 6.88 $/GPU-h, g6.xlarge 0.8048,
g6e.xlarge (L40S) 1.861; a month is 730 hours."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from costgov.adapters.prometheus import MetricsError, QueryResult, Sample
from costgov.api.advice import Recommendation
from costgov.domain.money import cents
from costgov.domain.offerings import Offering, offering_for_node
from costgov.domain.spend import PodCost, PodUsage
from costgov.services.advice import keeps_standing, with_evidence
from costgov.services.evidence import EvidenceCache, PodEvidence, advice_for

from .helpers import CATALOG

AT = datetime(2026, 12, 1, 12, tzinfo=UTC)
DAY = 86400


def _node(instance_type: str) -> Offering:
    found = offering_for_node({"node.kubernetes.io/instance-type": instance_type,
                               "topology.kubernetes.io/region": "us-east-1"}, CATALOG)  # fmt: skip
    assert isinstance(found, Offering)
    return found


NODES = {"p5": _node("p5.48xlarge"), "g6": _node("g6.xlarge")}


def _line(pod: str, node: str, hourly: str) -> PodCost:
    return PodCost(PodUsage("ns", pod, node, Decimal(3600)), Decimal(hourly))


def _evidence(**figures: dict[tuple[str, str], float]) -> PodEvidence:
    return PodEvidence(AT, DAY, figures)


def test_pods_on_different_nodes_are_right_sized_apart() -> None:
    # a on a p5 (6.88), b on a g6.xlarge (0.8048): the workload costs 7.6848 x 730 =
    # 5,609.90 a month. a: 20 % busy, 12,000 MiB -> g6e.xlarge, (6.88 - 1.861) x 730 =
    # 3,663.87; b: an L4 already, nothing cheaper, two would not fit one: nothing
    lines = [_line("a", "p5", "6.88"), _line("b", "g6", "0.8048")]
    pods = {("ns", "a"), ("ns", "b")}
    both = {("ns", "a"): 20.0, ("ns", "b"): 20.0}
    memory = {("ns", "a"): 12000.0, ("ns", "b"): 12000.0}
    found = advice_for(pods, lines, NODES, _evidence(busy=both, memory=memory), CATALOG)
    assert [(a.kind, cents(a.monthly_saving or Decimal(0))) for a in found] == [
        ("smaller-gpu", Decimal("3663.87"))]  # fmt: skip


def test_a_model_server_is_judged_on_its_load_not_idle_samples() -> None:
    # a small model keeps the GPU under 5 % busy almost always, yet serves traffic: no
    # idle-gpu (nor sharing on a memory figure vLLM preallocates); its load says batching
    # has nothing to give with one replica
    pod = {("ns", "a"): 1.0}
    evidence = _evidence(busy={("ns", "a"): 2.0}, idle={("ns", "a"): 0.97}, running=pod,
                         waiting={("ns", "a"): 0.0})  # fmt: skip
    found = advice_for({("ns", "a")}, [_line("a", "g6", "0.8048")], NODES, evidence, CATALOG,
                       min_replicas=1)  # fmt: skip
    assert [a.kind for a in found] == []


def test_pods_younger_than_six_hours_get_no_advice() -> None:
    young = {("ns", "a"): AT.timestamp() - 900}
    evidence = _evidence(busy={("ns", "a"): 0.0}, idle={("ns", "a"): 1.0}, started=young)
    assert advice_for({("ns", "a")}, [_line("a", "p5", "6.88")], NODES, evidence, CATALOG) == []
    old = {("ns", "a"): AT.timestamp() - 7 * 3600}
    evidence = _evidence(busy={("ns", "a"): 0.0}, idle={("ns", "a"): 1.0}, started=old)
    (advice,) = advice_for({("ns", "a")}, [_line("a", "p5", "6.88")], NODES, evidence, CATALOG)
    # observed 7 h of the 24 h window: the evidence says so
    assert advice.kind == "idle-gpu" and advice.evidence[0].window == "7h"


def test_a_young_pod_does_not_silence_its_older_siblings() -> None:
    # two idle H100 pods, one restarted an hour ago: the older one still earns idle-gpu,
    # 6.88 x 730 x 100 % = 5,022.40 (the young one is left out, not the workload)
    ages = {("ns", "a"): AT.timestamp() - 20 * 3600, ("ns", "b"): AT.timestamp() - 3600}
    idle = {("ns", "a"): 1.0, ("ns", "b"): 1.0}
    evidence = _evidence(busy={("ns", "a"): 0.0, ("ns", "b"): 0.0}, idle=idle, started=ages)
    lines = [_line("a", "p5", "6.88"), _line("b", "p5", "6.88")]
    (advice,) = advice_for({("ns", "a"), ("ns", "b")}, lines, NODES, evidence, CATALOG)
    assert advice.kind == "idle-gpu" and cents(advice.monthly_saving or 0) == Decimal("5022.40")
    assert advice.evidence[0].window == "20h"


def test_standing_entries_go_with_the_pods_or_stale_evidence() -> None:
    old = [Recommendation(kind="batching", message="m", monthly_saving=Decimal("10.00")),
           Recommendation(kind="spot", message="s")]  # fmt: skip
    pods = {("ns", "a")}
    # not read yet: the evidence-based entry stands next to fresh advice
    assert keeps_standing(None, pods)
    kept = with_evidence([], None, old, keeps_standing(None, pods))
    assert [r.kind for r in kept] == ["batching"]
    # no pods any more, or evidence too old: it goes
    assert not keeps_standing(None, set())
    stale = PodEvidence(AT, DAY, error="evidence too old", stale=True)
    assert not keeps_standing(stale, pods)
    assert with_evidence([], None, old, keeps_standing(stale, pods)) == []


class _Prometheus:
    """Answers every query with one pod's figure, or fails (as PrometheusSource does)."""

    def __init__(self) -> None:
        self.failing, self.closed, self.queries = False, False, 0

    async def query(self, expr: str, at: datetime) -> QueryResult:
        self.queries += 1
        if self.failing:
            raise MetricsError("down")
        return QueryResult((Sample({"namespace": "ns", "pod": "a"}, 1.0),))

    async def query_range(self, expr: str, start: datetime, end: datetime, step: int) -> Any:
        return (), ()

    def close(self) -> None:
        self.closed = True


async def _settle(cache: EvidenceCache) -> None:
    if cache._task is not None:
        await cache._task


def test_the_evidence_cache_reads_in_the_background_and_goes_stale_only_on_failures() -> None:
    async def scenario() -> None:
        source = _Prometheus()
        cache = EvidenceCache(source, window=DAY, refresh=900)  # type: ignore[arg-type]
        assert cache.get(AT) is None  # never waits: the read has only started
        await _settle(cache)
        found = cache.get(AT)
        assert found is not None and found.figures["busy"] == {("ns", "a"): 1.0}
        # old but no read failed (a replica that did not lead for a while): still used
        cache._found_at -= 10 * cache.max_age
        assert not (cache.get(AT) or found).stale
        await _settle(cache)
        # reads failing for longer than four refreshes: stale, its entries go
        source.failing = True
        cache._tried -= 10_000
        cache.get(AT)
        await _settle(cache)
        cache._found_at -= 10 * cache.max_age
        stale = cache.get(AT)
        assert stale is not None and stale.stale
        cache.close()
        await _settle(cache)
        asked = source.queries
        cache._tried -= 10_000
        cache.get(AT)  # closed: no new read
        assert source.closed and source.queries == asked and cache._task is not None

    asyncio.run(scenario())
