"""Admission through the simulated cluster's apiserver for every built-in governed kind, and
the pods the real controllers then create admitted through their owners."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .cluster import Sim
from .kube import exactly, get, gpu_job, namespace, running_pods, wait_for

POLICY = {
    "apiVersion": "costgov.io/v1alpha1",
    "kind": "CostPolicy",
    "metadata": {"name": "sim-limits"},
    "spec": {
        "mode": "enforce",
        "scope": {"namespaceSelector": {"matchLabels": {"scenario": "admission"}}},
        "limits": {"maxGPUsPerWorkload": 8},
    },
}
P5 = {"node.kubernetes.io/instance-type": "p5.48xlarge"}


def _pod_spec(gpus: int) -> dict[str, object]:
    return {
        "nodeSelector": P5,
        "containers": [{"name": "c", "image": "x",
                        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}],
    }  # fmt: skip


def _kind(kind: str, name: str, gpus: int) -> dict[str, object]:
    meta = {"name": name, "namespace": "sim-admit"}
    labels = {"app": name}
    template = {"metadata": {"labels": labels}, "spec": _pod_spec(gpus)}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": _pod_spec(gpus)}
    if kind == "Job":
        return gpu_job(name, "sim-admit", gpus, P5)
    if kind == "CronJob":
        job = gpu_job(name, "sim-admit", gpus, P5)["spec"]
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job}}}  # fmt: skip
    spec: dict[str, object] = {"replicas": 2, "selector": {"matchLabels": labels},
                               "template": template}  # fmt: skip
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


@pytest.fixture(scope="module")
def governed(sim: Sim) -> Iterator[Sim]:
    namespace(sim, "sim-admit", scenario="admission")
    sim.cp.apply(POLICY)
    # a policy binds once the operator has seen it (its watch, moments after the apiserver
    # stored it): its first status says so
    wait_for(lambda: get(sim, "costpolicy", "sim-limits").get("status"), "policy seen", sim)
    yield sim
    sim.cp.kubectl("delete", "namespace", "sim-admit", "--wait=true", "--timeout=120s")
    sim.cp.kubectl("delete", "costpolicy", "sim-limits")


@pytest.mark.parametrize("kind", ["Pod", "Job", "CronJob", "Deployment", "StatefulSet"])
def test_over_the_limit_is_denied_through_the_apiserver(governed: Sim, kind: str) -> None:
    # 2 replicas x 8 GPUs = 16 > 8 for the sets; 16 GPUs in one pod for the others
    gpus = 8 if kind in ("Deployment", "StatefulSet") else 16
    import json

    done = governed.cp.kubectl(
        "apply", "-f", "-", stdin=json.dumps(_kind(kind, f"big-{kind.lower()}", gpus)), check=False
    )
    assert done.returncode != 0
    assert "admission webhook" in done.stderr and "denied the request" in done.stderr
    assert "costgov" in done.stderr and "16" in done.stderr


def test_within_the_limit_runs_and_its_pods_pass_through_their_owner(governed: Sim) -> None:
    import json

    governed.cp.kubectl("apply", "-f", "-", stdin=json.dumps(_kind("Deployment", "small", 4)))
    # the deployment and replicaset controllers create the ReplicaSet and 2 Pods: admitted
    # through the Deployment (their creators are the controllers' ServiceAccounts)
    pods = wait_for(
        lambda: exactly(running_pods(governed, "sim-admit", "app=small"), 2),
        "2 pods of the Deployment Running", governed, timeout=90,
    )  # fmt: skip
    assert len(pods) == 2
