"""A spend spike raises SpendAnomaly, an Event and a metric naming what drove it: the
operator on kmock and a real Prometheus holding three days of hourly history.

History (one sample a minute, H = a whole hour in the past; the operator's clock is pinned
to H + 5 min, so the last full hour is the one ending at H):
- LiteLLM (litellm_spend_metric_total with the token counters' label set, team_alias named
  like the namespace): team ml-research on gpt-4o spends $2 in even hours and $3 in odd
  hours for three days, then $40 in the hour ending at H. Team ml-serving spends a steady
  $1 an hour throughout.
- costgov_hourly_cost_dollars{namespace="ml-research", workload="train-0"} (costgov's own
  gauge, as Prometheus holds it when it scrapes the operator): a steady 55.04 $/h.

By hand (rolling baseline: three days is less than the two weeks an hour-of-week baseline
needs; pstdev over the 72 earlier hours; threshold = max(mean + 2 sd, mean + $10)):
- team/ml-research: mean (2 + 3) / 2 = 2.50, sd 0.50, threshold max(3.50, 12.50) = 12.50;
  $40 > 12.50: anomalous, driven by model openai/gpt-4o.
- namespace/ml-research: GPU 55.04 + API: mean 57.54, sd 0.50, threshold 67.54;
  55.04 + 40 = 95.04 > 67.54: anomalous, driven by the LiteLLM team (its hour rose 37.50
  over its mean, the GPU's 0).
- team/ml-serving: $1 every hour, sd 0, threshold 11: not anomalous.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from .harness import Cluster, running_operator
from .prom import History, running_prometheus

pytestmark = pytest.mark.asyncio(loop_scope="module")

H = (int(datetime.now(UTC).timestamp()) // 3600 - 3) * 3600
START = H - 73 * 3600  # the first hour a three-day range query reads ends at H - 72 h
NOW = datetime.fromtimestamp(H + 300, UTC)
CP = "costgov.io/v1alpha1/costpolicies"
_LITELLM = {"end_user": "None", "hashed_api_key": "88dc28d0f030c55e", "api_key_alias": "None",
            "team": "3a4f9c", "user": "default_user_id", "user_email": "None",
            "model_id": "a1b2c3", "model": "gpt-4o"}  # fmt: skip


def _hourly(h: History, metric: str, labels: dict[str, str], per_hour: Any) -> None:
    """A counter that grows per_hour(hour index) dollars, evenly, in each hour."""
    total = 0.0
    for hour in range(73):
        base = START + hour * 3600
        rate = per_hour(hour)
        for minute in range(60):
            h.add(metric, labels, total + rate * minute / 60, base + minute * 60)
        total += rate
    h.add(metric, labels, total, START + 73 * 3600)


def _history() -> History:
    h = History()

    def research(hour: int) -> float:  # the hour [START + hour h, +1 h]; hour 72 ends at H
        return 40.0 if hour == 72 else (2.0 if hour % 2 == 0 else 3.0)

    _hourly(h, "litellm_spend_metric_total", {**_LITELLM, "team_alias": "ml-research"}, research)
    _hourly(h, "litellm_spend_metric_total", {**_LITELLM, "team_alias": "ml-serving"},
            lambda hour: 1.0)  # fmt: skip
    gauge = {"namespace": "ml-research", "team": "research", "workload": "train-0"}
    for ts in range(START + 60, H + 61, 60):  # the hours the spend counters cover
        h.add("costgov_hourly_cost_dollars", gauge, 55.04, ts)
    return h


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


def _policy(name: str, scope: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "costgov.io/v1alpha1", "kind": "CostPolicy",
            "metadata": {"name": name, "generation": 1},
            "spec": {"mode": "audit", "scope": scope,
                     "budget": {"amount": 100000, "sources": ["gpu", "api"]}}}  # fmt: skip


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(prometheus_url: str) -> AsyncIterator[Cluster]:
    async with running_operator(prometheus_url, clock=lambda: NOW) as c:
        for ns, team in (("ml-research", "research"), ("ml-serving", "serving")):
            await c.create("v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": ns, "labels": {"team": team}}})  # fmt: skip
        await c.create(
            CP, _policy("research", {"namespaceSelector": {"matchLabels": {"team": "research"}}})
        )
        await c.create(
            CP, _policy("serving", {"namespaceSelector": {"matchLabels": {"team": "serving"}}})
        )
        yield c


def _conditions(c: Cluster, name: str) -> dict[str, dict[str, Any]]:
    status = c.get(CP, None, name).get("status") or {}
    return {x["type"]: x for x in status.get("conditions") or []}


def _events(c: Cluster) -> list[dict[str, Any]]:
    return [dict(o.last.raw) for key, o in c.k8s.objects.items()
            if o.last is not None and key[0].plural == "events"]  # fmt: skip


async def test_a_spike_raises_the_condition_naming_its_driver(cluster: Cluster) -> None:
    await cluster.wait_for(lambda: "SpendAnomaly" in _conditions(cluster, "research"), timeout=60)
    cond = _conditions(cluster, "research")["SpendAnomaly"]
    assert (cond["status"], cond["reason"]) == ("True", "SpendSpike")
    message = cond["message"]
    assert "team/ml-research: $40.00" in message
    assert "rolling baseline of $2.50 +/- $0.50 (72 hours; threshold $12.50)" in message
    assert "driven by model openai/gpt-4o" in message
    assert "namespace/ml-research: $95.04" in message
    assert "baseline of $57.54 +/- $0.50" in message and "threshold $67.54" in message
    assert "driven by litellm team ml-research, model openai/gpt-4o" in message
    assert "ml-serving" not in message


async def test_a_quiet_policy_gets_no_condition(cluster: Cluster) -> None:
    await cluster.wait_for(lambda: "SpendAnomaly" in _conditions(cluster, "research"), timeout=60)
    assert "SpendAnomaly" not in _conditions(cluster, "serving")
    assert "Ready" in _conditions(cluster, "serving")


async def test_one_event_per_anomaly_and_a_metric(cluster: Cluster) -> None:
    await cluster.wait_for(lambda: "SpendAnomaly" in _conditions(cluster, "research"), timeout=60)
    await cluster.wait_for(
        lambda: sum(e.get("reason") == "SpendAnomaly" for e in _events(cluster)) >= 2
    )
    import asyncio

    await asyncio.sleep(3)  # several more cycles: no more events for the same hour
    spikes = [e["message"] for e in _events(cluster) if e.get("reason") == "SpendAnomaly"]
    assert len(spikes) == 2, json.dumps(spikes)
    assert {m.split(":")[0] for m in spikes} == {"team/ml-research", "namespace/ml-research"}
    registry = cluster.runtime.metrics.registry
    ratio = registry.get_sample_value(
        "costgov_spend_anomaly_ratio",
        {"subject": "team/ml-research", "source": "api", "driver": "model openai/gpt-4o"},
    )
    assert ratio == pytest.approx(40 / 12.5)  # $40 over the $12.50 threshold
    # the model subject too: openai/gpt-4o spent 40 + 1 = 41 against 3.5 +/- 0.5 (max(4.5, 13.5))
    model = registry.get_sample_value(
        "costgov_spend_anomaly_ratio",
        {"subject": "model/openai/gpt-4o", "source": "api", "driver": "team ml-research"},
    )
    assert model == pytest.approx(41 / 13.5)
