"""What a pod holds, read from its spec: GPUs the way the scheduler counts them, and the
node its pricing hints point at."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from costgov.domain.costing import estimate_workload
from costgov.domain.reading import workload_from_object
from costgov.domain.workloads import ManifestError

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


def _affinity(*exprs: tuple[str, list[str]]) -> dict[str, Any]:
    match = [{"key": k, "operator": "In", "values": v} for k, v in exprs]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": match}]}}}  # fmt: skip


def _priced(gpus: int, *exprs: tuple[str, list[str]]) -> Any:
    pod = _pod([_c("m", gpus)], nodeSelector={}, affinity=_affinity(*exprs))
    return estimate_workload(workload_from_object(pod), CATALOG)


TYPE, CAPACITY, PRODUCT = (
    "node.kubernetes.io/instance-type", "karpenter.sh/capacity-type", "nvidia.com/gpu.product",
)  # fmt: skip


def test_an_affinity_allowing_several_instance_types_is_priced_at_the_dearest() -> None:
    # g6.48xlarge (8 x L4) 13.3504 $/h, p5.48xlarge (8 x H100) 55.04 $/h: 55.04 for 1 h,
    # whichever comes first in the list
    for values in (["g6.48xlarge", "p5.48xlarge"], ["p5.48xlarge", "g6.48xlarge"]):
        est = _priced(8, (TYPE, values))
        assert est.hourly == Decimal("55.04") and est.gpu_model == "H100"
        assert (
            f"node affinity allows {TYPE} in {values}; priced as the dearest, p5.48xlarge"
            in est.notes
        )


def test_spot_or_on_demand_is_priced_on_demand() -> None:
    # p5.48xlarge: on demand 55.04 $/h, spot 21.70 $/h: the dearer, 55.04
    est = _priced(8, (TYPE, ["p5.48xlarge"]), (CAPACITY, ["spot", "on-demand"]))
    assert est.hourly == Decimal("55.04")
    assert f"node affinity allows {CAPACITY} in ['spot', 'on-demand']; priced as the dearest, on-demand" in est.notes  # fmt: skip


def test_several_gpu_products_are_priced_at_the_dearest() -> None:
    # 8 GPUs: L4 -> g6.48xlarge 13.3504 $/h; H100 -> p5.48xlarge 55.04 $/h: 55.04
    est = _priced(8, (PRODUCT, ["NVIDIA-L4", "NVIDIA-H100-80GB-HBM3"]))
    assert est.hourly == Decimal("55.04")


def test_an_instance_type_too_small_for_the_pod_is_no_alternative() -> None:
    # g6.xlarge has 1 GPU: an 8-GPU pod never lands there; priced on p5.48xlarge, 55.04 $/h
    assert _priced(8, (TYPE, ["g6.xlarge", "p5.48xlarge"])).hourly == Decimal("55.04")


def test_an_alternative_that_cannot_be_priced_leaves_the_pod_unpriced() -> None:
    est = _priced(8, (TYPE, ["p5.48xlarge", "x9.huge"]))
    assert est.hourly is None and est.unpriced is not None
    assert est.unpriced.startswith(f"node affinity allows {TYPE}=x9.huge: instance type 'x9.huge'")


def test_too_many_combinations_are_unpriced_not_searched() -> None:
    types = [f"t{i}" for i in range(8)]
    regions = [f"r{i}" for i in range(8)]
    est = _priced(1, (TYPE, types), ("topology.kubernetes.io/region", regions))
    assert est.unpriced is not None and "64 combinations" in est.unpriced


def test_time_sliced_gpu_replicas_count_as_gpus_with_a_note() -> None:
    # 2 replicas of nvidia.com/gpu.shared, each priced as a whole GPU: 2 of the 8 GPUs of a
    # p5.48xlarge (55.04 $/h): 2/8 x 55.04 = 13.76 $/h
    wl = workload_from_object(_pod([_c("m", 2, "nvidia.com/gpu.shared")]))
    assert wl.gpus_per_pod == 2
    est = estimate_workload(wl, CATALOG)
    assert est.hourly == Decimal("13.76")
    assert any(n.startswith("nvidia.com/gpu.shared: 2 shared GPU replica(s)") for n in est.notes)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"resourceClaims": [{"name": "g", "resourceClaimTemplateName": "h100"}]},
         "spec.resourceClaims"),
        ({"initContainers": [_c("i") | {"resources": {"claims": [{"name": "g"}]}}]},
         "spec.initContainers[0].resources.claims"),
    ],
)  # fmt: skip
def test_dra_claims_are_gpu_work_that_cannot_be_priced(spec: dict[str, Any], field: str) -> None:
    wl = workload_from_object(_pod([_c("m")], **spec))
    assert wl.uses_gpus and wl.gpus_per_pod == 0
    est = estimate_workload(wl, CATALOG)
    assert est.hourly is None and est.unpriced is not None
    assert est.unpriced.startswith(f"{field}: the pods get devices through DRA ResourceClaims")


@pytest.mark.parametrize(
    ("spec", "field", "what"),
    [
        ({"containers": [_c(f"c{i}", 1) for i in range(1001)]}, "spec",
         "1001 containers and init containers: costgov judges pods with at most 1000"),
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "Exists"}]}] * 65}}}},
         "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution",
         "65 node selector terms: costgov judges pods with at most 64"),
        ({"tolerations": [{"operator": "Exists"}] * 65}, "spec.tolerations",
         "65 tolerations: costgov judges pods with at most 64"),
    ],
)  # fmt: skip
def test_absurd_pods_are_refused_before_any_work(
    spec: dict[str, Any], field: str, what: str
) -> None:
    pod = _pod([_c("m", 1)])
    pod["spec"].update(spec)
    with pytest.raises(ManifestError) as caught:
        workload_from_object(pod)
    assert caught.value.path == field and caught.value.message.startswith(what)
