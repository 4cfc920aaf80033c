"""kopf indexes: what the operator keeps in memory of the cluster, and views over them.

Every index handler is a plain module-level function; the runtime comes from kopf's memo.
Handlers bump `runtime.versions[...]` so views built from an index are rebuilt on change.
They are coroutines that never await: kopf runs a synchronous handler in a thread and
stores its result only after the loop resumes, so a view built in between would be cached
under the new version with the old content; a coroutine's result is stored before any other
task runs (kopf._core.engines.indexing.index_resource). It also spares a thread hand-off
per watch event (profiled: docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

import kopf
from kopf._cogs.structs.references import (
    NamespaceName,
    match_namespace,
    select_specific_namespaces,
)

from costgov.api import CostApproval, CostPolicy, InferenceDeployment, TrainingJobBudget
from costgov.domain.offerings import offering_for_node
from costgov.domain.placement import NodeInfo
from costgov.services.inventory import (
    Inventory,
    JobRecord,
    job_record,
    node_info,
    parse_resource,
    workload_record,
)
from costgov.services.podwatch import PodFollower, Scope

__all__ = [
    "INDEXES",
    "admission_inventory",
    "first",
    "follow_pods",
    "inventory_from",
    "scale_targets",
    "stop_following_pods",
    "values",
]


def values(index: Any) -> Iterable[Any]:
    for store in index.values():
        yield from store


def first(index: Any, key: Any) -> Any:
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


_KEPT_METADATA = (
    "name", "namespace", "uid", "resourceVersion", "generation", "deletionTimestamp",
    "finalizers",
)  # fmt: skip


def _let_go(body: kopf.Body) -> None:
    """Shrink the object kopf holds for this event to what kopf itself reads once the index
    handler ran (identity, deletion, finalizers), where the index handler is the kind's
    only handler. At start-up kopf parks one worker per object, each holding its body,
    until every object of every kind is indexed (kopf._core.reactor.processing), and
    pymalloc keeps what they took (docs/benchmarks.md); pods, the most numerous, are not
    left to kopf at all (services/podwatch.py). The record the handler returned was built
    before and shares nothing that is dropped."""
    raw = getattr(body, "_src", None)
    if not isinstance(raw, dict):
        return
    meta = raw.get("metadata")
    for key in [k for k in raw if k not in ("apiVersion", "kind")]:
        del raw[key]
    if isinstance(meta, dict):
        raw["metadata"] = {k: meta[k] for k in _KEPT_METADATA if k in meta}


async def namespaces_idx(
    name: str, labels: Mapping[str, str], memo: Any, **_: Any
) -> dict[str, Any]:
    memo.runtime.versions["namespaces"] += 1
    return {name: dict(labels)}


async def nodes_idx(body: kopf.Body, memo: Any, **_: Any) -> dict[str, NodeInfo]:
    memo.runtime.versions["nodes"] += 1
    info = node_info(body)
    _let_go(body)
    return {info.name: replace(info, offering=offering_for_node(info.labels, memo.runtime.catalog))}


async def gpu_jobs_idx(body: kopf.Body, memo: Any, **_: Any) -> dict[str, JobRecord] | None:
    record = job_record(body)
    _let_go(body)
    if record is None:
        return None
    memo.runtime.versions["jobs"] += 1
    return {record.namespace: record}


async def policies_idx(body: kopf.Body, memo: Any, **_: Any) -> dict[None, Any] | None:
    memo.runtime.versions["policies"] += 1
    policy = parse_resource(CostPolicy, body)
    return None if policy is None else {None: (policy, dict(body.get("status") or {}))}


async def budgets_idx(
    body: kopf.Body, namespace: str | None, memo: Any, **_: Any
) -> dict[str, Any] | None:
    memo.runtime.versions["budgets"] += 1
    budget = parse_resource(TrainingJobBudget, body)
    if budget is None:
        return None
    return {namespace or "default": (budget, dict(body.get("status") or {}))}


async def inference_idx(
    body: kopf.Body, namespace: str | None, memo: Any, **_: Any
) -> dict[str, Any] | None:
    memo.runtime.versions["inference"] += 1
    idep = parse_resource(InferenceDeployment, body)
    return None if idep is None else {namespace or "default": idep}


async def approvals_idx(
    body: kopf.Body, namespace: str | None, memo: Any, **_: Any
) -> dict[str, Any] | None:
    memo.runtime.versions["approvals"] += 1
    approval = parse_resource(CostApproval, body)
    return None if approval is None else {namespace or "default": approval}


_APPS_KINDS = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "replicasets": "ReplicaSet",
}
_SCALED_KINDS = {
    "leaderworkersets": "LeaderWorkerSet",
    "pytorchjobs": "PyTorchJob",
    "paddlejobs": "PaddleJob",
    "jaxjobs": "JAXJob",
}
"""Other projects' kinds with a scale subresource (indexed only where their CRDs exist)."""


async def gpu_workloads_idx(
    body: kopf.Body, resource: kopf.Resource, **_: Any
) -> dict[tuple[str, str, str], Any] | None:
    """GPU Deployments, StatefulSets and ReplicaSets by (kind, namespace, name): judged at
    scale requests, audited, and found by CostApprovals naming them."""
    kind = _APPS_KINDS[resource.plural]
    record = workload_record({**body, "apiVersion": "apps/v1", "kind": kind})
    if record is None:
        return None
    return {(record.kind, record.namespace, record.name): record}


async def gpu_scaled_idx(
    body: kopf.Body, resource: kopf.Resource, **_: Any
) -> dict[tuple[str, str, str], Any] | None:
    """GPU LeaderWorkerSets and Kubeflow jobs with a scale subresource, by (kind,
    namespace, name): judged at scale requests (the Scale carries no pod template)."""
    api_version = str(body.get("apiVersion") or f"{resource.group}/{resource.version}")
    record = workload_record(
        {**body, "apiVersion": api_version, "kind": _SCALED_KINDS[resource.plural]}
    )
    if record is None:
        return None
    return {(record.kind, record.namespace, record.name): record}


async def owned_deployments_idx(
    namespace: str | None, name: str, status: kopf.Status, **_: Any
) -> dict[tuple[str, str], int]:
    return {(namespace or "default", name): int(status.get("readyReplicas") or 0)}


INDEXES: tuple[tuple[str, str | None, str, Any, dict[str, Any]], ...] = (
    ("", "v1", "namespaces", namespaces_idx, {}),
    ("", "v1", "nodes", nodes_idx, {}),
    ("batch", "v1", "jobs", gpu_jobs_idx, {}),
    ("apps", "v1", "deployments", gpu_workloads_idx, {"id": "gpu_deployments_idx"}),
    ("apps", "v1", "statefulsets", gpu_workloads_idx, {"id": "gpu_statefulsets_idx"}),
    ("apps", "v1", "replicasets", gpu_workloads_idx, {"id": "gpu_replicasets_idx"}),
    *(
        (group, None, plural, gpu_scaled_idx, {"id": f"gpu_{plural}_idx"})
        for group, plural in (
            ("leaderworkerset.x-k8s.io", "leaderworkersets"),
            ("kubeflow.org", "pytorchjobs"),
            ("kubeflow.org", "paddlejobs"),
            ("kubeflow.org", "jaxjobs"),
        )
    ),
    ("costgov.io", "v1alpha1", "costpolicies", policies_idx, {}),
    ("costgov.io", "v1alpha1", "trainingjobbudgets", budgets_idx, {}),
    ("costgov.io", "v1alpha1", "inferencedeployments", inference_idx, {}),
    ("costgov.io", "v1alpha1", "costapprovals", approvals_idx, {}),
    (
        "apps",
        "v1",
        "deployments",
        owned_deployments_idx,
        {"labels": {"costgov.io/inference-deployment": kopf.PRESENT}},
    ),
)


def _pod_scopes(patterns: list[str]) -> tuple[list[Scope], Callable[[str], bool] | None]:
    """Where to follow pods for the operator's namespaces, as kopf watches the rest: one
    scope per namespace when all are plain names (a namespaced Role is then enough);
    cluster-wide, keeping the namespaces kopf would match, when any is a pattern."""
    if not patterns:
        return [None], None
    plain = select_specific_namespaces(patterns)
    if len(plain) == len(set(patterns)):
        return [str(n) for n in sorted(plain)], None
    return [None], lambda ns: any(match_namespace(NamespaceName(ns), p) for p in patterns)


async def follow_pods(memo: Any, **_: Any) -> None:
    """At start: follow the GPU pods into `runtime.pods` (services/podwatch.py)."""
    runtime = memo.runtime
    if runtime.kube is None:
        runtime.pods.replace({})
        runtime.pods.failing("no Kubernetes client: pods are not followed")
        return
    scopes, keep = _pod_scopes(list(runtime.settings.namespaces))
    runtime.pods.expect(scopes)
    loop = asyncio.get_running_loop()
    memo.pod_followers = [
        PodFollower(runtime.kube, runtime.pods, loop, scope=scope, keep=keep) for scope in scopes
    ]
    for follower in memo.pod_followers:
        follower.start()


async def stop_following_pods(memo: Any, **_: Any) -> None:
    """At exit: end the followers, a watch in progress included."""
    followers = getattr(memo, "pod_followers", ())
    for follower in followers:
        follower.stop()
    await asyncio.gather(*(asyncio.to_thread(f.join, 5.0) for f in followers))


def _nodes(kw: Mapping[str, Any]) -> dict[str, NodeInfo]:
    runtime, index = kw["memo"].runtime, kw["nodes_idx"]
    return runtime.view("nodes", "nodes", len(index), lambda: {k: first(index, k) for k in index})  # type: ignore[no-any-return]


def _gpu_nodes(kw: Mapping[str, Any]) -> tuple[NodeInfo, ...]:
    runtime, index = kw["memo"].runtime, kw["nodes_idx"]
    nodes = _nodes(kw)
    return runtime.view(  # type: ignore[no-any-return]
        "gpu_nodes",
        "nodes",
        len(index),
        lambda: tuple(n for n in nodes.values() if n and n.gpus > 0),
    )


def policies(kw: Mapping[str, Any]) -> tuple[CostPolicy, ...]:
    runtime, index = kw["memo"].runtime, kw["policies_idx"]
    size = sum(len(s) for s in index.values())
    return runtime.view("policies", "policies", size, lambda: tuple(p for p, _ in values(index)))  # type: ignore[no-any-return]


def _statuses(kw: Mapping[str, Any], budgets: list[Any]) -> dict[tuple[str, str, str], Any]:
    """Each policy's and budget's status as last seen (where accounting resumes)."""
    return {
        **{("CostPolicy", "", p.metadata.name): st for p, st in values(kw["policies_idx"])},
        **{
            ("TrainingJobBudget", b.metadata.namespace or "default", b.metadata.name): st
            for b, st in budgets
        },
    }


def _workloads(kw: Mapping[str, Any]) -> tuple[Any, ...]:
    names = ("gpu_deployments_idx", "gpu_statefulsets_idx", "gpu_replicasets_idx")
    return tuple(w for name in names for w in values(kw[name]))


def _jobs(kw: Mapping[str, Any]) -> tuple[JobRecord, ...]:
    """Every GPU Job, built once per change (each budget's reconcile reads them all)."""
    runtime, index = kw["memo"].runtime, kw["gpu_jobs_idx"]
    size = sum(len(s) for s in index.values())
    return runtime.view("jobs", "jobs", size, lambda: tuple(values(index)))  # type: ignore[no-any-return]


def inventory_from(kw: Mapping[str, Any]) -> Inventory:
    """The whole cluster as the indexes hold it, for a reconcile."""
    budgets = list(values(kw["budgets_idx"]))
    return Inventory(
        namespaces={k: first(kw["namespaces_idx"], k) or {} for k in kw["namespaces_idx"]},
        nodes=_nodes(kw),
        gpu_node_list=_gpu_nodes(kw),
        pods=kw["memo"].runtime.pods.records(),
        pods_gone=kw["memo"].runtime.pods.gone.records(),
        pods_problems=kw["memo"].runtime.pods.problems,
        jobs=_jobs(kw),
        policies=policies(kw),
        budgets=tuple(b for b, _ in budgets),
        inference=tuple(values(kw["inference_idx"])),
        approvals=tuple(values(kw["approvals_idx"])),
        workloads=_workloads(kw),
        statuses=_statuses(kw, budgets),
    )


class _Namespaces(Mapping[str, Mapping[str, str]]):
    """The namespaces index as the mapping the engine reads, without copying it."""

    def __init__(self, index: Any) -> None:
        self._index = index

    def __getitem__(self, key: str) -> Mapping[str, str]:
        found = first(self._index, key)
        if found is None:
            raise KeyError(key)
        return found  # type: ignore[no-any-return]

    def __iter__(self) -> Any:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


def _build_admission_inventory(kw: Mapping[str, Any], namespace: str) -> Inventory:
    return Inventory(
        namespaces=_Namespaces(kw["namespaces_idx"]),
        gpu_node_list=_gpu_nodes(kw),
        policies=policies(kw),
        budgets=tuple(b for b, _ in kw["budgets_idx"].get(namespace, ())),
        approvals=tuple(kw["approvals_idx"].get(namespace, ())),
        inference=tuple(kw["inference_idx"].get(namespace, ())),
    )


_ADMISSION_INDEXES = ("namespaces", "nodes", "policies", "budgets", "approvals", "inference")


def admission_inventory(kw: Mapping[str, Any], namespace: str) -> Inventory:
    """What admission needs, and only that: policies, namespaces, nodes, and the budgets,
    approvals and model servers of the request's namespace; rebuilt only when one of those
    indexes changed (no copy of the cluster per request)."""
    runtime = kw["memo"].runtime
    sizes = (
        len(kw["namespaces_idx"]),
        len(kw["nodes_idx"]),
        sum(len(s) for s in kw["policies_idx"].values()),
        *(len(kw[f"{n}_idx"].get(namespace, ())) for n in ("budgets", "approvals", "inference")),
    )
    stamp = (*(runtime.versions[n] for n in _ADMISSION_INDEXES), *sizes)
    return runtime.view(  # type: ignore[no-any-return]
        f"admission:{namespace}",
        "admission",
        stamp,
        lambda: _build_admission_inventory(kw, namespace),
    )


_WORKLOAD_INDEXES = {
    "Deployment": "gpu_deployments_idx",
    "StatefulSet": "gpu_statefulsets_idx",
    "ReplicaSet": "gpu_replicasets_idx",
    **{kind: f"gpu_{plural}_idx" for plural, kind in _SCALED_KINDS.items()},
}


def scale_targets(kw: Mapping[str, Any], request: Any) -> dict[tuple[str, str, str], Any]:
    """For a scale request: the GPU workload it scales, from the index, when known."""
    index = _WORKLOAD_INDEXES.get(request.kind)
    if request.subresource != "scale" or index is None:
        return {}
    meta = request.metadata
    key = (request.kind, str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
    found = first(kw[index], key)
    return {} if found is None else {key: found}
