"""Reconcile costgov's resources: the public surface over one module per resource.

Each reconciler takes the resource, the inventory, the cycle's snapshot and situation, and
its old status (typed), and returns an `Outcome`: the typed status, events, patches, and
the figures admission needs. No I/O; the handlers apply outcomes (`render_status`).
"""

from costgov.services.approval_reconciling import reconcile_approval
from costgov.services.budget_reconciling import DEFAULT_THRESHOLDS, reconcile_budget
from costgov.services.deployments import INFERENCE_LABEL, deployment_manifest
from costgov.services.inference_reconciling import reconcile_inference
from costgov.services.outcomes import Outcome
from costgov.services.policy_reconciling import reconcile_policy
from costgov.services.windows import budget_window, policy_window, window_key

__all__ = [
    "DEFAULT_THRESHOLDS",
    "INFERENCE_LABEL",
    "Outcome",
    "budget_window",
    "deployment_manifest",
    "policy_window",
    "reconcile_approval",
    "reconcile_budget",
    "reconcile_inference",
    "reconcile_policy",
    "window_key",
]
