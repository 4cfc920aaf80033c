"""Scale requests (`kubectl scale`, autoscalers) on every kind with a scale subresource:
the workload judged at the new replica count, group by group."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from costgov.api import CostPolicy
from costgov.domain.costing import estimate_workload
from costgov.domain.judging import Situation
from costgov.domain.reading import at_scale, workload_from_object
from costgov.services.admitting import Gate, Request, admit

from .helpers import CATALOG

UPSTREAM = Path(__file__).parents[1] / "data" / "upstream"
_NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def _upstream(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((UPSTREAM / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_a_leaderworkerset_scales_every_group_by_its_size() -> None:
    wl = workload_from_object(_upstream("lws-vllm-gpu.yaml"))  # 2 groups of size 2
    est = estimate_workload(at_scale(wl, 5), CATALOG)
    # 5 groups: 5 leaders + 5 x (2 - 1) workers, 8 H100 each on a p5.48xlarge (55.04 $/h):
    # 10 x 55.04 = 550.40 $/h
    assert [(p.group.name, p.group.pods) for p in est.parts] == [("leader", 5), ("worker", 5)]
    assert est.workload.pods == 10 and est.hourly == Decimal("550.40")


def test_a_pytorchjob_scales_its_workers_only() -> None:
    manifest = _upstream("pytorchjob-4x8-h100.yaml")
    master = {
        "replicas": 1,
        "template": manifest["spec"]["pytorchReplicaSpecs"]["Worker"]["template"],
    }
    manifest["spec"]["pytorchReplicaSpecs"]["Master"] = master
    est = estimate_workload(at_scale(workload_from_object(manifest), 10), CATALOG)
    # 1 master + 10 workers, 8 H100 each on a p5.48xlarge: 11 x 55.04 = 605.44 $/h
    assert sorted((p.group.name, p.group.pods) for p in est.parts) == [
        ("Master", 1),
        ("Worker", 10),
    ]
    assert est.hourly == Decimal("605.44")


def test_an_elastic_pytorchjob_stays_at_max_replicas_when_scaled_within_them() -> None:
    manifest = _upstream("pytorchjob-elastic-imagenet.yaml")  # maxReplicas 3
    worker = manifest["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    worker["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    wl = workload_from_object(manifest)
    assert at_scale(wl, 1).pods == 3 and at_scale(wl, 5).pods == 5


def test_kubectl_scale_of_a_leaderworkerset_is_judged_at_the_new_count() -> None:
    policy = CostPolicy.model_validate({
        "apiVersion": "costgov.io/v1alpha1", "kind": "CostPolicy", "metadata": {"name": "p"},
        "spec": {"mode": "enforce", "scope": {"namespaceSelector": {}},
                 "limits": {"maxGPUsPerWorkload": 64}}})  # fmt: skip
    manifest = _upstream("lws-vllm-gpu.yaml")
    wl = workload_from_object(manifest)
    key = (wl.kind, wl.namespace, wl.name)
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale",
             "metadata": {"name": wl.name, "namespace": wl.namespace}}  # fmt: skip

    def scaled(to: int) -> Any:
        request = Request("LeaderWorkerSet", "UPDATE", {**scale, "spec": {"replicas": to}},
                          {**scale, "spec": {"replicas": 2}}, "bob", (), False, "scale")  # fmt: skip
        situation = Situation(catalog=CATALOG, now=_NOW, policies=[policy],
                              namespaces={wl.namespace: {}})  # fmt: skip
        return admit(request, Gate(situation, workloads={key: wl}))

    # 4 groups of 2 pods x 8 GPUs = 64 GPUs: within the limit; 5 groups = 80 GPUs: denied
    assert scaled(4).allowed
    denied = scaled(5)
    assert not denied.allowed and "holds 80 GPUs" in denied.message
