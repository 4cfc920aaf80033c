"""Catalog lookups: every capacity-type convention, unknown types, GPU names, shares."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from costgov.api.gpus import normalize_gpu_model
from costgov.domain.capacity import CapacityType, capacity_from_labels
from costgov.domain.catalogs import GPUHourPrice, PriceCatalog
from costgov.domain.offerings import Offering, Unpriced, offering_for_node, offering_for_request
from costgov.domain.shares import gpu_share, remainder_share

from .helpers import CATALOG

IT = "node.kubernetes.io/instance-type"
REGION = "topology.kubernetes.io/region"


@pytest.mark.parametrize(
    ("labels", "capacity", "label"),
    [
        ({"karpenter.sh/capacity-type": "spot"}, CapacityType.SPOT, "karpenter.sh/capacity-type"),
        (
            {"karpenter.sh/capacity-type": "on-demand"},
            CapacityType.ON_DEMAND,
            "karpenter.sh/capacity-type",
        ),
        (
            {"karpenter.sh/capacity-type": "reserved"},
            CapacityType.RESERVED,
            "karpenter.sh/capacity-type",
        ),
        (
            {"eks.amazonaws.com/capacityType": "SPOT"},
            CapacityType.SPOT,
            "eks.amazonaws.com/capacityType",
        ),
        (
            {"eks.amazonaws.com/capacityType": "ON_DEMAND"},
            CapacityType.ON_DEMAND,
            "eks.amazonaws.com/capacityType",
        ),
        ({"cloud.google.com/gke-spot": "true"}, CapacityType.SPOT, "cloud.google.com/gke-spot"),
        (
            {"cloud.google.com/gke-preemptible": "true"},
            CapacityType.SPOT,
            "cloud.google.com/gke-preemptible",
        ),
        (
            {"kubernetes.azure.com/scalesetpriority": "spot"},
            CapacityType.SPOT,
            "kubernetes.azure.com/scalesetpriority",
        ),
        ({}, CapacityType.ON_DEMAND, None),
        ({"cloud.google.com/gke-spot": "false"}, CapacityType.ON_DEMAND, None),
    ],
)
def test_capacity_type_from_every_label_convention(
    labels: dict[str, str], capacity: CapacityType, label: str | None
) -> None:
    assert capacity_from_labels(labels) == (capacity, label)


@pytest.mark.parametrize(
    ("labels", "hourly"),
    [
        # AWS p5.48xlarge on demand, us-east-1: 55.04 (Karpenter price list 2026-07-20)
        ({IT: "p5.48xlarge", REGION: "us-east-1"}, "55.04"),
        # the same node bought as Karpenter spot in us-east-2: 11.65, midpoint of 11.3-12.0
        ({IT: "p5.48xlarge", REGION: "us-east-2", "karpenter.sh/capacity-type": "spot"}, "11.65"),
        # EKS managed node group spot g5.xlarge: about 0.43
        ({IT: "g5.xlarge", "eks.amazonaws.com/capacityType": "SPOT"}, "0.43"),
        ({IT: "g5.xlarge", "eks.amazonaws.com/capacityType": "ON_DEMAND"}, "1.006"),
        # GKE spot a2-highgpu-1g in us-central1: about 1.80; preemptible is priced as spot
        ({IT: "a2-highgpu-1g", REGION: "us-central1", "cloud.google.com/gke-spot": "true"}, "1.80"),
        ({IT: "a2-highgpu-1g", "cloud.google.com/gke-preemptible": "true"}, "1.80"),
        # AKS spot NC24ads A100 v4 in eastus: 0.444; regular: 3.673
        (
            {IT: "Standard_NC24ads_A100_v4", "kubernetes.azure.com/scalesetpriority": "spot"},
            "0.444",
        ),
        (
            {IT: "Standard_NC24ads_A100_v4", "kubernetes.azure.com/scalesetpriority": "regular"},
            "3.673",
        ),
    ],
)
def test_node_prices_from_labels(labels: dict[str, str], hourly: str) -> None:
    offering = offering_for_node(labels, CATALOG)
    assert isinstance(offering, Offering), offering
    assert offering.hourly == Decimal(hourly)


def test_reserved_capacity_without_a_reserved_rate_says_it_used_on_demand() -> None:
    offering = offering_for_node(
        {IT: "p4d.24xlarge", "karpenter.sh/capacity-type": "reserved"}, CATALOG
    )
    assert isinstance(offering, Offering)
    assert offering.hourly == Decimal("21.96")
    assert any("reserved" in note for note in offering.assumptions)


def test_unknown_instance_type_is_unpriced_with_the_reason_never_zero() -> None:
    result = offering_for_node({IT: "x9.huge"}, CATALOG)
    assert isinstance(result, Unpriced)
    assert "'x9.huge' is not in the price catalog" in result.reason


def test_node_without_any_pricing_label_is_unpriced() -> None:
    result = offering_for_node({"kubernetes.io/hostname": "n1"}, CATALOG)
    assert isinstance(result, Unpriced)
    assert "no instance-type label" in result.reason
    assert "costgov.io/provider=onprem" in result.reason


def test_unknown_cloud_instance_type_is_never_priced_at_the_on_prem_rate() -> None:
    labels = {IT: "custom-8xh100", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    result = offering_for_node(labels, CATALOG)
    assert isinstance(result, Unpriced)
    assert "'custom-8xh100' is not in the price catalog" in result.reason


def test_a_node_that_says_it_is_on_premises_is_priced_per_gpu_hour() -> None:
    # The bundled on-prem H100 rate is $1.36 per GPU-hour (prices.yaml, gpuHourly).
    labels = {"costgov.io/provider": "onprem", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    result = offering_for_node(labels, CATALOG)
    assert isinstance(result, Offering)
    assert (result.instance_type, result.gpu_model, result.hourly) == (
        None,
        "H100",
        Decimal("1.36"),
    )


def test_spot_node_without_a_spot_price_is_unpriced() -> None:
    result = offering_for_node({IT: "g6e.xlarge", "karpenter.sh/capacity-type": "spot"}, CATALOG)
    assert isinstance(result, Unpriced)
    assert "no spot price" in result.reason


def test_region_not_in_catalog_uses_another_region_and_says_so() -> None:
    result = offering_for_node({IT: "g5.xlarge", REGION: "eu-west-1"}, CATALOG)
    assert isinstance(result, Offering)
    assert result.assumptions == ("no g5.xlarge price for region eu-west-1; used us-east-1's",)


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("NVIDIA-H100-80GB-HBM3", "H100"),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("h100", "H100"),
        ("NVIDIA-A100-SXM4-80GB", "A100-80GB"),
        ("NVIDIA-A100-SXM4-40GB", "A100-40GB"),
        ("NVIDIA-L4", "L4"),
        ("NVIDIA-L40S", "L40S"),
        ("NVIDIA-A10G", "A10G"),
        ("Tesla-T4", "T4"),
        ("Tesla-V100-SXM2-16GB", "V100"),
        ("NVIDIA-H200", "H200"),
        ("AMD_Instinct_MI300X_OAM", "MI300X"),
        ("L4X", None),
        ("GH200", None),
        ("NVIDIA-H100X", None),
        ("NVIDIA-A100-80GB-PCIe", "A100-80GB"),
        ("", None),
    ],
)
def test_gpu_product_names_normalize(name: str, model: str | None) -> None:
    assert normalize_gpu_model(name) == model


def test_request_with_only_a_gpu_model_takes_the_smallest_fitting_instance() -> None:
    # 4 A10G GPUs in aws us-east-1: g5.12xlarge (4 GPUs, 5.672) is the smallest that fits.
    result = offering_for_request(CATALOG, gpus=4, gpu_model="A10G")
    assert isinstance(result, Offering)
    assert result.instance_type == "g5.12xlarge"
    assert result.hourly == Decimal("5.672")


def test_request_larger_than_the_instance_is_unpriced() -> None:
    result = offering_for_request(CATALOG, gpus=16, instance_type="p5.48xlarge")
    assert result == Unpriced("a pod asks for 16 GPUs but p5.48xlarge has 8")


def test_on_prem_catalog_prices_per_gpu_hour() -> None:
    onprem = CATALOG.merged(
        PriceCatalog.model_validate(
            {
                "version": "dc1",
                "defaults": {"provider": "onprem", "region": "dc1"},
                "gpuHourly": [
                    {
                        "gpuModel": "H100",
                        "perGPUHour": "2.10",
                        "source": "rate card",
                        "effectiveDate": "2026-10-01",
                    }
                ],
            }
        )
    )
    result = offering_for_request(onprem, gpus=4, gpu_model="H100")
    assert isinstance(result, Offering)
    # 4 GPUs x 2.10 $/GPU-h: the unit is one GPU, so the pod's share is 4/1
    assert result.hourly * gpu_share(4, result.node_gpus) == Decimal("8.40")
    assert onprem.gpu_hour("H100") == GPUHourPrice(
        gpu_model="H100",
        per_gpu_hour=Decimal("2.10"),
        source="rate card",
        effective_date=date(2026, 10, 1),
    )


def test_user_file_overrides_a_bundled_instance_price() -> None:
    negotiated = PriceCatalog.model_validate(
        {
            "version": "acme",
            "instances": [
                {
                    "provider": "aws",
                    "region": "us-east-1",
                    "instanceType": "p5.48xlarge",
                    "gpuModel": "H100",
                    "gpuCount": 8,
                    "vcpu": 192,
                    "memoryGiB": 2048,
                    "onDemand": "40.00",
                    "source": "ACME EDP discount",
                    "effectiveDate": "2026-09-01",
                }
            ],
        }
    )
    merged = CATALOG.merged(negotiated)
    result = offering_for_node({IT: "p5.48xlarge"}, merged)
    assert isinstance(result, Offering)
    assert result.hourly == Decimal("40.00")
    assert len(merged.instances) == len(CATALOG.instances)  # replaced, not added


def test_gpu_weighted_share_gives_half_the_node_for_half_the_gpus() -> None:
    assert gpu_share(4, 8) == Decimal("0.5")
    # CPU-only pod on a p5.48xlarge with 4 of 8 GPUs allocated, holding 24 of 192 vCPU
    # (0.125) and 256 of 2048 GiB (0.125): mean 0.125 of the unclaimed half = 0.0625,
    # i.e. 0.0625 x 55.04 = 3.44 $/h.
    share = remainder_share(
        node_gpus=8,
        allocated_gpus=4,
        cpu=Decimal(24),
        memory_gib=Decimal(256),
        node_vcpu=192,
        node_memory_gib=Decimal(2048),
    )
    assert share == Decimal("0.0625")
    assert share * Decimal("55.04") == Decimal("3.44")


def test_bundled_catalog_covers_the_required_families_with_sources() -> None:
    types = {e.instance_type for e in CATALOG.instances}
    for required in (
        "p5.48xlarge",
        "p4d.24xlarge",
        "p4de.24xlarge",
        "g5.xlarge",
        "g6.xlarge",
        "g6e.xlarge",
        "a2-highgpu-1g",
        "a2-highgpu-8g",
        "a2-ultragpu-8g",
        "a3-highgpu-8g",
        "g2-standard-4",
        "Standard_NC24ads_A100_v4",
        "Standard_ND96isr_H100_v5",
    ):
        assert required in types
    assert {g.gpu_model for g in CATALOG.gpu_hourly} >= {
        "H100",
        "H200",
        "A100-80GB",
        "A100-40GB",
        "L40S",
        "L4",
        "A10G",
        "T4",
        "V100",
    }
    assert all(e.source and e.effective_date for e in CATALOG.instances)
