"""`costgov report` against a real Prometheus: spend by namespace and by team label.

History: research/train-0 holds 8 GPUs of a p5.48xlarge (55.04 $/h) for 60 minutes, 50 %
busy; serving/serve-0 holds 1 g6.xlarge (0.8048 $/h on demand) for 60 minutes; web/render-0
holds 1 GPU of a p9.96xlarge, an instance type the price catalog does not know, for 60
minutes. Namespaces carry a
`team` label and research an `example.com/costCenter` label, written as kube-state-metrics
v2.20.0 exports them (internal/store/namespace.go: kube_namespace_labels through
createPrometheusLabelKeysValues("label", ...); internal/store/utils.go: non-[a-zA-Z0-9_] -> "_",
then snake_case, lower case): `label_team`, `label_example_com_cost_center`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from costgov.cli import main

from .prom import History, free_port, running_prometheus

END = (int(datetime.now(UTC).timestamp()) // 3600 - 3) * 3600
S = END - 90 * 60


def _history() -> History:
    h = History()
    nodes = {"n1": "p5.48xlarge", "n2": "g6.xlarge", "n3": "p9.96xlarge"}
    for node, it in nodes.items():
        h.span(
            "kube_node_labels",
            {"node": node, "label_node_kubernetes_io_instance_type": it},
            1,
            S,
            END + 1,
        )
    for ns, team in (("research", "ml"), ("serving", "ml"), ("web", "")):
        labels = {"namespace": ns}
        if team:
            labels["label_team"] = team
        if ns == "research":
            labels["label_example_com_cost_center"] = "cc-42"
        h.span("kube_namespace_labels", labels, 1, S, END + 1)
    pods = (
        ("research", "train-0", "n1", 8),
        ("serving", "serve-0", "n2", 1),
        ("web", "render-0", "n3", 1),
    )
    for ns, pod, node, gpus in pods:
        labels = {"namespace": ns, "pod": pod}
        h.span(
            "kube_pod_container_resource_requests",
            {**labels, "resource": "nvidia_com_gpu", "container": "c"},
            gpus,
            S,
            END + 1,
        )
        h.span("kube_pod_info", {**labels, "node": node}, 1, S, END + 1)
        h.span("kube_pod_status_phase", {**labels, "phase": "Running"}, 1, S, S + 3600)
        h.span("kube_pod_status_phase", {**labels, "phase": "Running"}, 0, S + 3600, END + 1)
    h.span(
        "DCGM_FI_DEV_GPU_UTIL",
        {"namespace": "research", "pod": "train-0", "gpu": "0"},
        50,
        S,
        S + 3600,
    )
    return h


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


def _report(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    end = datetime.fromtimestamp(END, UTC).isoformat()
    code = main(["report", "--prometheus-url", url, "--end", end, "--window", "2h", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_report_by_namespace_json(prometheus_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _report(capsys, prometheus_url, "-o", "json")
    doc = json.loads(out)
    assert code == 0
    lines = {line["group"]: line for line in doc["lines"]}
    # research: 60 samples x 8 GPUs / 60 = 8 GPU-h x 55.04 / 8 = 55.04; 50 % idle = 27.52
    assert lines["research"] == {
        "group": "research",
        "cost": "55.04",
        "gpuHours": "8.00",
        "idleCost": "27.52",
        "unpricedPods": "0",
    }
    # serving: 1 GPU-h x 0.8048 = 0.8048 -> 0.80; no DCGM data, so no idle figure
    assert lines["serving"]["cost"] == "0.80" and lines["serving"]["idleCost"] == "0.00"
    assert doc["total"] == "55.84"  # 55.04 + 0.8048 = 55.8448; render-0 has no price
    assert lines["web"] == {
        "group": "web",
        "cost": "0.00",
        "gpuHours": "1.00",
        "idleCost": "0.00",
        "unpricedPods": "1",
    }
    assert doc["totalCaveat"] == "1 pod unpriced, not included"
    assert doc["unpricedPods"] == 1
    (note,) = doc["unpriced"]
    assert note.startswith("web/render-0: node n3: instance type 'p9.96xlarge' is not in")


def test_report_by_team_label_csv(prometheus_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _report(capsys, prometheus_url, "--by", "team", "-o", "csv")
    assert code == 0
    assert out.splitlines() == [
        "TEAM,COST_USD,GPU_HOURS,IDLE_GPU_USD,UNPRICED_PODS",
        "ml,55.84,9.00,27.52,0",
        "(no team label),0.00,1.00,0.00,1",  # web: render-0, unpriced
    ]


def test_report_by_a_camel_case_label(
    prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _report(capsys, prometheus_url, "--by", "example.com/costCenter", "-o", "csv")
    assert code == 0
    assert out.splitlines() == [
        "EXAMPLE.COM/COSTCENTER,COST_USD,GPU_HOURS,IDLE_GPU_USD,UNPRICED_PODS",
        "cc-42,55.04,8.00,27.52,0",  # research: 8 GPU-h x 55.04 / 8
        # serving: 1 GPU-h x 0.8048; web: 1 GPU-h unpriced
        "(no example.com/costCenter label),0.80,2.00,0.00,1",
    ]


def test_report_table(prometheus_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _report(capsys, prometheus_url)
    assert code == 0
    assert "research" in out
    assert "TOTAL $55.84 (1 pod unpriced, not included)" in out.splitlines()
    assert "unpriced: web/render-0: node n3: instance type 'p9.96xlarge'" in out


def test_report_with_prometheus_down_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _report(capsys, f"http://127.0.0.1:{free_port()}")
    assert code == 2 and out == ""
    assert "did not answer" in err
