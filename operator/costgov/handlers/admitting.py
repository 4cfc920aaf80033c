"""kopf validating webhooks: one per kind, each a few lines calling the admission service.

The request's user and groups come from the AdmissionReview (`userinfo`), never from the
object; dry-run requests are judged but change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import kopf

from costgov.handlers.indexing import admission_inventory, scale_targets
from costgov.services import operating
from costgov.services.admitting import Gate, Request

__all__ = ["ADMITTED", "REVIEW", "judge", "validate"]

REVIEW: ContextVar[dict[str, Any] | None] = ContextVar("costgov_review", default=None)
"""The AdmissionReview as plain JSON, parsed (and checked) once by costgov's webhook server:
the handler reads the objects from it rather than through kopf's body views, which resolve
every key on access."""

ADMITTED: tuple[tuple[str, str | None, str, str, str | None], ...] = (
    ("batch", "v1", "jobs", "Job", None),
    ("", "v1", "pods", "Pod", None),
    ("apps", "v1", "deployments", "Deployment", None),
    ("apps", "v1", "statefulsets", "StatefulSet", None),
    ("apps", "v1", "replicasets", "ReplicaSet", None),
    ("apps", "v1", "deployments", "Deployment", "scale"),
    ("apps", "v1", "statefulsets", "StatefulSet", "scale"),
    ("apps", "v1", "replicasets", "ReplicaSet", "scale"),
    ("batch", "v1", "cronjobs", "CronJob", None),
    # Custom resources of other projects, any served version (the chart registers each
    # webhook only when its CRD exists).
    ("kubeflow.org", None, "pytorchjobs", "PyTorchJob", None),
    ("kubeflow.org", None, "tfjobs", "TFJob", None),
    ("kubeflow.org", None, "mpijobs", "MPIJob", None),
    ("kubeflow.org", None, "xgboostjobs", "XGBoostJob", None),
    ("kubeflow.org", None, "paddlejobs", "PaddleJob", None),
    ("kubeflow.org", None, "jaxjobs", "JAXJob", None),
    ("jobset.x-k8s.io", None, "jobsets", "JobSet", None),
    ("leaderworkerset.x-k8s.io", None, "leaderworkersets", "LeaderWorkerSet", None),
    ("ray.io", None, "rayjobs", "RayJob", None),
    ("ray.io", None, "rayclusters", "RayCluster", None),
    # Their scale subresources (kubectl scale, HPA): judged like a Deployment's.
    ("leaderworkerset.x-k8s.io", None, "leaderworkersets", "LeaderWorkerSet", "scale"),
    ("kubeflow.org", None, "pytorchjobs", "PyTorchJob", "scale"),
    ("kubeflow.org", None, "paddlejobs", "PaddleJob", "scale"),
    ("kubeflow.org", None, "jaxjobs", "JAXJob", "scale"),
    ("costgov.io", "v1alpha1", "costpolicies", "CostPolicy", None),
    ("costgov.io", "v1alpha1", "trainingjobbudgets", "TrainingJobBudget", None),
    ("costgov.io", "v1alpha1", "inferencedeployments", "InferenceDeployment", None),
    ("costgov.io", "v1alpha1", "costapprovals", "CostApproval", None),
)


def _request(kind: str, kw: Mapping[str, Any]) -> Request:
    userinfo = kw.get("userinfo") or {}
    raw = (REVIEW.get() or {}).get("request") or {}
    new, old = raw.get("object"), raw.get("oldObject")
    if not isinstance(new, dict):  # not through costgov's server (tests): kopf's bodies
        new, old = dict(kw.get("new") or kw["body"]), dict(kw["old"]) if kw.get("old") else None
    return Request(
        kind=kind,
        operation=str(kw.get("operation") or ""),
        obj=new,
        old=old if isinstance(old, dict) else None,
        user=str(userinfo.get("username", "")),
        groups=tuple(userinfo.get("groups") or ()),
        dryrun=bool(kw.get("dryrun")),
        subresource=kw.get("subresource"),
    )


async def validate(kind: str, memo: Any, **kw: Any) -> None:
    """kopf's handler: `judge` with kopf's keyword arguments."""
    await judge(kind, {**kw, "memo": memo})


async def judge(kind: str, kw: Mapping[str, Any]) -> None:
    """Judge one request; deny with the engine's message, or admit with its warnings.

    `kw` holds what kopf gives a handler (the operator's indexes by name, `memo`, `userinfo`,
    `operation`, `dryrun`, `subresource`, `warnings`); costgov's server calls this directly
    with those (handlers/serving.py), kopf through `validate`. A coroutine on the event
    loop, not a worker thread: judging takes a fraction of a millisecond from memory
    (inputs are bounded), less than a thread hop."""
    runtime, request = kw["memo"].runtime, _request(kind, kw)
    namespace = request.metadata.get("namespace") or kw.get("namespace") or "default"
    inv = admission_inventory(kw, str(namespace))
    situation = runtime.situation(inv, runtime.clock())
    gate = Gate(situation, runtime.trusted, runtime.self_user, scale_targets(kw, request))
    decision = await operating.admission(runtime, request, gate, str(namespace))
    kw["warnings"].extend(decision.warnings)
    if not decision.allowed:
        raise kopf.AdmissionError(decision.message, code=decision.code)
