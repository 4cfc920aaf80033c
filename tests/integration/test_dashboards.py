"""The Grafana dashboards: stable uids, a datasource variable, a query in every panel, every
query parsed by the real PromQL parser (promtool, from the Prometheus package) and reading
only series that exist. tests/sim/test_dashboards.py checks that every query returns data."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from costgov.adapters.metrics import OperatorMetrics

from .dashboards import (
    COSTGOV_METRICS,
    METRIC_TOKEN,
    PARSE_VALUES,
    SOURCE_METRICS,
    concrete,
    every_query,
    load,
    panels,
)
from .prom import _binary

UIDS = {
    "costgov-spend.json": "costgov-spend",
    "costgov-budgets.json": "costgov-budgets",
    "costgov-admission.json": "costgov-admission",
}
"""Stable forever: Grafana links, bookmarks and provisioning find a dashboard by its uid."""
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def test_every_dashboard_has_its_stable_uid() -> None:
    dashboards = load()
    assert {name: d["uid"] for name, d in dashboards.items()} == UIDS
    assert len(set(UIDS.values())) == len(UIDS)
    for d in dashboards.values():
        assert d["id"] is None  # Grafana assigns ids; a fixed one clashes on import
        assert d["schemaVersion"] == 39
        assert "costgov" in d["tags"]


def test_every_dashboard_asks_for_a_prometheus_datasource_and_every_query_uses_it() -> None:
    for name, d in load().items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        chooser = variables["datasource"]
        assert (chooser["type"], chooser["query"]) == ("datasource", "prometheus"), name
        for v in variables.values():
            if v["type"] == "query":
                assert v["datasource"] == DATASOURCE, f"{name}: ${v['name']}"
                assert v["allValue"] == ".*" and v["includeAll"], f"{name}: ${v['name']}"
        for p in panels(d):
            assert p["datasource"] == DATASOURCE, f"{name}: {p['title']}"
            assert all(t["datasource"] == DATASOURCE for t in p["targets"]), p["title"]


def test_every_panel_has_a_query_and_a_unique_id() -> None:
    for name, d in load().items():
        shown = list(panels(d))
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), name
        for p in shown:
            assert p["targets"], f"{name}: {p['title']} has no query"
            for t in p["targets"]:
                assert t["expr"].strip(), f"{name}: {p['title']} [{t['refId']}] is empty"
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs)), f"{name}: {p['title']}"
            assert p["description"], f"{name}: {p['title']} says nothing of what it shows"


def test_every_query_parses(tmp_path: Path) -> None:
    # Debian's promtool 2.42 has no `promql` subcommand; `check rules` parses each rule's
    # expression with the same PromQL parser Prometheus evaluates queries with, offline.
    found = every_query()
    rules = [
        {"record": f"dashboard:query_{i}", "expr": concrete(q.expr, PARSE_VALUES)}
        for i, q in enumerate(found)
    ]
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run(
        [_binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True
    )
    which = "\n".join(f"dashboard:query_{i} = {q.name}" for i, q in enumerate(found))
    assert done.returncode == 0, f"{done.stdout}{done.stderr}\n{which}"
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def _exported() -> set[str]:
    """The sample names OperatorMetrics exports (counters with _total, histograms' parts)."""
    names: set[str] = set()
    for family in OperatorMetrics().registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{part}" for part in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names


def test_the_dashboards_read_only_series_that_exist() -> None:
    assert _exported() >= COSTGOV_METRICS, COSTGOV_METRICS - _exported()
    used = {token for q in every_query() for token in METRIC_TOKEN.findall(q.expr)}
    assert used <= COSTGOV_METRICS | SOURCE_METRICS, used - COSTGOV_METRICS - SOURCE_METRICS
    assert used >= COSTGOV_METRICS, f"listed but shown nowhere: {COSTGOV_METRICS - used}"
