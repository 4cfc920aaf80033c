"""Every kind ML teams submit, read from the projects' own examples (tests/data/upstream,
each file names its source) and priced by hand from the bundled price list."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from costgov.domain.costing import HoursSource, estimate_workload
from costgov.domain.reading import workload_from_object
from costgov.domain.workloads import ManifestError

from .helpers import CATALOG

UPSTREAM = Path(__file__).parents[1] / "data" / "upstream"


def upstream(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((UPSTREAM / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_pytorchjob_of_four_workers_with_eight_h100_each_is_one_workload() -> None:
    est = estimate_workload(workload_from_object(upstream("pytorchjob-4x8-h100.yaml")), CATALOG)
    # 8 H100 per pod: the smallest aws us-east-1 H100 instance holding 8 is p5.48xlarge,
    # 55.04 $/h. 4 pods x 8/8 x 55.04 = 220.16 $/h; 48 h (172,800 s) -> 220.16 x 48 = 10,567.68
    assert est.workload.total_gpus == 32
    assert est.hourly == Decimal("220.16")
    assert est.hours == 48
    assert est.hours_source == HoursSource.DEADLINE
    assert est.amount == Decimal("10567.68")
    assert est.offering is not None and est.offering.instance_type == "p5.48xlarge"
    assert any("whole node: each pod fills a p5.48xlarge" in n for n in est.notes)


def test_pytorchjob_master_and_worker_are_priced_together() -> None:
    est = estimate_workload(workload_from_object(upstream("pytorchjob-mnist-nccl.yaml")), CATALOG)
    # Master 1 pod + Worker 1 pod, 1 of the 8 GPUs of a p5.48xlarge each: 2 x 1/8 x 55.04
    # = 13.76 $/h; no runPolicy.activeDeadlineSeconds -> one month, 730 h: 10,044.80
    assert [(p.group.name, p.hourly) for p in est.parts] == [
        ("Master", Decimal("6.88")),
        ("Worker", Decimal("6.88")),
    ]
    assert est.hourly == Decimal("13.76")
    assert est.amount == Decimal("10044.80")
    assert (
        "Master: shared node: each pod holds 1 of the 8 GPUs of a p5.48xlarge, priced at 1/8 of it"
        in est.notes
    )


def test_cpu_only_pytorchjob_needs_no_price() -> None:
    wl = workload_from_object(upstream("pytorchjob-elastic-imagenet.yaml"))
    assert not wl.uses_gpus
    est = estimate_workload(wl, CATALOG)
    assert est.hourly is None and est.unpriced == "requests no GPU"


def test_elastic_pytorchjob_is_priced_at_its_most_workers() -> None:
    manifest = upstream("pytorchjob-elastic-imagenet.yaml")
    worker = manifest["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    worker["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    worker["nodeSelector"] = {"node.kubernetes.io/instance-type": "g5.xlarge"}
    est = estimate_workload(workload_from_object(manifest), CATALOG)
    # elasticPolicy.maxReplicas 3 (replicas says 2): 3 x g5.xlarge 1.006 $/h = 3.018 $/h
    assert est.workload.pods == 3
    assert est.hourly == Decimal("3.018")


def test_leaderworkerset_counts_leaders_and_workers_and_is_never_offered_spot() -> None:
    est = estimate_workload(workload_from_object(upstream("lws-vllm-gpu.yaml")), CATALOG)
    # 2 groups of size 2: 2 leaders + 2 workers, 8 H100 each on p5.48xlarge (55.04 $/h):
    # 4 x 55.04 = 220.16 $/h; a model server runs all month: 220.16 x 730 = 160,716.80
    assert [(p.group.name, p.group.pods) for p in est.parts] == [("leader", 2), ("worker", 2)]
    assert est.hourly == Decimal("220.16")
    assert est.hours_source == HoursSource.LONG_RUNNING
    assert est.amount == Decimal("160716.80")
    assert est.spot is None  # pods hold per-group state, as a StatefulSet's do


def test_rayjob_head_and_worker_group() -> None:
    est = estimate_workload(workload_from_object(upstream("rayjob-text-classifier.yaml")), CATALOG)
    # head: 1 pod, 1 A10G of a g5.xlarge (1.006 $/h) = 1.006; workers: replicas 2, 4 GPUs of
    # a g5.12xlarge (5.672 $/h, 4 A10G) each = 11.344; 12.35 $/h x 2 h = 24.70
    assert est.workload.name == "pytorch-text-classifier-<generated>"
    assert est.hourly == Decimal("12.350")
    assert est.amount == Decimal("24.700")


def test_autoscaling_ray_cluster_is_priced_at_max_replicas() -> None:
    manifest = upstream("rayjob-text-classifier.yaml")
    manifest["spec"]["rayClusterSpec"]["enableInTreeAutoscaling"] = True
    est = estimate_workload(workload_from_object(manifest), CATALOG)
    # workers at maxReplicas 4: 4 x 5.672 = 22.688, + head 1.006 = 23.694 $/h
    assert est.hourly == Decimal("23.694")


def test_jobset_multiplies_replicas_by_parallelism_and_skips_cpu_jobs() -> None:
    est = estimate_workload(workload_from_object(upstream("jobset-parallel.yaml")), CATALOG)
    # workers: 2 Jobs x parallelism 4 = 8 pods x 1 L4 on g6.xlarge (0.8048 $/h) = 6.4384 $/h;
    # the driver requests no GPU. 1 h -> 6.4384
    assert [p.group.name for p in est.parts] == ["workers"]
    assert est.workload.pods == 9
    assert est.hourly == Decimal("6.4384")
    assert est.amount == Decimal("6.4384")


def test_cronjob_is_priced_per_run_and_per_month() -> None:
    est = estimate_workload(workload_from_object(upstream("cronjob-nightly.yaml")), CATALOG)
    # "0 2 * * *" fires 365 times in 2026: 365 / 12 = 30.41666... runs a month, each up to
    # 4 h (14,400 s) of a whole p5.48xlarge (55.04 $/h): 220.16 a run; a month:
    # 30.41666... x 4 h = 121.6666... h x 55.04 = 6,696.5333...
    assert est.hours_source == HoursSource.SCHEDULE
    assert est.per_run == Decimal("220.16")
    assert est.amount is not None
    assert est.amount.quantize(Decimal("0.01")) == Decimal("6696.53")


@pytest.mark.parametrize(
    ("schedule", "policy", "deadline", "hours"),
    [
        # every 15 minutes: 4 x 24 x 365 / 12 = 2,920 runs; 1 h each may overlap (Allow)
        ("*/15 * * * *", "Allow", 3600, Decimal(2920)),
        # ... but never with Forbid: at most one run at a time, 730 h
        ("*/15 * * * *", "Forbid", 3600, Decimal(730)),
        # weekdays at 09:00: 261 weekdays in 2026 / 12 = 21.75 runs x 2 h = 43.5 h
        ("0 9 * * 1-5", "Forbid", 7200, Decimal("43.5")),
        # @weekly: 52 Sundays in 2026 / 12 runs x 1 h
        ("@weekly", "Allow", 3600, Decimal(52) / 12),
    ],
)
def test_cronjob_hours_a_month(schedule: str, policy: str, deadline: int, hours: Decimal) -> None:
    manifest = upstream("cronjob-nightly.yaml")
    manifest["spec"].update(schedule=schedule, concurrencyPolicy=policy)
    manifest["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] = deadline
    est = estimate_workload(workload_from_object(manifest), CATALOG)
    assert est.hours == hours


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("61 * * * *", "minute: 61 is outside 0-59"),
        ("* * *", "expected five fields"),
        ("0 0 * * FRY", "day of week: 'FRY' is not a number"),
        ("@every 0s", "at least one second"),
    ],
)
def test_bad_cron_schedules_name_the_field(schedule: str, message: str) -> None:
    manifest = upstream("cronjob-nightly.yaml")
    manifest["spec"]["schedule"] = schedule
    with pytest.raises(ManifestError, match=r"spec\.schedule") as caught:
        workload_from_object(manifest)
    assert message in str(caught.value)


def test_mig_slices_are_priced_as_their_share_of_a_gpu() -> None:
    manifest = upstream("cronjob-nightly.yaml")["spec"]["jobTemplate"]
    manifest = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "mig"}, **manifest}
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"nvidia.com/mig-3g.40gb": 2}}
    est = estimate_workload(workload_from_object(manifest), CATALOG)
    # two 3g.40gb slices = 2 x 3/7 = 6/7 of one H100 of a p5.48xlarge (8 GPUs, 55.04 $/h):
    # 55.04 x (6/7) / 8 = 5.8971... $/h; 4 h -> 23.588...
    assert est.hourly is not None
    assert est.hourly.quantize(Decimal("0.0001")) == Decimal("5.8971")
    assert est.amount is not None and est.amount.quantize(Decimal("0.01")) == Decimal("23.59")


def test_unknown_mig_profile_is_an_error_naming_the_field() -> None:
    manifest = upstream("cronjob-nightly.yaml")
    container = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"nvidia.com/mig-9g.99gb": 1}}
    with pytest.raises(
        ManifestError, match=r"containers\[0\]\.resources\.limits\.nvidia\.com/mig-9g"
    ):
        workload_from_object(manifest)


def test_amd_gpus_are_counted_and_mi300x_priced_on_azure() -> None:
    manifest = upstream("cronjob-nightly.yaml")["spec"]["jobTemplate"]
    pod = manifest["spec"]["template"]["spec"]
    pod["nodeSelector"] = {
        "node.kubernetes.io/instance-type": "Standard_ND96isr_MI300X_v5",
        "topology.kubernetes.io/region": "eastus2",
    }
    pod["containers"][0]["resources"] = {"limits": {"amd.com/gpu": 8}}
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "amd"}, **manifest}
    est = estimate_workload(workload_from_object(job), CATALOG)
    # Karpenter's Azure list: Standard_ND96isr_MI300X_v5 in eastus2 48.00 $/h; 8/8 x 4 h = 192
    assert est.gpu_model == "MI300X"
    assert est.amount == Decimal("192.00")


def test_h200_in_a_region_with_no_h200_instance_is_unpriced_not_on_prem() -> None:
    manifest = upstream("cronjob-nightly.yaml")["spec"]["jobTemplate"]
    manifest["spec"]["template"]["spec"]["nodeSelector"] = {
        "nvidia.com/gpu.product": "NVIDIA-H200",
        "topology.kubernetes.io/region": "eu-west-1",
        "karpenter.sh/capacity-type": "on-demand",
    }
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "h200"}, **manifest}
    est = estimate_workload(workload_from_object(job), CATALOG)
    assert est.hourly is None
    assert est.unpriced is not None
    assert "no instance with 8 H200 GPU(s) in aws eu-west-1" in est.unpriced
    assert "aws us-east-1" in est.unpriced  # where the catalog does list H200


def test_statefulset_is_never_called_stateless_nor_offered_spot() -> None:
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2,
            "template": {
                "spec": {
                    "nodeSelector": {"node.kubernetes.io/instance-type": "g5.xlarge"},
                    "containers": [{"name": "x", "resources": {"limits": {"nvidia.com/gpu": 1}}}],
                }
            },
        },
    }
    est = estimate_workload(workload_from_object(sts), CATALOG)
    assert est.spot is None
    assert not any("stateless" in n for n in est.notes)


def test_one_h100_takes_the_smallest_h100_instance_whole() -> None:
    manifest = upstream("cronjob-nightly.yaml")["spec"]["jobTemplate"]
    pod = manifest["spec"]["template"]["spec"]
    pod["nodeSelector"] = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    pod["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "one"}, **manifest}
    est = estimate_workload(workload_from_object(job), CATALOG)
    # the smallest aws us-east-1 instance with an H100: p5.4xlarge (1 GPU), 6.88 $/h, whole
    assert est.offering is not None and est.offering.instance_type == "p5.4xlarge"
    assert est.hourly == Decimal("6.88")
    assert "whole node: each pod fills a p5.4xlarge (1 GPU)" in est.notes


def test_one_gpu_of_a_named_p5_48xlarge_is_an_eighth_and_says_so() -> None:
    manifest = upstream("cronjob-nightly.yaml")["spec"]["jobTemplate"]
    manifest["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"nvidia.com/gpu": 1}
    }
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "one"}, **manifest}
    est = estimate_workload(workload_from_object(job), CATALOG)
    # 1 of the 8 GPUs of a p5.48xlarge: 55.04 / 8 = 6.88 $/h
    assert est.hourly == Decimal("6.88")
    assert (
        "shared node: each pod holds 1 of the 8 GPUs of a p5.48xlarge, priced at 1/8 of it"
        in est.notes
    )


def _spot_on_any_provisioner(instance: str) -> dict[str, Any]:
    """A Deployment that asks for spot the way a portable chart does: one required
    node-affinity term per provisioner's spot label (the terms are ORed by the scheduler)."""
    terms = [
        {"matchExpressions": [{"key": key, "operator": "In", "values": [value]}]}
        for key, value in (
            ("karpenter.sh/capacity-type", "spot"),
            ("eks.amazonaws.com/capacityType", "SPOT"),
            ("kubernetes.azure.com/scalesetpriority", "spot"),
        )
    ]
    pod = {
        "nodeSelector": {"node.kubernetes.io/instance-type": instance},
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": terms}}},
        "containers": [{"name": "s", "image": "vllm", "resources": {"limits": {"nvidia.com/gpu": 1}}}],
    }  # fmt: skip
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "srv", "namespace": "ml"},
        "spec": {"replicas": 2, "template": {"spec": pod}},
    }


def test_spot_asked_on_every_provisioner_is_priced_as_spot() -> None:
    est = estimate_workload(workload_from_object(_spot_on_any_provisioner("g6.xlarge")), CATALOG)
    # every alternative is spot: g6.xlarge spot in us-east-1, 0.40 $/h x 2 replicas = 0.80
    assert est.hourly == Decimal("0.80")


def test_spot_or_on_demand_alternatives_are_priced_on_demand() -> None:
    obj = _spot_on_any_provisioner("g6.xlarge")
    terms = obj["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]  # fmt: skip
    terms.append(
        {"matchExpressions": [{"key": "karpenter.sh/capacity-type", "operator": "In",
                               "values": ["on-demand"]}]}
    )  # fmt: skip
    est = estimate_workload(workload_from_object(obj), CATALOG)
    # one alternative is on demand, the dearer case: 0.8048 $/h x 2 = 1.6096
    assert est.hourly == Decimal("1.6096")
