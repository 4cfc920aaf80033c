"""Estimates checked by hand: each expected figure shows its arithmetic from the price list."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from costgov.domain.capacity import CapacityType
from costgov.domain.costing import HoursSource, affordable_replicas, estimate_workload
from costgov.domain.placement import NodeInfo
from costgov.domain.reading import workload_from_object
from costgov.domain.workloads import ManifestError, NodeHints

from .helpers import CATALOG, deployment, job


def test_whole_p5_for_72_hours_on_demand() -> None:
    est = estimate_workload(workload_from_object(job(gpus=8, deadline=72 * 3600)), CATALOG)
    # one pod holding all 8 H100 of a p5.48xlarge: 8/8 x 55.04 $/h x 72 h = 3,962.88
    assert est.hourly == Decimal("55.04")
    assert est.hours == 72
    assert est.hours_source == HoursSource.DEADLINE
    assert est.amount == Decimal("3962.88")


def test_two_of_eight_a100s_for_ten_hours() -> None:
    manifest = job(
        gpus=2,
        deadline=10 * 3600,
        node_selector={"node.kubernetes.io/instance-type": "p4d.24xlarge"},
    )
    est = estimate_workload(workload_from_object(manifest), CATALOG)
    # 2/8 = 0.25 of a p4d.24xlarge (21.96 $/h) for 10 h: 0.25 x 21.96 x 10 = 54.90
    assert est.amount == Decimal("54.90")


def test_parallelism_multiplies_pods_capped_by_completions() -> None:
    manifest = job(
        gpus=4,
        parallelism=3,
        completions=2,
        deadline=3600,
        node_selector={"node.kubernetes.io/instance-type": "p4d.24xlarge"},
    )
    est = estimate_workload(workload_from_object(manifest), CATALOG)
    # min(parallelism 3, completions 2) = 2 pods x 4/8 x 21.96 $/h x 1 h = 21.96
    assert est.workload.pods == 2
    assert est.amount == Decimal("21.96")


def test_deployment_is_priced_per_month_of_730_hours() -> None:
    est = estimate_workload(workload_from_object(deployment(replicas=3)), CATALOG)
    # 3 replicas x 1/1 g5.xlarge (1.006 $/h) = 3.018 $/h; x 730 h = 2,203.14 per month
    assert est.hourly == Decimal("3.018")
    assert est.amount == Decimal("2203.14")
    assert est.hours_source == HoursSource.LONG_RUNNING


def test_stateless_deployment_with_two_replicas_gets_a_spot_option() -> None:
    est = estimate_workload(workload_from_object(deployment(replicas=2)), CATALOG)
    assert est.spot is not None
    # on demand: 2 x 1.006 x 730 = 1,468.76; spot: 2 x 0.43 x 730 x 1.10 = 690.58 (690.580)
    assert est.spot.on_demand_cost == Decimal("1468.76")
    assert est.spot.spot_cost == Decimal("690.580")
    # saving 1,468.76 - 690.58 = 778.18, i.e. 778.18 / 1,468.76 = 52.98 % -> 53.0
    assert est.spot.saving == Decimal("778.180")
    assert est.spot.saving_percent == Decimal("53.0")


def test_single_replica_stateless_workloads_get_no_spot_option() -> None:
    est = estimate_workload(workload_from_object(deployment(replicas=1)), CATALOG)
    assert est.spot is None


def test_checkpointing_job_gets_spot_with_the_overhead_written_down() -> None:
    manifest = job(gpus=8, labels={"costgov.io/checkpointing": "true"})
    est = estimate_workload(workload_from_object(manifest), CATALOG)
    assert est.spot is not None
    # spot p5.48xlarge 21.70 $/h x 72 h x 1.10 overhead = 1,718.64;
    # saving 3,962.88 - 1,718.64 = 2,244.24, 2,244.24 / 3,962.88 = 56.6 %
    assert est.spot.spot_cost == Decimal("1718.6400")
    assert est.spot.saving == Decimal("2244.2400")
    assert est.spot.saving_percent == Decimal("56.6")
    assert "10%" in est.spot.assumption


def test_budget_hints_price_an_unpinned_job_and_max_duration_bounds_it() -> None:
    manifest = job(gpus=8, deadline=None, node_selector={})
    hints = NodeHints(gpu_model="H100", capacity=CapacityType.ON_DEMAND)
    est = estimate_workload(
        workload_from_object(manifest), CATALOG, budget_hints=hints, max_duration=48 * 3600
    )
    # H100 x 8 -> smallest fit p5.48xlarge at 55.04 $/h, 48 h from the budget: 2,641.92
    assert est.amount == Decimal("2641.92")
    assert est.hours_source == HoursSource.BUDGET


def test_a_job_without_any_runtime_bound_is_priced_for_a_month_and_says_so() -> None:
    est = estimate_workload(workload_from_object(job(gpus=1, deadline=None)), CATALOG)
    # 1/8 x 55.04 = 6.88 $/h x 730 h = 5,022.40
    assert est.amount == Decimal("5022.40")
    assert any("730 h" in n for n in est.notes)


def test_unknown_gpu_product_is_unpriced_not_zero() -> None:
    manifest = job(node_selector={"nvidia.com/gpu.product": "Radeon-RX-7900"})
    est = estimate_workload(workload_from_object(manifest), CATALOG)
    assert est.amount is None
    assert est.hourly is None
    assert est.unpriced is not None
    assert est.unpriced.startswith(
        "spec.template.spec.nodeSelector['nvidia.com/gpu.product']: 'Radeon-RX-7900' is not a "
        "GPU model costgov knows"
    )


@pytest.mark.parametrize(("typo", "closest"), [("L4X", "L4"), ("H10O", "H100"), ("h2OO", "H200")])
def test_a_gpu_product_typo_names_the_field_and_the_closest_models(typo: str, closest: str) -> None:
    # Never a silent match: "L4X" is no L4. The message names the field and suggestions.
    est = estimate_workload(
        workload_from_object(job(node_selector={"nvidia.com/gpu.product": typo})), CATALOG
    )
    assert est.hourly is None
    assert est.unpriced is not None
    assert "nodeSelector['nvidia.com/gpu.product']" in est.unpriced
    assert f"did you mean {closest}" in est.unpriced


def test_node_affinity_in_one_instance_type_is_a_hint() -> None:
    manifest = job(node_selector={})
    manifest["spec"]["template"]["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "node.kubernetes.io/instance-type",
                                "operator": "In",
                                "values": ["p4de.24xlarge"],
                            }
                        ]
                    }
                ]
            }
        }
    }
    est = estimate_workload(workload_from_object(manifest), CATALOG)
    # 8/8 x 27.45 $/h x 72 h = 1,976.40
    assert est.amount == Decimal("1976.40")


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (
            lambda j: j["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].update(
                {"nvidia.com/gpu": "lots"}
            ),
            "spec.template.spec.containers[0].resources.limits.nvidia.com/gpu",
        ),
        (lambda j: j["spec"].update({"parallelism": -1}), "spec.parallelism"),
        (
            lambda j: j["spec"]["template"]["spec"].update({"containers": []}),
            "spec.template.spec.containers",
        ),
        (lambda j: j["metadata"].pop("name"), "metadata.name"),
        (
            lambda j: j["spec"]["template"]["spec"]["containers"][0]["resources"].update(
                {"requests": {"nvidia.com/gpu": 2}}
            ),
            "spec.template.spec.containers[0].resources",
        ),
    ],
)
def test_malformed_workloads_name_the_field(mutate: object, path: str) -> None:
    manifest = job()
    mutate(manifest)  # type: ignore[operator]
    with pytest.raises(ManifestError) as info:
        workload_from_object(manifest)
    assert info.value.path == path


def test_affordable_replicas_never_below_min_nor_above_max() -> None:
    # 0.40 $/h per replica x 730 = 292 per month; $1,000 pays for floor(3.42) = 3
    assert affordable_replicas(Decimal(1000), Decimal("0.40"), 2, 4) == 3
    assert affordable_replicas(Decimal(100), Decimal("0.40"), 2, 4) == 2
    assert affordable_replicas(Decimal(10000), Decimal("0.40"), 2, 4) == 4


def test_bare_pod_and_statefulset_are_priced() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "notebook", "namespace": "ml"},
        "spec": {
            "activeDeadlineSeconds": 8 * 3600,
            "nodeSelector": {"node.kubernetes.io/instance-type": "g6e.xlarge"},
            "containers": [
                {"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
            ],
        },
    }
    est = estimate_workload(workload_from_object(pod), CATALOG)
    # one L40S g6e.xlarge at 1.861 $/h for 8 h = 14.888
    assert est.amount == Decimal("14.888")
    sts = {**deployment(replicas=2, gpus=4, instance_type="g6.12xlarge"), "kind": "StatefulSet"}
    est = estimate_workload(workload_from_object(sts), CATALOG)
    # 2 replicas x 4/4 of g6.12xlarge (4.6016 $/h) = 9.2032 $/h; x 730 h = 6,718.336 a month
    assert est.hourly == Decimal("9.2032")
    assert est.amount == Decimal("6718.336")


# ------------------------------------------------------------- budget hints vs the nodes


def _node(name: str, instance_type: str) -> NodeInfo:
    labels = {"node.kubernetes.io/instance-type": instance_type,
              "topology.kubernetes.io/region": "us-east-1"}  # fmt: skip
    return NodeInfo(name, labels, 8)


L4_HINT = NodeHints(gpu_model="L4", gpu_product="L4")
H100_HINT = NodeHints(gpu_model="H100", gpu_product="H100")


def _hinted(hints: NodeHints, *nodes: NodeInfo) -> Any:
    wl = workload_from_object(job(node_selector={}, deadline=3600))
    return estimate_workload(wl, CATALOG, budget_hints=hints, nodes=nodes)


def test_a_budget_hint_never_prices_below_the_dearest_node_the_job_may_land_on() -> None:
    # hint L4 (g6.48xlarge, 13.3504 $/h for 8 GPUs), but the only GPU nodes are
    # p5.48xlarge (8 x H100, 55.04 $/h): 8/8 x 55.04 = 55.04 $/h
    est = _hinted(L4_HINT, _node("h100-a", "p5.48xlarge"))
    assert est.hourly == Decimal("55.04") and est.gpu_model == "H100"
    assert any(
        n.startswith("the budget's hints (g6.48xlarge on-demand) do not bind") for n in est.notes
    )


def test_a_budget_hint_dearer_than_the_nodes_or_with_no_node_to_take_the_job_stands() -> None:
    # hint H100 (p5.48xlarge, 55.04 $/h) on a cluster of g6.48xlarge (13.3504 $/h): 55.04
    assert _hinted(H100_HINT, _node("l4-a", "g6.48xlarge")).hourly == Decimal("55.04")
    # no GPU node yet (an autoscaler will add one): the hint, g6.48xlarge 13.3504 $/h
    assert _hinted(L4_HINT).hourly == Decimal("13.3504")


@pytest.mark.parametrize(
    ("written", "says"),
    [
        ("l40-s", "did you mean L40S"),  # a stray word: never silently the cheaper L40
        ("H100-foo", "did you mean H100"),
        ("A100", "ambiguous: A100-40GB or A100-80GB"),  # priced differently: say which
    ],
)
def test_a_written_gpu_model_must_name_one_model_exactly(written: str, says: str) -> None:
    from pydantic import ValidationError

    from costgov.api import TrainingJobBudget

    budget = {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "TrainingJobBudget",
        "metadata": {"name": "b", "namespace": "ml"},
        "spec": {"amount": 100, "selector": {"matchLabels": {"a": "b"}},
                 "hints": {"gpuModel": written}},
    }  # fmt: skip
    with pytest.raises(ValidationError) as err:
        TrainingJobBudget.model_validate(budget)
    assert "gpuModel" in str(err.value) and says in str(err.value)
    # product names as GPU feature discovery writes them still pass
    budget["spec"]["hints"]["gpuModel"] = "NVIDIA-A100-SXM4-80GB"
    assert TrainingJobBudget.model_validate(budget).spec.hints.gpu_model == "NVIDIA-A100-SXM4-80GB"
