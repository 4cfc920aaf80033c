"""The chart ships the dashboards: one ConfigMap per charts/costgov/dashboards/*.json, the file
byte for byte, labelled for Grafana's dashboard sidecar, and accepted by the apiserver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from tests.integration.dashboards import DASHBOARDS

from .controlplane import ControlPlane
from .test_chart import _docs, _template

FILES = {p.name: p.read_text() for p in sorted(DASHBOARDS.glob("*.json"))}


def _dashboards(*sets: str) -> list[dict[str, Any]]:
    return [
        d
        for d in _docs("dashboards.enabled=true", *sets)
        if d["kind"] == "ConfigMap" and "-dashboard-" in d["metadata"]["name"]
    ]


def test_no_dashboards_unless_enabled() -> None:
    assert not [d for d in _docs() if "-dashboard-" in d["metadata"]["name"]]


def test_each_dashboard_is_a_configmap_with_the_sidecar_label_and_the_exact_json() -> None:
    maps = _dashboards()
    assert len(maps) == len(FILES) == 3
    shipped = {}
    for cm in maps:
        assert cm["metadata"]["namespace"] == "costgov-system"
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["labels"]["app.kubernetes.io/name"] == "costgov"
        assert "annotations" not in cm["metadata"]
        ((key, text),) = cm["data"].items()
        shipped[key] = text
    assert shipped == FILES  # the source files themselves, not a copy that can drift


def test_namespace_labels_and_folder_annotation_are_values() -> None:
    maps = _dashboards(
        "dashboards.namespace=monitoring",
        "dashboards.labels.grafana_dashboard=null",
        "dashboards.labels.dashboards=costgov",
        "dashboards.annotations.grafana_folder=Cost",
    )
    assert len(maps) == len(FILES)
    for cm in maps:
        meta = cm["metadata"]
        assert meta["namespace"] == "monitoring"
        assert meta["labels"]["dashboards"] == "costgov"
        assert "grafana_dashboard" not in meta["labels"]
        assert meta["annotations"] == {"grafana_folder": "Cost"}


def test_the_values_schema_rejects_a_label_that_is_not_a_string() -> None:
    done = _template("dashboards.enabled=true", "dashboards.labels.grafana_dashboard=1")
    assert done.returncode != 0 and "/dashboards/labels/grafana_dashboard" in done.stderr


def test_the_apiserver_accepts_the_dashboard_configmaps(cp: ControlPlane, tmp_path: Path) -> None:
    cp.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "costgov-system"}})
    path = tmp_path / "dashboards.yaml"
    path.write_text(yaml.safe_dump_all(_dashboards()))
    done = cp.kubectl("apply", "--server-side", "--dry-run=server", "-f", str(path))
    for cm in _dashboards():
        assert f"configmap/{cm['metadata']['name']} serverside-applied" in done.stdout


def test_the_servicemonitor_keeps_costgovs_namespace_label() -> None:
    # the dashboards group by the `namespace` costgov exports, not the one it runs in
    (monitor,) = [
        d for d in _docs("metrics.serviceMonitor.enabled=true") if d["kind"] == "ServiceMonitor"
    ]
    assert [e["honorLabels"] for e in monitor["spec"]["endpoints"]] == [True]
