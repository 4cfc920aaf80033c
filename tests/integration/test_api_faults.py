"""When only the LLM gateways' query fails: GPU figures go on, and a budget that counts API
spend holds its figures and says why (never GPU time alone passed off as the whole).

History and policies: tests/integration/test_api_budget.py. A proxy in front of the real
Prometheus answers 503 to every query that reads the gateways' counters.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp.web
import pytest
import pytest_asyncio

from .harness import Cluster, caught_up, emulator, operator_on
from .prom import running_prometheus
from .test_api_budget import CP, NOW, RESEARCH, _history, _policy
from .test_faults import FaultyProxy

pytestmark = pytest.mark.asyncio(loop_scope="module")


class GatewaysDown(FaultyProxy):
    async def _handle(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        body = await request.read()
        if b"costgov_series" in body or "costgov_series" in request.path_qs:
            return aiohttp.web.Response(status=503, text="gateway series unavailable")
        async with (
            aiohttp.ClientSession() as session,
            session.request(request.method, self.upstream + request.path_qs, data=body,
                            headers={"Content-Type": request.headers.get("Content-Type", "")})
            as response,
        ):  # fmt: skip
            return aiohttp.web.Response(status=response.status, body=await response.read(),
                                        content_type="application/json")  # fmt: skip


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    with running_prometheus(_history()) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(prometheus_url: str) -> AsyncIterator[Cluster]:
    proxy = GatewaysDown(prometheus_url)
    await proxy.start()
    async with emulator() as (k8s, api), operator_on(k8s, api, proxy.url, clock=lambda: NOW) as c:
        await c.create("v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": "ml-research", "labels": {"team": "research"}}})  # fmt: skip
        await c.create("v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": "node-a", "labels": {"node.kubernetes.io/instance-type": "p5.48xlarge"}}})  # fmt: skip
        await c.create(CP, json.loads(json.dumps(_policy("gpu-only", RESEARCH, None))))
        await c.create(CP, json.loads(json.dumps(_policy("with-api", RESEARCH, ["gpu", "api"]))))
        yield c
    await proxy.stop()


def _status(c: Cluster, name: str) -> dict[str, Any]:
    return dict(c.get(CP, None, name).get("status") or {})


async def test_gpu_figures_go_on_and_the_api_budget_holds(cluster: Cluster) -> None:
    await cluster.wait_for(lambda: caught_up(_status(cluster, "gpu-only")), timeout=60)
    gpu = _status(cluster, "gpu-only")
    # 2 h x 55.04 of GPU time; no API figure could be read: 0.00 so far, noted internally
    assert (gpu["gpuSpent"], gpu["spent"], gpu["apiSpent"]) == ("110.08", "110.08", "0.00")
    assert any(n.startswith("API gateways unread") for n in gpu["accounting"]["unpriced"])

    def held() -> bool:
        conds = {x["type"]: x for x in _status(cluster, "with-api").get("conditions") or []}
        return conds.get("MetricsAvailable", {}).get("status") == "False"

    await cluster.wait_for(held, timeout=30)
    with_api = _status(cluster, "with-api")
    conds = {x["type"]: x for x in with_api["conditions"]}
    assert "LLM gateways' spend could not be read" in conds["MetricsAvailable"]["message"]
    assert "spent" not in with_api  # never GPU time alone as the budget's figure
