"""Per-series utilisation means (promql.gpu_utilization_series) merged per pod, and the pods
left to the exact per-point merge. Series labels as dcgm-exporter 4.x writes them (gpu, UUID,
device, modelName, Hostname; the pod's namespace/pod with honor_labels, or the exporter's own
with exported_namespace/exported_pod beside them) plus the scrape's instance."""

from __future__ import annotations

import math

from costgov.adapters.prometheus import QueryResult, Sample
from costgov.services.querying import _pod_means

H100 = {"device": "nvidia0", "modelName": "NVIDIA H100 80GB HBM3", "Hostname": "node-a"}


def _series(value: float, **labels: str) -> Sample:
    return Sample({**H100, **labels}, value)


def test_one_series_per_gpu_is_its_mean_and_a_pod_averages_its_gpus() -> None:
    result = QueryResult((
        _series(30.0, gpu="0", UUID="GPU-0", namespace="ml", pod="train-0", instance="a:9400"),
        _series(70.0, gpu="1", UUID="GPU-1", namespace="ml", pod="train-0", instance="a:9400"),
    ))  # fmt: skip
    means, again = _pod_means(result)
    assert means == {("ml", "train-0"): (30 + 70) / 2}
    assert again == set()


def test_exported_labels_name_the_workload() -> None:
    result = QueryResult((
        _series(40.0, gpu="0", UUID="GPU-0", namespace="gpu-operator", pod="dcgm-x1",
                exported_namespace="ml", exported_pod="train-1", instance="b:9400"),
    ))  # fmt: skip
    assert _pod_means(result) == ({("ml", "train-1"): 40.0}, set())


def test_a_gpu_several_series_report_is_asked_for_again_with_its_whole_pod() -> None:
    # the exporter pod was replaced: two instances report GPU-0; GPU-1 alone is settled
    # but the pod's mean needs both
    result = QueryResult((
        _series(30.0, gpu="0", UUID="GPU-0", namespace="ml", pod="train-2", instance="a:9400"),
        _series(70.0, gpu="0", UUID="GPU-0", namespace="ml", pod="train-2", instance="c:9400"),
        _series(50.0, gpu="1", UUID="GPU-1", namespace="ml", pod="train-2", instance="c:9400"),
        _series(10.0, gpu="0", UUID="GPU-9", namespace="ml", pod="other", instance="c:9400"),
    ))  # fmt: skip
    means, again = _pod_means(result)
    assert again == {("ml", "train-2")}
    assert means == {("ml", "other"): 10.0}


def test_both_label_styles_for_one_gpu_are_asked_for_again() -> None:
    result = QueryResult((
        _series(30.0, gpu="0", UUID="GPU-0", namespace="ml", pod="train-3", instance="a:9400"),
        _series(30.0, gpu="0", UUID="GPU-0", namespace="gpu-operator", pod="dcgm-x1",
                exported_namespace="ml", exported_pod="train-3", instance="a:9400"),
    ))  # fmt: skip
    assert _pod_means(result) == ({}, {("ml", "train-3")})


def test_a_nan_reading_is_asked_for_again() -> None:
    result = QueryResult(
        (_series(math.nan, gpu="0", UUID="GPU-0", namespace="ml", pod="t", instance="a"),)
    )
    assert _pod_means(result) == ({}, {("ml", "t")})


def test_a_gpu_no_pod_holds_counts_for_no_pod() -> None:
    result = QueryResult((_series(0.0, gpu="3", UUID="GPU-3", instance="a:9400"),))
    assert _pod_means(result) == ({}, set())
