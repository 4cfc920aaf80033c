"""kopf glue only: indexes, timers, admission handlers. Rules live in services and domain.

`build_registry(runtime)` registers everything on a fresh registry, so tests can run an
operator of their own next to another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, cast

import kopf
from pydantic import ValidationError

from costgov.api import CostPolicy, InferenceDeployment, TrainingJobBudget
from costgov.api.errors import describe_validation_error
from costgov.services.admitting import AdmissionContext, Request, admit
from costgov.services.conditions import Event
from costgov.services.inventory import (
    Inventory,
    JobRecord,
    PodRecord,
    job_record,
    parse_resource,
    pod_record,
)
from costgov.services.reconciling import (
    INFERENCE_LABEL,
    Outcome,
    reconcile_budget,
    reconcile_inference,
    reconcile_policy,
)
from costgov.services.runtime import Runtime

__all__ = ["build_registry"]

GROUP, VERSION = "costgov.io", "v1alpha1"
log = logging.getLogger("costgov")


def _values(index: Any) -> Iterable[Any]:
    for store in index.values():
        yield from store


def _first(index: Any, key: Any) -> Any:
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


def inventory_from(kw: Mapping[str, Any]) -> Inventory:
    policies = list(_values(kw["policies_idx"]))
    budgets = list(_values(kw["budgets_idx"]))
    return Inventory(
        namespaces={k: _first(kw["namespaces_idx"], k) or {} for k in kw["namespaces_idx"]},
        nodes={k: _first(kw["nodes_idx"], k) or {} for k in kw["nodes_idx"]},
        pods=tuple(_values(kw["gpu_pods_idx"])),
        jobs=tuple(_values(kw["gpu_jobs_idx"])),
        policies=tuple(p for p, _ in policies),
        budgets=tuple(b for b, _ in budgets),
        inference=tuple(_values(kw["inference_idx"])),
        statuses={
            **{("CostPolicy", "", p.metadata.name): st for p, st in policies},
            **{
                ("TrainingJobBudget", b.metadata.namespace or "default", b.metadata.name): st
                for b, st in budgets
            },
        },
    )


def _ref(kind: str, namespace: str, name: str) -> dict[str, Any]:
    api = {
        "Job": "batch/v1",
        "CostPolicy": f"{GROUP}/{VERSION}",
        "TrainingJobBudget": f"{GROUP}/{VERSION}",
        "InferenceDeployment": f"{GROUP}/{VERSION}",
    }.get(kind, "v1")
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": api, "kind": kind, "metadata": meta}


def _emit(events: Iterable[Event]) -> None:
    for e in events:
        kopf.event(
            cast(kopf.Body, _ref(e.kind, e.namespace, e.name)),
            type=e.type,
            reason=e.reason,
            message=e.message[:1024],
        )


async def _apply(
    outcome: Outcome, patch: kopf.Patch, runtime: Runtime, logger: logging.Logger | kopf.Logger
) -> None:
    patch.status.update(outcome.status)
    _emit(outcome.events)
    if runtime.kube is None:
        return
    for ns, name, job_patch in outcome.job_patches:
        try:
            await runtime.kube.patch_job(ns, name, job_patch)
        except Exception as exc:  # reported, retried next cycle; never a crash loop
            logger.warning(f"cannot patch Job {ns}/{name}: {exc}")
    if outcome.deployment is not None:
        try:
            await runtime.kube.apply_deployment(outcome.deployment)
        except Exception as exc:
            logger.warning(f"cannot apply Deployment: {exc}")


def build_registry(runtime: Runtime) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    interval = runtime.settings.reconcile_interval_seconds

    # ------------------------------------------------------------------------- indexes
    @kopf.index("", "v1", "namespaces", id="namespaces_idx", registry=registry)
    def namespaces_idx(name: str, labels: Mapping[str, str], **_: Any) -> dict[str, dict[str, str]]:
        return {name: dict(labels)}

    @kopf.index("", "v1", "nodes", id="nodes_idx", registry=registry)
    def nodes_idx(name: str, labels: Mapping[str, str], **_: Any) -> dict[str, dict[str, str]]:
        return {name: dict(labels)}

    @kopf.index("", "v1", "pods", id="gpu_pods_idx", registry=registry)
    def gpu_pods_idx(body: kopf.Body, **_: Any) -> dict[str, PodRecord] | None:
        record = pod_record(body)
        return None if record is None else {record.namespace: record}

    @kopf.index("batch", "v1", "jobs", id="gpu_jobs_idx", registry=registry)
    def gpu_jobs_idx(body: kopf.Body, **_: Any) -> dict[str, JobRecord] | None:
        record = job_record(body)
        return None if record is None else {record.namespace: record}

    @kopf.index(GROUP, VERSION, "costpolicies", id="policies_idx", registry=registry)
    def policies_idx(body: kopf.Body, **_: Any) -> dict[None, tuple[Any, dict[str, Any]]] | None:
        policy = parse_resource(CostPolicy, body)
        return None if policy is None else {None: (policy, dict(body.get("status") or {}))}

    @kopf.index(GROUP, VERSION, "trainingjobbudgets", id="budgets_idx", registry=registry)
    def budgets_idx(body: kopf.Body, namespace: str | None, **_: Any) -> dict[str, Any] | None:
        budget = parse_resource(TrainingJobBudget, body)
        if budget is None:
            return None
        return {namespace or "default": (budget, dict(body.get("status") or {}))}

    @kopf.index(GROUP, VERSION, "inferencedeployments", id="inference_idx", registry=registry)
    def inference_idx(body: kopf.Body, namespace: str | None, **_: Any) -> dict[str, Any] | None:
        idep = parse_resource(InferenceDeployment, body)
        return None if idep is None else {namespace or "default": idep}

    @kopf.index(
        "apps",
        "v1",
        "deployments",
        labels={INFERENCE_LABEL: kopf.PRESENT},
        id="owned_deployments_idx",
        registry=registry,
    )
    def owned_deployments_idx(
        namespace: str | None, name: str, status: kopf.Status, **_: Any
    ) -> dict[tuple[str, str], int]:
        return {(namespace or "default", name): int(status.get("readyReplicas") or 0)}

    # ---------------------------------------------------------------------- reconcile
    def _load(model: Any, body: kopf.Body, patch: kopf.Patch) -> Any:
        """The object as its model; when its spec is invalid, None and a Ready=False
        condition that names the fields (kept until the spec is fixed, never a crash loop)."""
        fields = {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
        try:
            return model.model_validate(fields)
        except ValidationError as exc:
            now = runtime.clock().isoformat().replace("+00:00", "Z")
            patch.status["conditions"] = [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "InvalidSpec",
                    "message": "; ".join(describe_validation_error(exc))[:2000],
                    "lastTransitionTime": now,
                    "observedGeneration": body.metadata.get("generation") or 0,
                }
            ]
            return None

    @kopf.timer(GROUP, VERSION, "costpolicies", interval=interval, registry=registry)
    async def reconcile_costpolicy(
        body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **kw: Any
    ) -> None:
        policy = _load(CostPolicy, body, patch)
        if policy is None:
            return
        inv = inventory_from(kw)
        snap = await runtime.snapshot(inv)
        now = snap.at
        audit = [
            v
            for p, v, t in runtime.ledger.audit
            if p == policy.metadata.name and (now - t).total_seconds() < 86400
        ]
        outcome = reconcile_policy(
            policy,
            inv,
            snap,
            now=now,
            catalog=runtime.catalog,
            old=dict(body.get("status") or {}),
            audit=audit,
        )
        runtime.record_policy(policy, outcome.status)
        await _apply(outcome, patch, runtime, logger)

    @kopf.timer(GROUP, VERSION, "trainingjobbudgets", interval=interval, registry=registry)
    async def reconcile_trainingjobbudget(
        body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **kw: Any
    ) -> None:
        budget = _load(TrainingJobBudget, body, patch)
        if budget is None:
            return
        inv = inventory_from(kw)
        snap = await runtime.snapshot(inv)
        outcome = reconcile_budget(
            budget,
            inv,
            snap,
            now=snap.at,
            catalog=runtime.catalog,
            old=dict(body.get("status") or {}),
        )
        runtime.record_budget(budget, outcome.status)
        await _apply(outcome, patch, runtime, logger)

    @kopf.timer(GROUP, VERSION, "inferencedeployments", interval=interval, registry=registry)
    async def reconcile_inferencedeployment(
        body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **kw: Any
    ) -> None:
        idep = _load(InferenceDeployment, body, patch)
        if idep is None:
            return
        inv = inventory_from(kw)
        snap = await runtime.snapshot(inv)
        ns = idep.metadata.namespace or "default"
        ready = _first(kw["owned_deployments_idx"], (ns, idep.metadata.name)) or 0
        outcome = reconcile_inference(
            idep,
            inv,
            snap,
            now=snap.at,
            catalog=runtime.catalog,
            old=dict(body.get("status") or {}),
            ready_replicas=ready,
        )
        await _apply(outcome, patch, runtime, logger)

    # ---------------------------------------------------------------------- admission
    def _admit(kind: str, kw: Mapping[str, Any]) -> None:
        started = time.perf_counter()
        body = kw["body"]
        namespace = body.get("metadata", {}).get("namespace") or kw.get("namespace") or "default"
        userinfo = kw.get("userinfo") or {}
        request = Request(
            kind=kind,
            operation=str(kw.get("operation") or "CREATE"),
            obj=dict(kw.get("new") or body),
            old=dict(kw["old"]) if kw.get("old") else None,
            user=str(userinfo.get("username", "")),
            groups=tuple(userinfo.get("groups") or ()),
            dryrun=bool(kw.get("dryrun")),
        )
        ns_labels = _first(kw["namespaces_idx"], namespace) or {}
        ctx = AdmissionContext(
            catalog=runtime.catalog,
            policies=tuple(p for p, _ in _values(kw["policies_idx"])),
            budgets=tuple(b for b, _ in kw["budgets_idx"].get(namespace, ())),
            namespace_labels={**ns_labels, "kubernetes.io/metadata.name": namespace},
            ledger=runtime.ledger,
            now=runtime.clock(),
        )
        decision = admit(request, ctx)
        if not request.dryrun:
            now = runtime.clock()
            runtime.ledger.audit.extend((policy, seen, now) for policy, seen in decision.audit)
            del runtime.ledger.audit[:-1000]
        runtime.metrics.admissions.labels(kind, decision.result).inc()
        runtime.metrics.admission_latency.labels(kind).observe(time.perf_counter() - started)
        kw["warnings"].extend(decision.warnings)
        if not decision.allowed:
            raise kopf.AdmissionError(decision.message, code=decision.code)

    for group, version, plural, kind in (
        ("batch", "v1", "jobs", "Job"),
        ("", "v1", "pods", "Pod"),
        ("apps", "v1", "deployments", "Deployment"),
        ("apps", "v1", "statefulsets", "StatefulSet"),
        (GROUP, VERSION, "costpolicies", "CostPolicy"),
        (GROUP, VERSION, "trainingjobbudgets", "TrainingJobBudget"),
        (GROUP, VERSION, "inferencedeployments", "InferenceDeployment"),
    ):

        def handler(_kind: str = kind, **kw: Any) -> None:
            _admit(_kind, kw)

        kopf.on.validate(
            group, version, plural, id=plural, registry=registry, operations=["CREATE", "UPDATE"]
        )(handler)

    return registry
