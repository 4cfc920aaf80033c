"""Every query of every Grafana dashboard returns data from the simulated cluster's Prometheus,
which scrapes the operator's /metrics beside kube-state-metrics and the fake dcgm-exporter.

The scenario makes what the panels show: a team's namespace with a priced 4-GPU Job running
at 25 % GPU utilisation (dollars, idle dollars), its TrainingJobBudget lowered below what it
has spent (a budget over 80 % and used up, a violation), a CostPolicy with a budget (the
other kind of budget) that denies an 8-GPU Job (a denial), and, while the admission panels
are read, a stream of server-side dry runs (their rates are per minute).

Grafana's variables are put in as "All" (`.*`), `$__rate_interval` as 1m and `$__range` as
10m. Each query is an instant query now, as stat, bar and table panels ask it; a time
series panel asks the same expression over a range.
"""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from tests.integration.dashboards import Query, concrete, every_query

from .cluster import Sim
from .kube import budget, get, gpu_job, namespace, promql, running_pods, status, wait_for

NS, TEAM = "sim-dash", "ml-research"
P5 = {"node.kubernetes.io/instance-type": "p5.48xlarge"}
TJB = "trainingjobbudgets.costgov.io"
SIM_VALUES = {
    "namespace": ".*",
    "team": ".*",
    "kind": ".*",
    "__rate_interval": "1m",
    "__range": "10m",
    "__interval": "15s",
}
POLICY = {
    "apiVersion": "costgov.io/v1alpha1",
    "kind": "CostPolicy",
    "metadata": {"name": "sim-dash"},
    "spec": {
        "mode": "enforce",
        "scope": {"namespaceSelector": {"matchLabels": {"scenario": "dashboards"}}},
        "limits": {"maxGPUsPerWorkload": 4},
        "budget": {"amount": 1000000, "onExceeded": "alert"},
    },
}


def _spending(sim: Sim) -> bool:
    found = status(sim, TJB, "dash", NS).get("spent")
    return found not in (None, "0.00")


@pytest.fixture(scope="module")
def scenario(sim: Sim) -> Iterator[Sim]:
    namespace(sim, NS, team=TEAM, scenario="dashboards")
    sim.cp.apply(POLICY)
    wait_for(lambda: get(sim, "costpolicy", "sim-dash").get("status"), "policy seen", sim)
    sim.cp.apply(budget("dash", NS, "10000"))
    sim.cp.apply(gpu_job("train", NS, 4, P5, labels={"costgov.io/budget": "dash"}, util=25))
    wait_for(lambda: running_pods(sim, NS, "job-name=train"), "pod Running", sim)
    wait_for(lambda: _spending(sim), "spend accruing", sim, timeout=120)
    # 4 of a p5.48xlarge's 8 GPUs: 27.52 $/h; $0.05 is spent in under 7 s of running
    sim.cp.kubectl("patch", TJB, "dash", "-n", NS, "--type=merge",
                   "-p", '{"spec":{"amount":"0.05"}}')  # fmt: skip
    denied = sim.cp.kubectl("create", "-f", "-", check=False,
                            stdin=json.dumps(gpu_job("too-big", NS, 8, P5)))  # fmt: skip
    assert denied.returncode != 0 and "denied the request" in denied.stderr
    yield sim
    sim.cp.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=120s")
    sim.cp.kubectl("delete", "costpolicy", "sim-dash")


def _admit_one(sim: Sim) -> None:
    """One more admission decision (a server-side dry run is judged and counted too)."""
    job = gpu_job("probe", NS, 1, P5)
    sim.cp.kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(job))


def _finite(result: list[dict[str, object]]) -> bool:
    return any(math.isfinite(float(r["value"][1])) for r in result)  # type: ignore[index]


QUERIES = every_query()


@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_every_dashboard_query_returns_data(scenario: Sim, query: Query) -> None:
    expr = concrete(query.expr, SIM_VALUES)
    admission = "costgov_admission_" in expr

    def answered() -> list[dict[str, object]] | None:
        if admission:
            _admit_one(scenario)
        found = promql(scenario, expr)
        return found if _finite(found) else None

    found = wait_for(answered, f"data for {query.name}: {expr}", scenario, timeout=180, every=2)
    assert found


def _label_values(sim: Sim, label: str, match: str) -> list[str]:
    query = urllib.parse.urlencode({"match[]": match})
    url = f"{sim.prometheus_url}/api/v1/label/{label}/values?{query}"
    with urllib.request.urlopen(url, timeout=10) as r:
        values = json.load(r)["data"]
    assert isinstance(values, list)
    return values


def test_the_team_and_namespace_variables_offer_the_scenarios_team(scenario: Sim) -> None:
    teams = wait_for(
        lambda: TEAM in (v := _label_values(scenario, "team", "costgov_hourly_cost_dollars")) and v,
        "the namespace's team label on costgov_hourly_cost_dollars", scenario,
    )  # fmt: skip
    assert TEAM in teams
    selector = f'costgov_hourly_cost_dollars{{team=~"{TEAM}"}}'
    assert _label_values(scenario, "namespace", selector) == [NS]
    # the spend of the team is the Job's: 27.52 $/h, whatever else runs in the cluster
    (line,) = promql(scenario, f"sum by (team) ({selector.replace('=~', '=')})")
    assert float(line["value"][1]) == pytest.approx(27.52)


def _panel(title: str) -> str:
    (found,) = [q.expr for q in QUERIES if q.where == f"{title} [A]"]
    return concrete(found, {**SIM_VALUES, "namespace": NS})


def test_idle_dollars_are_the_unused_share_of_what_the_pods_cost(scenario: Sim) -> None:
    # the Job's pod: 27.52 $/h at 25 % GPU utilisation (its dcgm-exporter series), so
    # 75 % of 27.52 = 20.64 $/h pays for idle GPUs, and the namespace uses 25 % of its dollars
    idle = wait_for(
        lambda: promql(scenario, _panel("Idle GPU burn by namespace")),
        "idle dollars of the scenario's namespace", scenario,
    )  # fmt: skip
    assert [r["metric"]["namespace"] for r in idle] == [NS]
    assert float(idle[0]["value"][1]) == pytest.approx(20.64)
    (used,) = promql(scenario, _panel("Cost-weighted GPU utilisation by namespace"))
    assert float(used["value"][1]) == pytest.approx(25)
    (pod,) = promql(scenario, _panel("Most idle spend now"))
    assert pod["metric"]["pod"].startswith("train-") and pod["metric"]["team"] == TEAM
