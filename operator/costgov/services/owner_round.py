"""The owners of the pods a cycle counted that the API does not show, asked for by name.

The operator watches GPU pods, so the API names the Job of every pod that still exists
(domain/attribution.py: it wins over Prometheus anyway). Asking Prometheus for every pod's
owner each cycle read kube_pod_owner and kube_pod_info over the interval for all of them:
at 10,000 pods a third of a cycle's time in Prometheus. Only the pods the answers show
and the API does not (ended since the last cycle, or deleted before the operator saw them)
need it: usually none, a few while Jobs come and go.
"""

from __future__ import annotations

from collections.abc import Collection

from costgov.adapters import promql
from costgov.adapters.prometheus import MetricsError, PrometheusSource, QueryResult, try_all
from costgov.services.planning import Plan, name_batches, steady_span

__all__ = ["ask_owners", "unseen_pods"]

PodKey = tuple[str, str]


def unseen_pods(
    cycle: Plan,
    results: dict[str, QueryResult],
    live: Collection[PodKey],
    namespaces: Collection[str] | None = None,
) -> set[PodKey]:
    """Pods that cost something in the cycle's own windows or hold GPUs now, that `live`
    (the API's) does not show: of `namespaces` only, when given (where owners are read:
    budgets'). Chunks of history catching up ask for their own owners."""
    own = [n for n in results if not cycle.owner.get(n) and _counts_pods(n)]
    seen = {
        (s.labels.get("namespace", ""), s.labels.get("pod", ""))
        for n in own
        for s in results[n].samples
        if s.value > 0  # NaN and nothing held: no dollars to attribute
    }
    return {
        key
        for key in seen
        if key[1] and key not in live and (namespaces is None or key[0] in namespaces)
    }


def _counts_pods(name: str) -> bool:
    return name == "now" or name.startswith("hours:")


async def ask_owners(
    source: PrometheusSource, cycle: Plan, pods: Collection[PodKey], interval: int
) -> tuple[QueryResult | MetricsError, int]:
    """The cycle's `owners` (over the span its `nodes` look back) for these `pods` (what
    `unseen_pods` found), MOVED_PER_QUERY names a query (past MOST_BATCHES batches, one
    query for every pod); and the number of queries it made. A name no Kubernetes pod
    could carry in a query (a relabelled `pod` label) has every pod's owner asked for."""
    names = sorted({pod for _, pod in pods})
    odd = any(not promql.POD_NAME.fullmatch(n) for n in names)
    batches: list[list[str] | None] = [None] if odd else name_batches(names)
    span = steady_span(cycle, interval)
    exprs = [promql.pod_owners(span, b) for b in batches]
    return await try_all(source, exprs, cycle.times["nodes"]), len(batches)
