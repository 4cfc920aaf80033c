"""kopf's essence is built only for costgov.io objects, exactly as kopf builds it, and no
other group has a change handler that would need it (handlers/essences.py)."""

from __future__ import annotations

import copy
from typing import Any, cast

import kopf

from costgov.handlers.essences import CHANGE_HANDLED_GROUP, EssentialDiffBase
from costgov.handlers.registry import build_registry

POD: dict[str, Any] = {  # a Job's pod as kube-apiserver returns it (abridged)
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "train-0-abcde",
        "namespace": "ml",
        "uid": "5f0c6f53-8c1e-4a55-9f1e-0d6e3b1b2c3d",
        "labels": {"batch.kubernetes.io/job-name": "train"},
        "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}],
    },
    "spec": {
        "nodeName": "gpu-1",
        "containers": [{"name": "t", "resources": {"requests": {"nvidia.com/gpu": "1"}}}],
    },
    "status": {"phase": "Running"},
}

BUDGET: dict[str, Any] = {
    "apiVersion": "costgov.io/v1alpha1",
    "kind": "TrainingJobBudget",
    "metadata": {
        "name": "llm-pretrain",
        "namespace": "ml",
        "labels": {"team": "nlp"},
        "annotations": {"note": "kept", "kopf.zalando.org/last-handled-configuration": "{}"},
    },
    "spec": {"budget": {"amount": "5000"}, "selector": {"matchLabels": {"job": "pretrain"}}},
    "status": {"spent": "12.34"},
}


def test_other_groups_get_an_empty_essence() -> None:
    for body in (POD, {**POD, "apiVersion": "batch/v1", "kind": "Job"}, {**POD, "apiVersion": ""}):
        assert (
            EssentialDiffBase().build(body=kopf.Body(cast(kopf.RawBody, copy.deepcopy(body)))) == {}
        )


def test_costgov_objects_get_kopfs_own_essence() -> None:
    ours = EssentialDiffBase().build(body=kopf.Body(cast(kopf.RawBody, copy.deepcopy(BUDGET))))
    kopfs = kopf.AnnotationsDiffBaseStorage().build(
        body=kopf.Body(cast(kopf.RawBody, copy.deepcopy(BUDGET)))
    )
    assert ours == kopfs
    assert ours["spec"] == BUDGET["spec"]  # the essence is not empty: spec and labels kept
    assert ours["metadata"]["labels"] == {"team": "nlp"}


def test_only_costgov_kinds_have_change_handlers() -> None:
    registry = build_registry(30)
    groups = {h.selector.group for h in registry._changing.get_all_handlers() if h.selector}
    assert groups == {CHANGE_HANDLED_GROUP}
    assert all(h.selector for h in registry._changing.get_all_handlers())


def test_kinds_whose_bodies_are_shrunk_have_their_index_handler_alone() -> None:
    """handlers/indexing._let_go drops a node's or Job's body once indexed: no other handler
    of any sort may be registered on those kinds (it would see the shrunk body), and pods
    are not watched by kopf at all (services/podwatch.py follows them)."""
    registry = build_registry(30)
    regs = (registry._indexing, registry._changing, registry._watching, registry._spawning)
    on: dict[str, list[str]] = {}
    for reg in regs:
        for h in reg.get_all_handlers():
            plural = h.selector.plural if h.selector else None
            on.setdefault(str(plural), []).append(str(h.id))
    assert on["nodes"] == ["nodes_idx"]
    assert on["jobs"] == ["gpu_jobs_idx"]
    assert "pods" not in on
