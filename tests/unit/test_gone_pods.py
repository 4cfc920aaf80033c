"""Deleted GPU pods remembered for their owners (services/gone_pods.py), from the pod
watch's events (pods written as kube-apiserver returns them: test_podwatch.pod)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from costgov.services import gone_pods
from costgov.services.gone_pods import GonePods
from costgov.services.inventory import Inventory, pod_record
from costgov.services.podwatch import PodStore

from .test_podwatch import pod


def _store(now: list[float]) -> PodStore:
    store = PodStore()
    store.gone.clock = lambda: now[0]
    store.replace({f"uid-{n}": pod_record(pod(n, 1)) for n in "abcd"})
    return store


def _names(store: PodStore) -> list[str]:
    return [r.name for r in store.gone.records()]


def test_a_deleted_pod_is_kept_exactly_as_long_as_said() -> None:
    now = [1000.0]
    store = _store(now)
    store.apply("uid-a", None)
    now[0] += 900.0  # 15 min: the cycle's windows (5 min or more) and the lookback
    assert _names(store) == ["a"]
    now[0] += 0.001
    assert _names(store) == []
    store.apply("uid-x", None)  # a pod never seen: nothing to keep
    assert _names(store) == []


def test_the_api_owners_of_live_and_deleted_pods_a_live_one_winning() -> None:
    now = [1000.0]
    store = _store(now)
    store.apply("uid-a", None)
    store.apply("uid-b", None)
    # a pod of the same name made again (a StatefulSet's: no Job owner) is the live one
    meta = {**pod("a", 1)["metadata"], "uid": "uid-a2", "ownerReferences": []}
    store.apply("uid-a2", pod_record({**pod("a", 1), "metadata": meta}))
    inv = Inventory(pods=store.records(), pods_gone=store.gone.records())
    assert inv.pod_owners() == {
        ("ml", "a"): None,
        ("ml", "b"): "train",  # deleted: its Job from the API, not asked of Prometheus
        ("ml", "c"): "train",
        ("ml", "d"): "train",
    }


def test_a_pod_gone_again_is_kept_from_its_latest_going() -> None:
    now = [1000.0]
    store = _store(now)
    store.apply("uid-a", None)
    now[0] += 600
    store.apply("uid-b", None)
    store.apply("uid-a", pod_record(pod("a", 1)))  # seen again (a relist), then gone again
    store.apply("uid-a", None)
    now[0] += 600  # a went 600 s ago, b 600 s ago: both kept, b first
    assert _names(store) == ["b", "a"]
    now[0] += 301  # both went 901 s ago
    assert _names(store) == []


def test_at_most_so_many_kept_even_when_nobody_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gone_pods, "MOST", 3)
    now = [1000.0]
    gone = GonePods(lambda: now[0])
    for i in range(10):
        gone.went(f"uid-{i}", pod_record(pod(f"p{i}", 1)))
        assert len(gone._pods) <= 3  # bounded as they go, not when read
    assert [r.name for r in gone.records()] == ["p7", "p8", "p9"]  # the oldest dropped first


def test_a_cycle_longer_than_15_minutes_keeps_them_longer() -> None:
    from costgov.adapters.prometheus import PrometheusSource
    from costgov.catalog import load_catalog
    from costgov.services.runtime import Runtime
    from costgov.settings import Settings

    for interval, keep in ((60, 900), (600, 1800), (3600, 10800)):
        settings = Settings(reconcile_interval_seconds=interval)
        runtime = Runtime(settings=settings, catalog=load_catalog(None),
                          source=PrometheusSource(settings), kube=None)  # fmt: skip
        # windows reach back 2 intervals (at least 5 min each) before the catch-up takes them
        assert runtime.pods.gone.keep == keep


def test_every_reconciles_inventory_has_them() -> None:
    from costgov.handlers.indexing import inventory_from

    now = [1000.0]
    store = _store(now)
    store.apply("uid-c", None)
    runtime = SimpleNamespace(pods=store, view=lambda *a: a[-1]())
    empty: dict[Any, Any] = {}
    names = ("namespaces", "nodes", "budgets", "gpu_jobs", "policies", "inference",
             "approvals", "gpu_deployments", "gpu_statefulsets", "gpu_replicasets")  # fmt: skip
    kw = {"memo": SimpleNamespace(runtime=runtime), **{f"{n}_idx": empty for n in names}}
    inv = inventory_from(kw)
    assert [r.name for r in inv.pods_gone] == ["c"]
    assert sorted(r.name for r in inv.pods) == ["a", "b", "d"]


def test_only_a_pod_judged_by_itself_keeps_its_workload() -> None:
    # a Job's pods (and a ReplicaSet's) are judged, audited and approved through their owner:
    # their records keep no workload (17 MB at 10,000 pods); a bare pod, or one owned by a
    # kind costgov does not judge through, is judged by itself and keeps it
    job_pod = pod_record(pod("a", 1))
    assert job_pod is not None and job_pod.workload is None and job_pod.owner_job == "train"
    assert job_pod.labels == {} and job_pod.gpus == 1
    meta = {**pod("b", 2)["metadata"], "labels": {"app": "x"}}
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7f9c", "uid": "rs",
          "controller": True}  # fmt: skip
    rs_pod = pod_record({**pod("b", 2), "metadata": {**meta, "ownerReferences": [rs]}})
    assert rs_pod is not None and rs_pod.workload is None and rs_pod.labels == {"app": "x"}
    bare = pod_record({**pod("c", 2), "metadata": {**meta, "name": "c", "ownerReferences": []}})
    assert bare is not None and bare.workload is not None
    assert (bare.workload.kind, bare.workload.name, bare.workload.gpus_per_pod) == ("Pod", "c", 2)
    wf = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": "w", "uid": "w",
          "controller": True}  # fmt: skip
    argo = pod_record({**pod("d", 1), "metadata": {**meta, "ownerReferences": [wf]}})
    assert argo is not None and argo.workload is not None and argo.owner_job is None
