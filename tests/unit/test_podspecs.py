"""What a pod holds, read from its spec: GPUs the way the scheduler counts them, and the
node its pricing hints point at."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from costgov.domain.costing import estimate_workload
from costgov.domain.reading import workload_from_object

from .helpers import CATALOG


def _c(name: str, gpus: int = 0, resource: str = "nvidia.com/gpu", **extra: Any) -> dict[str, Any]:
    limits = {resource: gpus} if gpus else {}
    return {"name": name, "image": "x", "resources": {"limits": limits}, **extra}


def _side(name: str, gpus: int) -> dict[str, Any]:
    return _c(name, gpus, restartPolicy="Always")


def _pod(containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None,
         **spec: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ml"},
        "spec": {"activeDeadlineSeconds": 3600, "containers": containers,
                 "initContainers": init or [],
                 "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"}, **spec},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("containers", "init", "gpus"),
    [
        # no sidecars: regular init containers run alone, before the others: max(2, 4) = 4
        ([_c("m", 2)], [_c("i", 4)], 4),
        # a sidecar runs alongside the containers: 8 + 8 = 16
        ([_c("m", 8)], [_side("s", 8)], 16),
        # an init container after a sidecar runs next to it: max(1 + 2, 6 + 2) = 8
        ([_c("m", 1)], [_side("s", 2), _c("i", 6)], 8),
        # an init container before the sidecar runs alone: max(1 + 2, 6) = 6
        ([_c("m", 1)], [_c("i", 6), _side("s", 2)], 6),
        # two sidecars and an init between them: max(1 + 1 + 1, 3 + 1) = 4
        ([_c("m", 1)], [_side("a", 1), _c("i", 3), _side("b", 1)], 4),
    ],
)
def test_a_pods_gpus_are_its_effective_request_with_native_sidecars(
    containers: list[dict[str, Any]], init: list[dict[str, Any]], gpus: int
) -> None:
    wl = workload_from_object(_pod(containers, init))
    assert wl.gpus_per_pod == gpus


def test_each_gpu_resource_is_taken_at_its_own_peak() -> None:
    # init: 2 whole GPUs; containers: 1 mig-3g.40gb slice (3/7 of a GPU). The scheduler takes
    # each resource at its own peak: 2 whole GPUs and 3/7 of a GPU, not one or the other.
    wl = workload_from_object(_pod([_c("m", 1, "nvidia.com/mig-3g.40gb")], [_c("i", 2)]))
    assert wl.gpus_per_pod == 2 and wl.mig_share == Decimal(3) / 7


def test_a_sidecars_gpus_are_priced() -> None:
    # 4 + 4 GPUs on a p5.48xlarge (8 x H100, 55.04 $/h): the whole node, 55.04 $/h, not
    # 4/8 x 55.04 = 27.52 $/h
    est = estimate_workload(workload_from_object(_pod([_c("m", 4)], [_side("s", 4)])), CATALOG)
    assert est.hourly == Decimal("55.04")
