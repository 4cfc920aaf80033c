"""The steady cycle's point-by-point window and owners round, as an independent review
attacked them (its reproductions), against a real Prometheus holding KSM v2.20.0-shaped
history (tests/integration/exporters.ksm_scrapes). Figures by hand.

History: step 60 s, KSM scraped at :30 each minute (a point sees a sample up to 300 s old).
n1: p4d.24xlarge on-demand us-east-1, $21.96/h for 8 GPUs = $2.745 per GPU-hour.

- ml/run-0   8 GPUs on n1, Running throughout; Job run-0.
- ml/late-0  2 GPUs on n1, Pending until its sample at END+30 (first Running sample at END+30).
- ml/end-0   1 GPU  on n1, Running up to its sample at END-30, Succeeded from END+30 on.
- ml/Bad_0   1 GPU  on n1, Running throughout, a `pod` label that no Kubernetes pod could
             carry (a relabelling rewrote it); kube_pod_owner / created_by: Job bad.
- zz/w-NNNN  1,001 pods of 1 GPU on n2 (g5.48xlarge, $16.288/h / 8 = $2.036 per GPU-h),
             Running throughout, Jobs w-NNNN. Only in the `many` history.
- ml/done-0  4 GPUs on n1, Running until END-930, Succeeded at END-870 .. END-750, then
             deleted (the API does not show it): it costs nothing after END-930.
- a/twin and b/twin: the same name in two namespaces, 1 GPU each on n1; a/twin is Job
             job-a (the API shows it), b/twin Job job-b (deleted: the API does not).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

import pytest

from costgov.adapters.prometheus import PrometheusSource, QueryResult, RangeSeries
from costgov.catalog import load_catalog
from costgov.services.accounting import Snapshot, collect
from costgov.settings import Settings

from .exporters import KSM_TARGET, ksm_scrapes
from .prom import History, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
ACC = datetime.fromtimestamp(END, UTC)


def _node(h: History, name: str, itype: str) -> None:
    h.span("kube_node_labels", {**KSM_TARGET, "node": name,
           "label_node_kubernetes_io_instance_type": itype,
           "label_topology_kubernetes_io_region": "us-east-1",
           "label_karpenter_sh_capacity_type": "on-demand"}, 1, END - 3600, END + 600)  # fmt: skip


def _owner(h: History, ns: str, pod: str, uid: str, job: str, times: range) -> None:
    labels = {**KSM_TARGET, "namespace": ns, "pod": pod, "uid": uid, "owner_kind": "Job",
              "owner_name": job, "owner_is_controller": "true"}  # fmt: skip
    for t in times:
        h.add("kube_pod_owner", labels, 1, t)


def _pod(
    h: History,
    ns: str,
    pod: str,
    gpus: int,
    phase: str,
    times: range,
    node: str = "n1",
    job: str | None = None,
) -> None:
    ksm_scrapes(h, times, namespace=ns, pod=pod, uid=f"u-{ns}-{pod}", node=node, gpus=gpus,
                created_by=("Job", job or pod), phase=phase)  # fmt: skip
    _owner(h, ns, pod, f"u-{ns}-{pod}", job or pod, times)


def _history(many: bool) -> History:
    h = History()
    _node(h, "n1", "p4d.24xlarge")
    _node(h, "n2", "g5.48xlarge")
    first = END - 3600 + 30
    _pod(h, "ml", "run-0", 8, "Running", range(first, END + 600, 60))
    _pod(h, "ml", "late-0", 2, "Pending", range(first, END, 60))
    _pod(h, "ml", "late-0", 2, "Running", range(END + 30, END + 600, 60))
    _pod(h, "ml", "end-0", 1, "Running", range(first, END, 60))
    _pod(h, "ml", "end-0", 1, "Succeeded", range(END + 30, END + 600, 60))
    _pod(h, "ml", "Bad_0", 1, "Running", range(first, END + 600, 60), job="bad")
    _pod(h, "a", "twin", 1, "Running", range(first, END + 600, 60), job="job-a")
    _pod(h, "b", "twin", 1, "Running", range(first, END + 600, 60), job="job-b")
    _pod(h, "ml", "done-0", 4, "Running", range(first, END - 900, 60))
    _pod(h, "ml", "done-0", 4, "Succeeded", range(END - 870, END - 690, 60))  # then deleted
    if many:
        for i in range(1001):
            _pod(h, "zz", f"w-{i:04d}", 1, "Running", range(END - 600 + 30, END + 600, 60),
                 node="n2")  # fmt: skip
    return h


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_prometheus(_history(False)) as url:
        yield url


class Partial(PrometheusSource):
    """The real source, with a warning on every answer (a Thanos/Cortex querier with a store
    down: tests/integration/test_second_round_warnings.py), and remembering what it asked."""

    asked: ClassVar[list[str]] = []

    async def query(self, expr: str, at: datetime) -> QueryResult:
        self.asked.append(expr)
        r = await super().query(expr, at)
        return QueryResult(r.samples, (*r.warnings, f"partial response ({len(expr)})"))

    async def points(
        self, expr: str, at: datetime
    ) -> tuple[tuple[RangeSeries, ...], tuple[str, ...]]:
        self.asked.append(expr)
        series, warnings = await super().points(expr, at)
        return series, (*warnings, f"partial response ({len(expr)})")


def _snap(url: str, at: datetime, span: int, live: Mapping[tuple[str, str], str | None] | None
          ) -> Snapshot:  # fmt: skip
    Partial.asked = []
    return asyncio.run(
        collect(Partial(Settings(prometheus_url=url)), load_catalog(), at=at,
                windows={"w": ACC - timedelta(seconds=span)}, interval_seconds=300,
                step_seconds=60, live_node_labels={}, live_pod_owners=live, unit_costs=False)
    )  # fmt: skip


LIVE = {("ml", "run-0"): "run-0", ("ml", "late-0"): "late-0", ("ml", "end-0"): "end-0",
        ("a", "twin"): "job-a"}  # fmt: skip


def test_a_warning_of_the_points_answer_is_reported_once(url: str) -> None:
    """One answer, one warning: 4 answers (nodes, util, the points; no owners query is
    needed when the API shows every pod... here ml/Bad_0 and b/twin are asked for: 5)."""
    snap = _snap(url, ACC, 120, LIVE)
    assert snap.error is None
    partial = [w for w in snap.warnings if w.startswith("partial response")]
    assert len(partial) == len(Partial.asked), (partial, len(Partial.asked))


def test_the_gpus_held_now_are_those_of_the_last_step(url: str) -> None:
    """at = END+45, window (END-120, END] (2 points): the GPUs held now are those of its
    last point, END (the cycle time down to the step, as a one-point window's always
    were): late-0 (Running from its sample at END+30) not yet, end-0 (Running at END-30)
    still 1 GPU. $/h by hand: run-0 8 x 2.745 = 21.96, end-0 2.745."""
    snap = _snap(url, ACC + timedelta(seconds=45), 120, LIVE)
    now = {
        c.usage.pod: (c.usage.gpu_hours, c.cost) for c in snap.hourly if c.usage.namespace == "ml"
    }
    assert now["run-0"] == (Decimal(8), Decimal("21.96"))
    assert now["end-0"] == (Decimal(1), Decimal("2.745")) and "late-0" not in now


def test_a_pod_name_no_query_may_carry_still_has_its_owner(url: str) -> None:
    """ml/Bad_0: 2 points x 1 GPU x 60 s = 120 GPU-s = $0.0915 on n1, Job bad by
    kube_pod_owner and by created_by: its name cannot be put in a query, so every pod's
    owner is asked for."""
    snap = _snap(url, ACC, 120, LIVE)
    lines = {c.usage.key: (c.usage.gpu_seconds, c.cost) for c in snap.windows["w"].pods}
    assert lines[("ml", "Bad_0")] == (Decimal(120), Decimal("0.0915"))
    assert snap.owners[("ml", "Bad_0")] == "bad"
    owner_queries = [q for q in Partial.asked if "kube_pod_owner" in q]
    assert len(owner_queries) == 1 and "pod=~" not in owner_queries[0]


def test_same_name_in_two_namespaces(url: str) -> None:
    """b/twin is asked for by name; a/twin's Prometheus owner comes back too, the API's wins."""
    snap = _snap(url, ACC, 60, LIVE)
    assert snap.owners[("a", "twin")] == "job-a" and snap.owners[("b", "twin")] == "job-b"
    assert snap.owners[("ml", "run-0")] == "run-0"
    lines = {c.usage.key: c.usage.gpu_seconds for c in snap.windows["w"].pods}
    assert lines[("a", "twin")] == lines[("b", "twin")] == Decimal(60)


def test_more_than_1000_unseen_pods_one_query_for_every_pod() -> None:
    """1,001 zz/w-NNNN pods Running at END (1 point of 1 GPU each, 60 GPU-s), none shown by
    the API: one owners query for every pod, every one attributed to its Job."""
    with running_prometheus(_history(True)) as url:
        snap = _snap(url, ACC, 60, LIVE)
    owner_queries = [q for q in Partial.asked if "kube_pod_owner" in q]
    assert len(owner_queries) == 1 and "pod=~" not in owner_queries[0]
    zz = [c for c in snap.windows["w"].pods if c.usage.namespace == "zz"]
    assert len(zz) == 1001 and all(c.usage.gpu_seconds == 60 for c in zz)
    assert all(snap.owners[c.usage.key] == c.usage.pod for c in zz)
    total = sum((c.cost or Decimal("NaN") for c in zz), Decimal(0))  # 1,001 x 60 / 3600 x $2.036
    assert abs(total - Decimal("2.036") * 1001 / 60) < Decimal("1e-20")


def test_a_pod_that_cost_nothing_in_the_window_has_no_owner_asked(url: str) -> None:
    """Window (END-600, END], 10 points (the sums form). ml/done-0's last Running sample is
    END-930, older than every point's lookback: it costs $0 here, yet it is a line of the
    answer (value 0: its kube_pod_info is within the ranges' reach), and HEAD asks
    Prometheus for its owner by name. Its owner changes no dollar figure."""
    snap = _snap(url, ACC, 600, {**LIVE, ("ml", "Bad_0"): "bad", ("b", "twin"): "job-b"})
    assert snap.error is None
    assert ("ml", "done-0") not in {c.usage.key for c in snap.windows["w"].pods}
    asked = [q for q in Partial.asked if "kube_pod_owner" in q]
    assert not any("done-0" in q for q in asked), asked


def test_owners_are_asked_only_where_something_reads_them(url: str) -> None:
    """Budgets only in `ml`: b/twin (the API does not show it) is not asked for; ml/Bad_0
    is (every pod, its name being no Kubernetes name)... with Bad_0 shown by the API too,
    nothing is asked at all."""
    Partial.asked = []
    snap = asyncio.run(
        collect(Partial(Settings(prometheus_url=url)), load_catalog(), at=ACC,
                windows={"w": ACC - timedelta(seconds=120)}, interval_seconds=300,
                step_seconds=60, live_node_labels={},
                live_pod_owners={**LIVE, ("ml", "Bad_0"): "bad"}, unit_costs=False,
                owners_in={"ml"})
    )  # fmt: skip
    assert snap.error is None
    assert not any("kube_pod_owner" in q for q in Partial.asked)
    assert ("b", "twin") not in snap.owners and snap.queries == 3


def _budgets_in(url: str, span: int, owners_in: set[str]) -> Snapshot:
    Partial.asked = []
    live = {**LIVE, ("ml", "Bad_0"): "bad", ("b", "twin"): "job-b"}
    return asyncio.run(
        collect(Partial(Settings(prometheus_url=url)), load_catalog(),
                at=ACC + timedelta(seconds=20), windows={"w": ACC - timedelta(seconds=span)},
                interval_seconds=300, step_seconds=60, live_node_labels={},
                live_pod_owners=live, unit_costs=False, owners_in=owners_in)
    )  # fmt: skip


def test_a_pod_deleted_before_the_operator_started_is_attributed(url: str) -> None:
    """(A second review's.) Window (END-1200, END] (a budget's first window after a restart:
    the history form). ml/done-0 (deleted, not in the API) Running at points END-1140 ..
    END-900 (its last Running sample END-930): 5 x 4 GPUs x 60 s = 1,200 GPU-s = 1/3 GPU-h
    x $2.745 = $0.915, Job done-0, found by one query naming it (not b/twin: no budget in b)."""
    snap = _budgets_in(url, 1200, {"ml"})
    assert snap.error is None
    lines = {c.usage.key: (c.usage.gpu_seconds, c.cost) for c in snap.windows["w"].pods}
    assert lines[("ml", "done-0")] == (Decimal(1200), Decimal("0.915"))
    assert snap.owners[("ml", "done-0")] == "done-0"
    asked = [q for q in Partial.asked if "kube_pod_owner" in q]
    assert len(asked) == 1 and "done-0" in asked[0] and "twin" not in asked[0]


def test_no_budgets_no_owners_query(url: str) -> None:
    snap = _budgets_in(url, 1200, set())
    assert snap.error is None and not any("kube_pod_owner" in q for q in Partial.asked)
