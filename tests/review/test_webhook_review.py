"""Review (attack) findings against the running webhook (kopf + costgov's server on the kmock
emulator, as tests/integration/test_hostile.py starts it), with AdmissionReviews shaped as
kube-apiserver sends them (admission.k8s.io/v1)."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from costgov.handlers.serving import WEBHOOKS
from integration.harness import Cluster, running_operator
from integration.prom import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
NODES = 40
POLICY = {
    "apiVersion": "costgov.io/v1alpha1", "kind": "CostPolicy", "metadata": {"name": "hard"},
    "spec": {"mode": "enforce", "scope": {"namespaceSelector": {"matchLabels": {"tier": "gov"}}},
             "limits": {"maxGPUsPerWorkload": 8}},
}  # fmt: skip


def _review(resource: str, group: str, kind: str, obj: dict[str, Any], uid: str,
            sub: str | None = None, old: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    gvr = {"group": group, "version": "v1", "resource": resource}
    gvk = {"group": group, "version": "v1", "kind": kind}
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "subResource": sub, "name": obj["metadata"]["name"], "namespace": "gov",
            "operation": "UPDATE" if old is not None else "CREATE",
            "userInfo": {"username": "bob", "groups": ["system:authenticated"]},
            "object": obj, "oldObject": old, "dryRun": False,
        },
    }  # fmt: skip


def _pod(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "gov"}, "spec": spec}  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster() -> AsyncIterator[Cluster]:
    async with running_operator(f"http://127.0.0.1:{free_port()}", clock=lambda: NOW) as c:
        await c.create("v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": "gov", "labels": {"tier": "gov"}}})  # fmt: skip
        for i in range(NODES):
            await c.create("v1/nodes", {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": f"gpu-{i}", "labels": {
                    "node.kubernetes.io/instance-type": "p5.48xlarge",
                    "topology.kubernetes.io/region": "us-east-1"}},
                "status": {"allocatable": {"nvidia.com/gpu": "8"}}})  # fmt: skip
        await c.create("costgov.io/v1alpha1/costpolicies", copy.deepcopy(POLICY))
        await asyncio.sleep(2)  # indexes filled
        yield c


async def _timed(cluster: Cluster, path: str, doc: dict[str, Any]) -> tuple[int, Any, float]:
    body = json.dumps(doc)
    started = time.perf_counter()
    status, answer = await cluster.review(path, body)
    return status, answer, time.perf_counter() - started


async def test_a_3_mib_pod_of_25000_containers_is_refused_before_it_is_read(
    cluster: Cluster,
) -> None:
    """Crafted: a Pod of 25,000 one-GPU containers (2.9 MiB, under the apiserver's 3 MiB
    request limit; nothing in Pod validation bounds the number of containers).

    What happens: answered correctly (denied, 25,000 GPUs > 8) but after several hundred ms
    on this machine (reading the containers alone takes ~300 ms in-process): the event loop
    judges one review at a time, so every other admission waits, and with
    failurePolicy: Ignore (the chart's default) the apiserver admits GPU work unjudged once
    its timeout passes.  Should: within 100 ms (docs/operator.md, "Hostile input"), e.g. by
    bounding containers / refusing oversize pod specs before reading them.
    At fault: domain/podspecs.py `_pod_gpus` per-container work; services/reviews.py
    has no bound on list sizes."""
    containers = [{"name": f"c{i}", "image": "x", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
                  for i in range(25000)]  # fmt: skip
    doc = _review("pods", "", "Pod", _pod({"containers": containers}), "big-pod")
    assert len(json.dumps(doc)) < 3 * 2**20
    status, answer, _ = await _timed(cluster, "pods", doc)
    # refused before any container is read (its latency is a benchmark's business, not a test's)
    assert status == 200 and answer["response"]["allowed"] is False
    assert answer["response"]["status"]["code"] == 400
    assert "containers" in answer["response"]["status"]["message"]


async def test_8000_affinity_terms_are_refused_before_any_node_is_tried(cluster: Cluster) -> None:
    """Crafted: a hint-less 1-GPU Pod whose required node affinity has 8,000 OR-ed terms
    that match no node (0.7 MiB). With no hints it is priced at the dearest node it could
    land on: every term is tried against every GPU node (40 here; clusters have hundreds).

    What happens: several hundred ms per review, growing with nodes x terms.
    Should: within 100 ms whatever the cluster size (bound the terms, or fail closed).
    At fault: domain/placement.py `eligible` / `dearest_eligible`."""
    terms = [{"matchExpressions": [{"key": f"k{i}", "operator": "In", "values": ["v"]}]}
             for i in range(8000)]  # fmt: skip
    spec = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": terms}}},
            "containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}  # fmt: skip
    doc = _review("pods", "", "Pod", _pod(spec), "many-terms")
    status, answer, _ = await _timed(cluster, "pods", doc)
    # refused before any term is tried against a node
    assert status == 200 and answer["response"]["uid"] == "many-terms"
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["code"] == 400
    assert "8000 node selector terms" in answer["response"]["status"]["message"]


@pytest.mark.parametrize(
    ("resource", "group", "kind", "path"),
    [
        (
            "leaderworkersets",
            "leaderworkerset.x-k8s.io",
            "LeaderWorkerSet",
            "leaderworkersets-scale",
        ),
        ("pytorchjobs", "kubeflow.org", "PyTorchJob", "pytorchjobs-scale"),
    ],
)
async def test_scaling_a_lws_or_pytorchjob_is_judged(
    cluster: Cluster, resource: str, group: str, kind: str, path: str
) -> None:
    """Crafted: a LeaderWorkerSet (or PyTorchJob) admitted at 1 group of 8 GPUs, then
    `kubectl scale leaderworkerset/x --replicas=50` (or pytorchjob, whose CRD maps
    /scale to spec.pytorchReplicaSpecs.Worker.replicas), or an HPA on it: both CRDs serve
    a scale subresource (LWS documents HPA support through it).

    What happens: costgov registers no webhook for leaderworkersets/scale or
    pytorchjobs/scale (the chart's rules list only the object), so the apiserver never asks;
    the controllers then create the StatefulSets / pods, which trusted-controller rules
    judge "through their owner": 400 GPUs run unjudged. Posting the review anyway gets a
    404 here.  Should: scale requests of every kind with a scale subresource judged at the
    new count, as for Deployments/StatefulSets/ReplicaSets.
    At fault: handlers/admitting.py `ADMITTED`, charts/costgov/templates/_helpers.tpl
    `costgov.webhookRules`."""
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale",
             "metadata": {"name": "x", "namespace": "gov"}, "spec": {"replicas": 50}}  # fmt: skip
    doc = _review(resource, group, "Scale", scale, "scale-up", sub="scale",
                  old={**scale, "spec": {"replicas": 1}})  # fmt: skip
    rules = (ROOT / "charts/costgov/templates/_helpers.tpl").read_text()
    status, _answer = await cluster.review(path, json.dumps(doc))
    assert path in WEBHOOKS and f"resource: {resource}/scale" in rules, (
        f"{kind} scale requests are never judged (webhook answers {status})"
    )
