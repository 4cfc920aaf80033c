"""costgov's Grafana dashboards as the tests read them (charts/costgov/dashboards/*.json).

The metric names the dashboards may use are listed here, once: costgov's own (each must be
one OperatorMetrics exports) and the source exporters' (dcgm-exporter; kube-state-metrics
too, should a panel need it). After a rename in operator/costgov/adapters/metrics.py, the
fast test fails until the dashboards and COSTGOV_METRICS follow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "charts" / "costgov" / "dashboards"

COSTGOV_METRICS = frozenset({
    "costgov_hourly_cost_dollars",
    "costgov_budget_utilization_ratio",
    "costgov_budget_forecast_ratio",
    "costgov_leader",
    "costgov_webhook_request_duration_seconds_bucket",
    "costgov_webhook_errors_total",
    "costgov_violations",
    "costgov_admission_decisions_total",
    "costgov_admission_duration_seconds_bucket",
    "costgov_prometheus_query_errors_total",
    "costgov_accounting_cycles_total",
    "costgov_accounting_cycle_duration_seconds_bucket",
    "costgov_accounting_cycle_queries",
    "costgov_unpriced_pods",
})  # fmt: skip
"""The operator's series the dashboards read (sample names: `_total`, `_bucket`)."""
SOURCE_METRICS = frozenset({"DCGM_FI_DEV_GPU_UTIL"})
"""The exporters' series the dashboards read, as docs/operator.md tells users to scrape them."""
METRIC_TOKEN = re.compile(r"\b(costgov_[a-z0-9_]+|DCGM_[A-Z0-9_]+|kube_[a-z0-9_]+)\b")

PARSE_VALUES = {
    "namespace": "team-a|team-b",
    "team": ".*",
    "kind": "Job|Pod",
    "__rate_interval": "1m",
    "__range": "86400s",
    "__interval": "30s",
}
"""What Grafana might put in for each variable (a multi-value selection is a regex
alternation), to parse every query as Prometheus will receive it."""
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")
_LABEL_VALUES = re.compile(r"^label_values\((.+),\s*(\w+)\)$")


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a dashboard: a panel's target or a variable's selector."""

    dashboard: str
    where: str
    expr: str
    instant: bool

    @property
    def name(self) -> str:
        return f"{self.dashboard}: {self.where}"


def load() -> dict[str, dict[str, Any]]:
    """Every dashboard by file name."""
    found = {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}
    assert found, f"no dashboards in {DASHBOARDS}"
    return found


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data (rows left out; a collapsed row's panels included)."""
    for panel in dashboard.get("panels", []):
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def variable_selector(variable: Mapping[str, Any]) -> str:
    """The series selector of a `label_values(selector, label)` query variable."""
    query = variable["query"]
    text = query["query"] if isinstance(query, dict) else query
    match = _LABEL_VALUES.match(text.strip())
    assert match, f"variable {variable['name']}: not label_values(selector, label): {text}"
    return match.group(1)


def queries(name: str, dashboard: Mapping[str, Any]) -> list[Query]:
    """Every panel target and every query variable's selector, as written."""
    found = [
        Query(name, f"{p['title']} [{t['refId']}]", t["expr"], bool(t.get("instant")))
        for p in panels(dashboard)
        for t in p.get("targets", [])
    ]
    found += [
        Query(name, f"variable ${v['name']}", variable_selector(v), True)
        for v in dashboard["templating"]["list"]
        if v["type"] == "query"
    ]
    return found


def concrete(expr: str, values: Mapping[str, str]) -> str:
    """`expr` with Grafana's variables put in; regex groups such as label_replace's "$1" are
    not variables and stay. A variable with no value given fails, naming it."""

    def put(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name.isdigit():
            return match.group(0)
        assert name in values, f"no value for ${name} in {expr}"
        return values[name]

    return _VARIABLE.sub(put, expr)


def every_query() -> list[Query]:
    return [q for name, d in load().items() for q in queries(name, d)]
