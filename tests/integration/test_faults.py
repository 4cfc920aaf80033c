"""Faults in the middle of a run: Prometheus answering 5xx, too slow, stopped; the operator
restarted while Prometheus is down. Figures are never reset to $0: the last good ones stay,
and MetricsAvailable says why.

Same history and prices as test_operator.py: the budget's Jobs cost 110.08 + 101.824.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import aiohttp.web
import pytest
import pytest_asyncio

from .harness import Cluster, caught_up, emulator, operator_on
from .prom import free_port, running_prometheus
from .test_operator import NODES, NOW, POLICY, _budget, _history, _job

pytestmark = pytest.mark.asyncio(loop_scope="module")
TJB = "costgov.io/v1alpha1/trainingjobbudgets"


class FaultyProxy:
    """A reverse proxy in front of the real Prometheus that can misbehave on demand."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.port = free_port()
        self._runner: aiohttp.web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        if self.mode == "5xx":
            return aiohttp.web.Response(status=503, text="upstream overloaded")
        if self.mode == "slow":
            await asyncio.sleep(5)  # the operator's query timeout is 2 s
        body = await request.read()
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                data=body,
                headers={"Content-Type": request.headers.get("Content-Type", "")},
            ) as response,
        ):
            payload = await response.read()
            if self.mode == "warn":  # what Prometheus adds when, e.g., a query hit a limit
                doc = json.loads(payload)
                doc["warnings"] = ["PromQL info: metric might not be a counter"]
                payload = json.dumps(doc).encode()
            return aiohttp.web.Response(
                status=response.status, body=payload, content_type="application/json"
            )

    async def start(self) -> None:
        app = aiohttp.web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = aiohttp.web.AppRunner(app)
        await self._runner.setup()
        await aiohttp.web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(prometheus_url: str) -> AsyncIterator[tuple[Any, str, FaultyProxy]]:
    proxy = FaultyProxy(prometheus_url)
    await proxy.start()
    async with emulator() as (k8s, api):
        yield k8s, api, proxy
    await proxy.stop()


def _conds(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions", [])}


def _tjb(c: Cluster) -> dict[str, Any]:
    return dict(c.get(TJB, "ml-research", "llama-finetune").get("status") or {})


async def _seed(c: Cluster) -> None:
    await c.create(
        "v1/namespaces",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "ml-research", "labels": {"costgov.io/governed": "true"}},
        },
    )
    for node, labels in NODES.items():
        await c.create(
            "v1/nodes",
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": labels}},
        )
    await c.create("costgov.io/v1alpha1/costpolicies", json.loads(json.dumps(POLICY)))
    await c.create(TJB, _budget("llama-finetune", 200))
    await c.create("batch/v1/jobs", _job("train-1", finished=True))
    await c.create("batch/v1/jobs", _job("train-2", finished=False))


async def _unavailable(c: Cluster, fragment: str) -> dict[str, Any]:
    def check() -> bool:
        cond = _conds(_tjb(c)).get("MetricsAvailable", {})
        return cond.get("status") == "False" and fragment in cond.get("message", "")

    await c.wait_for(check, timeout=45, describe=lambda: repr(_conds(_tjb(c))))
    return _tjb(c)


async def test_figures_survive_5xx_slowness_outage_and_a_restart(
    world: tuple[Any, str, FaultyProxy],
) -> None:
    k8s, api, proxy = world
    async with operator_on(k8s, api, proxy.url, clock=lambda: NOW) as c:
        await _seed(c)
        await c.wait_for(lambda: _tjb(c).get("spent") == "211.90", timeout=45)
        good = _tjb(c)
        assert _conds(good)["MetricsAvailable"]["status"] == "True"

        proxy.mode = "warn"  # a successful answer with warnings: surfaced, figures still good
        await c.wait_for(
            lambda: (
                _conds(_tjb(c)).get("MetricsAvailable", {}).get("reason") == "PrometheusWarnings"
            ),
            timeout=45,
        )
        cond = _conds(_tjb(c))["MetricsAvailable"]
        assert cond["status"] == "True"
        assert "metric might not be a counter" in cond["message"]
        assert _tjb(c)["spent"] == "211.90"

        proxy.mode = "5xx"  # Prometheus answers 503 (after the client's retry)
        status = await _unavailable(c, "503")
        assert status["spent"] == good["spent"] == "211.90"
        assert status["figuresAsOf"] == good["figuresAsOf"]
        assert _conds(status)["MetricsAvailable"]["reason"] == "PrometheusUnavailable"

        proxy.mode = "slow"  # slower than the 2 s query timeout
        status = await _unavailable(c, "no answer within 2 s")
        assert status["spent"] == "211.90" and status["remaining"] == "-11.90"

        await proxy.stop()  # Prometheus is gone
        status = await _unavailable(c, "ConnectionError")
        assert status["spent"] == "211.90"
        # the budget stays exhausted on the last known figures: the Job stays suspended
        assert status["phase"] == "Exhausted" and status["suspendedJobs"] == ["train-2"]

    # The operator restarts while Prometheus is still down: nothing is reset.
    async with operator_on(k8s, api, proxy.url, clock=lambda: NOW) as c:
        await c.wait_for(
            lambda: (
                c.runtime.ledger is not None
                and _conds(_tjb(c)).get("MetricsAvailable", {}).get("status") == "False"
                and "ConnectionError" in _conds(_tjb(c))["MetricsAvailable"]["message"]
            )
        )
        await asyncio.sleep(2)  # a few cycles of the new process
        status = _tjb(c)
        assert status["spent"] == "211.90" and status["remaining"] == "-11.90"
        assert status["figuresAsOf"] == good["figuresAsOf"]
        assert status["jobs"] == good["jobs"]

        proxy.mode = "pass"
        await proxy.start()  # Prometheus is back: figures are recomputed, the same
        await c.wait_for(
            lambda: _conds(_tjb(c)).get("MetricsAvailable", {}).get("status") == "True", timeout=45
        )
        assert _tjb(c)["spent"] == "211.90"

        def policy() -> dict[str, Any]:
            found = c.get("costgov.io/v1alpha1/costpolicies", None, "ml-platform")
            return dict(found.get("status") or {})

        # the month to date is counted a chunk at a time; once current, only the budget's
        # Jobs are in this world
        await c.wait_for(lambda: caught_up(policy()), timeout=45)
        assert policy()["spent"] == "211.90"
