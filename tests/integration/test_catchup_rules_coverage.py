"""The catch-up's spot check of the recording rules' records (services/recorded.uncovered):
rules that did not see every pod are not read (they would count the pods they missed as $0),
and complete rules are read whatever the hour's edges hold. Prometheus 2.42 evaluates the
chart's rule file, narrowed as the Prometheus Operator narrows it, with promtool (as in
test_catchup_rules), over test_accounting_prometheus's exporter history; the dollars are
checked against the hand-checked WHOLE or against the same history read from raw samples."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from costgov.adapters import promql_rules
from costgov.domain.spend import totals
from costgov.services.accounting import Snapshot
from costgov.services.catching_up import CatchUp
from costgov.settings import Settings

from .prom import History, running_prometheus, running_prometheus_with_rules
from .test_accounting_prometheus import BASE, END, _history
from .test_catching_up import _catchup, _cycle, assert_whole
from .test_catchup_rules import HOUR, RULES, START, TO, _caught_up, _evaluations
from .test_steady_points_and_owners import Recorded

SELECTORS = (
    r"\b(kube_pod_info|kube_pod_container_resource_requests|kube_pod_status_phase|"
    r"DCGM_FI_DEV_GPU_UTIL|kube_pod_owner)\{"
)
"""Every selector of the rule file with matchers; kube_node_labels has none."""


def _narrowed(tmp_path: Path, matcher: str) -> Path:
    """The chart's rules with `matcher` added to every selector, as the Prometheus Operator's
    enforcedNamespaceLabel adds `namespace="<the rule's namespace>"`."""
    text = re.sub(SELECTORS, rf"\1{{{matcher},", RULES.read_text())
    text = text.replace("kube_node_labels[", f"kube_node_labels{{{matcher}}}[")
    assert text.count(matcher) == 9
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "recorded nothing for GPU" in r.getMessage()]


def _dollars(snap: Snapshot) -> Decimal:
    return totals(snap.windows["w"].pods).cost


@pytest.mark.parametrize(
    ("matcher", "missing"),
    [('namespace="ml-research"', {"ml-serving": 1}), ('namespace="costgov"', {"ml-serving": 1})],
    ids=["one-of-the-namespaces", "the-operators-namespace"],
)
def test_rules_narrowed_to_a_namespace_are_not_read(
    tmp_path: Path, matcher: str, missing: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    """Narrowed to ml-research (or to the operator's own namespace), the rules record no line
    for ml-serving's llama-0, Running in the run's last hour: reading them would count it (or
    everyone) as $0. The catch-up counts raw samples, to the same dollars, and says why."""
    with running_prometheus_with_rules(
        _history(), [(_narrowed(tmp_path, matcher), BASE, END)]
    ) as url:
        assert len(_evaluations(url)) >= 4
        snap, catchup, _ = _caught_up(url)
    assert_whole(snap, catchup)
    assert catchup.counted == {"recorded": 0, "raw": 4 * HOUR}
    # ml-research's pods ran the first 2 hours: whether the checked hour (the last, at the
    # group's offset, which Prometheus hashes from the rule file's path) saw them varies
    found = catchup.checker.missing
    assert {k: v for k, v in found.items() if k != "ml-research"} == missing
    assert found.get("ml-research", 2) == 2 and (matcher != 'namespace="ml-research"' or
                                                  "ml-research" not in found)  # fmt: skip
    (warned,) = _warnings(caplog)
    assert "ml-serving (1)" in warned and "enforcedNamespaceLabel" in warned


def _with_pod(history: History, ns: str, pod: str, start: float, node: str = "node-c") -> History:
    """`history` plus a one-GPU pod of `ns` Running from `start` to the end, scraped every
    30 s as kube-state-metrics' series are."""
    labels = {"namespace": ns, "pod": pod}
    ts = start
    while ts <= END + 1:
        history.add("kube_pod_info", {**labels, "node": node, "uid": f"uid-{pod}"}, 1, ts)
        history.add(
            "kube_pod_container_resource_requests",
            {**labels, "container": "main", "resource": "nvidia_com_gpu", "unit": "integer"},
            1,
            ts,
        )
        history.add("kube_pod_status_phase", {**labels, "phase": "Running"}, 1, ts)
        ts += 30
    return history


def test_rules_that_missed_one_pod_of_a_namespace_are_not_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rules evaluated where one pod's series are not (a kube-state-metrics shard): every
    namespace still has lines, one pod has none. Checked pod by pod, not by namespace."""
    history = _with_pod(_history(), "ml-serving", "llama-1", BASE)
    with running_prometheus_with_rules(
        history, [(_narrowed(tmp_path, 'pod!="llama-1"'), BASE, END)]
    ) as url:
        snap, catchup, _ = _caught_up(url)
    with running_prometheus(_with_pod(_history(), "ml-serving", "llama-1", BASE)) as url:
        raw, _, _ = _caught_up(url)
    assert catchup.counted == {"recorded": 0, "raw": 4 * HOUR}
    assert catchup.checker.missing == {"ml-serving": 1}
    assert _dollars(snap) == _dollars(raw) > 0
    assert len(_warnings(caplog)) == 1


def test_a_pod_starting_just_before_an_evaluation_does_not_stop_complete_rules_being_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A namespace's only GPU pod is created and scheduled between the last grid point and
    the run's last evaluation: the rules rightly record nothing of it for that hour (no grid
    point saw it Running), and the check must not take that for rules that miss pods."""
    with running_prometheus_with_rules(_history(), [(RULES, BASE, END)]) as url:
        last = _evaluations(url)[-1]
    grid = last // 60 * 60
    assert last - grid >= 0.002, "the group is evaluated on the minute (offset from the path)"
    created = grid + (last - grid) / 2
    history = _with_pod(_history(), "solo", "nb-0", created, node="node-a")
    with running_prometheus_with_rules(history, [(RULES, BASE, END)]) as url:
        assert _evaluations(url)[-1] == last
        snap, catchup, _ = _caught_up(url)
    with running_prometheus(_with_pod(_history(), "solo", "nb-0", created, node="node-a")) as url:
        raw, _, _ = _caught_up(url)
    assert catchup.checker.missing == {} and not _warnings(caplog)
    assert catchup.counted["recorded"] >= 3 * HOUR
    assert _dollars(snap) == _dollars(raw)


def test_another_evaluation_minutes_before_is_not_the_record_checked() -> None:
    """Two groups of the same rules at two offsets (a backfill beside the live rules): the
    one evaluated at T was narrowed to ml-research, a complete one ran 120 s before. The
    complete one's lines are not the record at T (an instant lookup would see them)."""
    at = float(BASE + 2 * HOUR) + 1234.567
    history = History()
    for ns, pod in (("ml-research", "train-1"), ("ml-serving", "llama-0")):
        _with_pod(history, ns, pod, at - 3900)
    # the labels charts/costgov/files/catchup-rules.yaml gives its records, as written there
    rule = {"costgov_rules": "1", "step": "60", "interval": "3600"}
    samples = "costgov:pod_gpu_samples"
    for when, pods in ((at - 120, ("train-1", "llama-0")), (at, ("train-1",))):
        history.add(samples, {**rule, "costgov_evaluated": "true"}, 0, when)
        for pod in pods:
            ns = "ml-research" if pod == "train-1" else "ml-serving"
            labels = {"namespace": ns, "pod": pod, "node": "node-c", "uid": f"uid-{pod}"}
            history.add(samples, {**rule, **labels}, 60, when)
    expr = promql_rules.uncovered_pods(60, 3600, at)
    query = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"}).encode()
    with running_prometheus(history) as url:
        response = urllib.request.urlopen(f"{url}/api/v1/query", query, timeout=10)
        found = json.load(response)["data"]["result"]
    answer = sorted((sorted(r["metric"].items()), r["value"][1]) for r in found)
    # two pods checked (both Running, placed and requesting a GPU), one without a line at T
    assert answer == [([("costgov_checked", "true")], "2"), ([("namespace", "ml-serving")], "1")]


def test_a_check_prometheus_does_not_answer_is_tried_again_then_its_run_read_raw(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Prometheus does not answer the spot check: the rules are not trusted blind. The check
    is tried again after a pause, then its run is counted from raw samples; logged."""

    async def scenario(url: str) -> tuple[Snapshot, CatchUp]:
        Recorded.asked, Recorded.failing = [], "unless on (namespace, pod)"
        catchup = _catchup(Recorded(Settings(prometheus_url=url)), retry=0.01)
        catchup.want({"w": START}, TO, {})
        await asyncio.wait_for(catchup.settled(), 60)
        return catchup.report(_cycle(TO), {"w": START}), catchup

    with running_prometheus_with_rules(_history(), [(RULES, BASE, END)]) as url:
        snap, catchup = asyncio.run(scenario(url))
    assert_whole(snap, catchup)
    assert catchup.counted == {"recorded": 0, "raw": 4 * HOUR}
    assert sum("unless on (namespace, pod)" in e for e in Recorded.asked) == 3
    assert "could not check the recording rules' records" in caplog.text
    assert "attempt 3 of 3; read from raw samples" in caplog.text
