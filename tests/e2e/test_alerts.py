"""The chart's alerts: charts/costgov/files/prometheus-rules.yaml is checked and unit-tested
with promtool (tests/alerts/, expected values worked out by hand there), and the chart's
PrometheusRule carries exactly its groups, with the labels a Prometheus' ruleSelector needs.

promtool comes from Debian's `prometheus` package (hack/install-prerequisites.sh, run by
`make test`); without it these tests fail rather than skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from costgov import cli_rules

from .controlplane import ROOT
from .operating import _tools

RULES = ROOT / "charts" / "costgov" / "files" / "prometheus-rules.yaml"
CATCHUP = ROOT / "charts" / "costgov" / "files" / "catchup-rules.yaml"
RULE_TESTS = ROOT / "tests" / "alerts" / "prometheus-rules.test.yaml"
DOCS = ROOT / "docs" / "operator.md"
RUNBOOK = "https://github.com/costgov/costgov/blob/main/docs/operator.md"
ALERTS = {
    "CostgovBudgetAt80Percent",
    "CostgovBudgetAt95Percent",
    "CostgovBudgetExhausted",
    "CostgovForecastOverBudget",
    "CostgovSpendAnomaly",
    "CostgovNewGpuSpend",
    "CostgovUnpricedGpuPods",
    "CostgovPrometheusQueriesFailing",
    "CostgovAccountingBehind",
    "CostgovPodsNotFollowed",
    "CostgovWebhookErrors",
    "CostgovWebhookLatencyHigh",
    "CostgovNoLeader",
    "CostgovTwoLeaders",
}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: `make prerequisites` (apt-get install prometheus)")
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=ROOT)


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 15 rules found" in done.stdout  # 14 alerts and 1 recording rule


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    done = _promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_fires_in_a_unit_test_and_has_a_runbook() -> None:
    alerts = {r["alert"]: r for r in _rules() if "alert" in r}
    assert set(alerts) == ALERTS
    fired = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    assert fired == ALERTS
    headings = set(re.findall(r"^### (Costgov\w+)$", DOCS.read_text(), flags=re.MULTILINE))
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("info", "warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert rule["annotations"]["runbook_url"] == f"{RUNBOOK}#{name.lower()}"
        assert name in headings  # the anchor GitHub makes of "### CostgovBudgetExhausted"


def _template(*sets: str) -> subprocess.CompletedProcess[str]:
    args = [arg for s in sets for arg in ("--set", s)]
    return subprocess.run(
        [str(_tools() / "helm"), "template", "costgov", str(ROOT / "charts" / "costgov"),
         "-n", "costgov-system", *args],
        capture_output=True,
        text=True,
    )  # fmt: skip


def _objects(*sets: str) -> list[dict[str, Any]]:
    done = _template(*sets)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _kinds(*sets: str) -> dict[str, dict[str, Any]]:
    """The first object of each kind (the alerts' PrometheusRule before the catch-up's)."""
    found: dict[str, dict[str, Any]] = {}
    for d in _objects(*sets):
        found.setdefault(d["kind"], d)
    return found


def _named(*sets: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _objects(*sets)}


def test_the_chart_ships_the_catch_up_rules_as_generated_beside_the_alerts() -> None:
    """charts/costgov/files/catchup-rules.yaml: what `costgov rules` prints, checked by
    promtool, and installed as a PrometheusRule of its own unless catchupRules is false."""
    assert cli_rules.text(60, 3600) == CATCHUP.read_text()
    done = _promtool("check", "rules", str(CATCHUP))
    assert done.returncode == 0 and "SUCCESS: 5 rules found" in done.stdout, done.stdout
    on = _named("metrics.prometheusRule.enabled=true", "metrics.prometheusRule.namespace=mon")
    rule = on["costgov-costgov-catchup"]
    assert rule["kind"] == "PrometheusRule" and rule["metadata"]["namespace"] == "mon"
    assert rule["spec"] == yaml.safe_load(CATCHUP.read_text())
    assert "costgov-costgov" in on  # the alerts
    off = _named("metrics.prometheusRule.enabled=true", "metrics.prometheusRule.catchupRules=false")
    assert "costgov-costgov-catchup" not in off and "costgov-costgov" in off


def test_the_chart_ships_the_rules_file_as_it_is_when_asked() -> None:
    assert "PrometheusRule" not in _kinds()  # off by default
    rule = _kinds(
        "metrics.prometheusRule.enabled=true",
        "metrics.prometheusRule.additionalLabels.release=kube-prometheus-stack",
    )["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "costgov-system"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["labels"]["app.kubernetes.io/name"] == "costgov"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())


def test_the_rule_can_live_elsewhere_and_link_to_another_runbook() -> None:
    rule = _kinds(
        "metrics.prometheusRule.enabled=true",
        "metrics.prometheusRule.namespace=monitoring",
        "metrics.prometheusRule.runbookUrl=https://wiki.example.com/costgov",
    )["PrometheusRule"]
    assert rule["metadata"]["namespace"] == "monitoring"
    urls = {
        r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"]
        if "alert" in r
    }  # fmt: skip
    assert urls == {f"https://wiki.example.com/costgov#{a.lower()}" for a in ALERTS}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("metrics.prometheusRule.enabled=yes", "enabled"),
        ("metrics.prometheusRule.namespace=Not_A_Namespace", "namespace"),
        ("metrics.prometheusRule.runbookUrl=docs/operator.md", "runbookUrl"),
        ("metrics.prometheusRule.extra=1", "extra"),
    ],
)
def test_values_schema_rejects_bad_rule_values(value: str, message: str) -> None:
    done = _template(value)
    assert done.returncode != 0 and message in done.stderr


def test_the_service_monitor_keeps_the_namespace_series_are_about() -> None:
    monitor = _kinds("metrics.serviceMonitor.enabled=true")["ServiceMonitor"]
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True


def test_the_rules_file_is_the_only_copy() -> None:
    """No second copy of the groups to drift: the template reads the file."""
    template = (ROOT / "charts" / "costgov" / "templates" / "prometheusrule.yaml").read_text()
    assert '.Files.Get "files/prometheus-rules.yaml"' in template
    assert "alert:" not in template and "expr:" not in template
