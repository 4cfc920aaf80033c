"""How kube-state-metrics names a Kubernetes label in its series, case by case.

Expected names come from kube-state-metrics itself, not from costgov:
- v2.20.0 (commit 4ffeda2e), internal/store/utils_test.go: TestKubeLabelsToPrometheusLabels
  (prefix "label") and TestCreatePrometheusLabelKeysValues (prefix "metric");
- internal/store/utils_test.go on main after v2.20.0: TestToSnakeCase and
  TestSanitizeLabelName, which pin down the v2.20.0 regexps unchanged
  (`[^a-zA-Z0-9_]` -> "_", then `([a-z0-9])([A-Z])` -> "${1}_${2}", then lower case);
- real node labels, worked through those two regexps by hand.
"""

from __future__ import annotations

import pytest

from costgov.adapters.promql import ksm_label_name

KSM_TEST_CASES = [
    # TestKubeLabelsToPrometheusLabels (v2.20.0)
    ("app1", "label_app1"),
    ("0_app3", "label_0_app3"),
    ("", "label_"),
    ("$app4", "label__app4"),
    ("_app5", "label__app5"),
    ("camelCase", "label_camel_case"),
    ("snake_camelCase", "label_snake_camel_case"),
    # TestToSnakeCase: acronyms split only after their first capital, matches never overlap
    ("lower", "label_lower"),
    ("fooBar", "label_foo_bar"),
    ("fooBarBaz", "label_foo_bar_baz"),
    ("aBC", "label_a_bc"),
    ("aBcD", "label_a_bc_d"),
    ("ABC", "label_abc"),
    ("a_B", "label_a_b"),
    ("9A", "label_9_a"),
    ("_A", "label__a"),
    ("fooBar_Baz9X", "label_foo_bar_baz9_x"),
    # TestSanitizeLabelName
    ("already_valid_Name9", "label_already_valid_name9"),
    ("app.kubernetes.io/name", "label_app_kubernetes_io_name"),
    ("foo-bar", "label_foo_bar"),
    ("-leading", "label__leading"),
    ("trailing/", "label_trailing_"),
    ("ünïcode", "label__n_code"),  # one "_" per character, not per byte
]

NODE_LABELS = [
    # "capacityType": "y" then "T" matches ([a-z0-9])([A-Z]) -> capacity_Type -> lower case
    ("eks.amazonaws.com/capacityType", "label_eks_amazonaws_com_capacity_type"),
    ("kubernetes.azure.com/scalesetpriority", "label_kubernetes_azure_com_scalesetpriority"),
    ("cloud.google.com/gke-spot", "label_cloud_google_com_gke_spot"),
    ("cloud.google.com/gke-preemptible", "label_cloud_google_com_gke_preemptible"),
    ("karpenter.sh/capacity-type", "label_karpenter_sh_capacity_type"),
    ("nvidia.com/gpu.product", "label_nvidia_com_gpu_product"),
    ("node.kubernetes.io/instance-type", "label_node_kubernetes_io_instance_type"),
    ("topology.kubernetes.io/region", "label_topology_kubernetes_io_region"),
]


@pytest.mark.parametrize(("key", "expected"), KSM_TEST_CASES + NODE_LABELS)
def test_label_names_as_kube_state_metrics_writes_them(key: str, expected: str) -> None:
    assert ksm_label_name(key) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    # TestCreatePrometheusLabelKeysValues (v2.20.0) uses the prefix "metric"
    [("keyA", "metric_key_a"), ("keyB", "metric_key_b"), ("otherKeyA", "metric_other_key_a")],
)
def test_other_prefixes(key: str, expected: str) -> None:
    assert ksm_label_name(key, prefix="metric") == expected
