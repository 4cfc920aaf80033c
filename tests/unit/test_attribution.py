"""Which Job a pod works for: the API first, then what kube-state-metrics reported."""

from __future__ import annotations

from costgov.domain.attribution import attribute, unattributed


def test_the_api_wins_over_prometheus() -> None:
    measured = {
        ("ml", "a-1"): ("Job", "a"),  # kube_pod_owner or kube_pod_info's created_by_*
        ("ml", "b-1"): ("Job", "stale"),
        ("ml", "c-1"): ("ReplicaSet", "serve-7d9f"),
        ("ml", "d-1"): ("", ""),  # kube_pod_owner's series for a pod with no owner
    }
    live = {("ml", "b-1"): "b", ("ml", "e-1"): None, ("ml", "f-1"): "f"}
    owners = attribute(measured, live)
    assert owners.jobs == {("ml", "a-1"): "a", ("ml", "b-1"): "b", ("ml", "f-1"): "f"}
    assert owners.known == {("ml", p) for p in ("a-1", "b-1", "c-1", "d-1", "e-1", "f-1")}


def test_a_job_without_pods_beside_pods_without_owner_is_reported() -> None:
    owners = attribute({("ml", "a-1"): ("Job", "a")}, {})
    running = [("ml", "a-1"), ("ml", "x-1"), ("ml", "y-1")]
    found = unattributed(["a", "b"], running, owners)
    assert found.found
    assert (found.jobs, found.pods) == (("b",), (("ml", "x-1"), ("ml", "y-1")))
    assert "Job(s) b running" in found.message() and "ml/x-1, ml/y-1" in found.message()


def test_pending_pods_or_ownerless_pods_alone_are_not_reported() -> None:
    owners = attribute({("ml", "a-1"): ("Job", "a")}, {})
    # b's pods may be pending: nothing of unknown owner runs
    assert not unattributed(["a", "b"], [("ml", "a-1")], owners).found
    # an unknown pod, but every running Job has its pods
    assert not unattributed(["a"], [("ml", "a-1"), ("ml", "x-1")], owners).found
