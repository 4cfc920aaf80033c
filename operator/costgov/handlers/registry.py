"""Register costgov's handlers on a fresh kopf registry (so tests can run an operator of
their own next to another). The handlers themselves are module-level functions."""

from __future__ import annotations

import functools

import kopf

from costgov.handlers import reconciling, toggles
from costgov.handlers.admitting import ADMITTED, validate
from costgov.handlers.indexing import INDEXES, follow_pods, stop_following_pods

__all__ = ["build_registry"]

_TIMERS = (
    ("costpolicies", reconciling.reconcile_policy),
    ("trainingjobbudgets", reconciling.reconcile_budget),
    ("inferencedeployments", reconciling.reconcile_inference),
    ("costapprovals", reconciling.reconcile_approval),
)


def _forgetting(registry: kopf.OperatorRegistry) -> None:
    """A deleted CostPolicy, TrainingJobBudget or InferenceDeployment takes its series with
    it. Optional: no finalizer (costgov never blocks a deletion); one missed while no
    replica runs leaves nothing behind, since the next start exports nothing for it."""
    for plural in ("costpolicies", "trainingjobbudgets", "inferencedeployments"):
        kopf.on.delete("costgov.io", "v1alpha1", plural, id=f"forget-{plural}",
                       optional=True, registry=registry)(reconciling.forget)  # fmt: skip


def build_registry(interval: float) -> kopf.OperatorRegistry:
    """Indexes, one timer per costgov resource, one validating webhook per admitted kind."""
    toggles.install()  # kopf's start-up wait for its indexes, linear (handlers/toggles.py)
    registry = kopf.OperatorRegistry()
    for group, version, plural, fn, extra in INDEXES:
        options = {"id": fn.__name__, **extra}
        kopf.index(group=group, version=version, plural=plural, registry=registry, **options)(fn)
    kopf.on.startup(registry=registry)(follow_pods)
    kopf.on.cleanup(registry=registry)(stop_following_pods)
    _forgetting(registry)
    kopf.on.cleanup(registry=registry)(reconciling.stop_reading)
    for plural, timer in _TIMERS:
        kopf.timer("costgov.io", "v1alpha1", plural, interval=interval, registry=registry)(timer)
    _admitting(registry)
    return registry


def _admitting(registry: kopf.OperatorRegistry) -> None:
    """One validating webhook per admitted kind (and scale subresource)."""
    for group, served, plural, kind, subresource in ADMITTED:
        handler = functools.partial(validate, kind)
        kopf.on.validate(
            group=group,
            version=served,
            plural=plural,
            id=f"{plural}-{subresource}" if subresource else plural,
            subresource=subresource,
            operations=["CREATE", "UPDATE"],
            registry=registry,
        )(handler)
