"""Who governs what: the policies whose scope a workload is in, the budget that covers a
Job, and the objects whose signatures may approve a workload.

kube-system and the operator's own namespace are never governed, whatever a policy says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from costgov.api.approvals import Approval
from costgov.api.costapproval import BoundWorkload, CostApproval
from costgov.api.costpolicy import CostPolicy, CostPolicySpec
from costgov.api.inferencedeployment import InferenceDeployment
from costgov.api.trainingjobbudget import TrainingJobBudget
from costgov.domain.approvals import Candidate, Grant
from costgov.domain.selectors import matches
from costgov.domain.workloads import COMPOSITE_KINDS, Workload

__all__ = [
    "ALWAYS_EXCLUDED_NAMESPACES",
    "DEFAULT_OPERATOR_NAMESPACE",
    "JUDGED_OWNERS",
    "Bindings",
    "api_spend_in_scope",
    "binding_key",
    "bindings",
    "bound_workload",
    "candidates",
    "covering_budget",
    "covers",
    "excluded_namespaces",
    "governing",
    "grants_for",
    "how_to_approve",
    "in_scope",
    "judged_through_owner",
    "namespace_in_scope",
    "signatures",
]

ALWAYS_EXCLUDED_NAMESPACES = frozenset({"kube-system"})
DEFAULT_OPERATOR_NAMESPACE = "costgov-system"


def excluded_namespaces(operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE) -> frozenset[str]:
    """Namespaces no policy governs: kube-system and the operator's own."""
    return ALWAYS_EXCLUDED_NAMESPACES | {operator_namespace}


def namespace_in_scope(
    spec: CostPolicySpec,
    *,
    namespace: str,
    namespace_labels: Mapping[str, str],
    excluded: frozenset[str] = ALWAYS_EXCLUDED_NAMESPACES,
) -> bool:
    """Whether the policy's namespaceSelector takes the namespace in (its workloadSelector
    then decides which workloads there it governs)."""
    return namespace not in excluded and matches(spec.scope.namespace_selector, namespace_labels)


def api_spend_in_scope(
    spec: CostPolicySpec,
    *,
    namespace: str | None,
    namespace_labels: Mapping[str, str],
    excluded: frozenset[str] = ALWAYS_EXCLUDED_NAMESPACES,
) -> bool:
    """Whether a policy governs hosted-API spend that a gateway attributes to `namespace`
    (None: to no namespace the cluster has). Gateway spend has no workload labels: a
    policy with a workloadSelector governs none of it; spend attributed to no namespace
    belongs only to a policy over the whole cluster (no namespace or workload selector)."""
    if spec.scope.workload_selector is not None:
        return False
    if namespace is None:
        selector = spec.scope.namespace_selector
        return not selector.match_labels and not selector.match_expressions
    return namespace_in_scope(
        spec, namespace=namespace, namespace_labels=namespace_labels, excluded=excluded
    )


def in_scope(
    spec: CostPolicySpec,
    *,
    namespace: str,
    namespace_labels: Mapping[str, str],
    workload_labels: Mapping[str, str],
    excluded: frozenset[str] = ALWAYS_EXCLUDED_NAMESPACES,
) -> bool:
    """Whether a workload in `namespace` with `workload_labels` is governed by the policy."""
    return namespace_in_scope(
        spec, namespace=namespace, namespace_labels=namespace_labels, excluded=excluded
    ) and matches(spec.scope.workload_selector, workload_labels)


def governing(
    policies: Iterable[CostPolicy],
    workload: Workload,
    namespace_labels: Mapping[str, str],
    excluded: frozenset[str],
) -> list[CostPolicy]:
    """The policies that govern a workload now, judged with the workload's own labels."""
    return [
        p
        for p in policies
        if in_scope(
            p.spec,
            namespace=workload.namespace,
            namespace_labels=namespace_labels,
            workload_labels=workload.labels,
            excluded=excluded,
        )
    ]


def candidates(
    policies: Iterable[CostPolicy],
    namespace: str,
    namespace_labels: Mapping[str, str],
    excluded: frozenset[str],
    labels: Mapping[str, str] | None = None,
) -> list[Candidate]:
    """Policies that may govern work an approval covers in `namespace`: by namespace, and
    by `labels` when the covered workload's labels are known (an InferenceDeployment's)."""
    out = []
    for p in policies:
        if not namespace_in_scope(
            p.spec, namespace=namespace, namespace_labels=namespace_labels, excluded=excluded
        ):
            continue
        if labels is not None and not matches(p.spec.scope.workload_selector, labels):
            continue
        out.append(Candidate(p.metadata.name, p.spec.approvals))
    return out


def covers(budget: TrainingJobBudget, job: Workload) -> bool:
    """Whether a Job counts against a TrainingJobBudget: same namespace, selector matches."""
    return (
        job.kind == "Job"
        and job.namespace == (budget.metadata.namespace or "default")
        and matches(budget.spec.selector, job.labels)
    )


def covering_budget(
    budgets: Iterable[TrainingJobBudget], workload: Workload
) -> TrainingJobBudget | None:
    """The budget a Job counts against (the first by name when several match)."""
    found = sorted((b for b in budgets if covers(b, workload)), key=lambda b: b.metadata.name)
    return found[0] if found else None


def signatures(approval: Approval | None, approvals: Sequence[Approval]) -> tuple[Approval, ...]:
    """An object's signatures: `approval` (the one-signer shorthand) and `approvals`."""
    return (*([approval] if approval is not None else []), *approvals)


def _targets(approval: CostApproval, workload: Workload, bound: Bindings) -> bool:
    target = approval.spec.target
    if (approval.metadata.namespace or "default") != workload.namespace:
        return False
    if target.kind != workload.kind:
        return False
    if target.name is not None:
        return target.name == workload.name
    holder = bound_workload(approval, bound)
    if holder is not None and not holder.same(workload.name, workload.uid):
        return False  # its signatures approve one workload, and it is another
    return matches(target.selector, workload.labels)


Bindings = Mapping[str, BoundWorkload]
"""`binding_key` of a CostApproval -> the workload its selector target's signatures were
used for, as this webhook recorded it (before the watch brings `status.boundTo`)."""


def binding_key(approval: CostApproval) -> str:
    """One CostApproval object (a new one of the same name is another)."""
    meta = approval.metadata
    return meta.uid or f"{meta.namespace or 'default'}/{meta.name}"


def bound_workload(approval: CostApproval, bound: Bindings) -> BoundWorkload | None:
    """The one workload a selector-target CostApproval's signatures approve, once used:
    its status (written before the first use was admitted), or this webhook's record."""
    return approval.status.bound_to or bound.get(binding_key(approval))


def bindings(grants: Iterable[Grant | None]) -> list[CostApproval]:
    """The selector-target CostApprovals whose signatures the given (used) grants are."""
    found = {binding_key(g.binds): g.binds for g in grants if g is not None and g.binds}
    return list(found.values())


def grants_for(
    workload: Workload,
    approvals: Iterable[CostApproval],
    budget: TrainingJobBudget | None = None,
    inference: InferenceDeployment | None = None,
    bound: Bindings | None = None,
) -> tuple[Grant, ...]:
    """Every object whose signatures may approve this workload. A CostApproval with a
    selector target approves one workload: the first its signatures were used for."""
    held = bound or {}
    out = [
        Grant(
            f"CostApproval {a.metadata.namespace}/{a.metadata.name}",
            a.spec.requested_by,
            signatures(a.spec.approval, a.spec.approvals),
            a if a.spec.target.selector is not None and bound_workload(a, held) is None else None,
        )
        for a in approvals
        if _targets(a, workload, held)
    ]
    if budget is not None:
        out.append(
            Grant(
                f"TrainingJobBudget {workload.namespace}/{budget.metadata.name}",
                budget.spec.requested_by,
                signatures(budget.spec.approval, budget.spec.approvals),
            )
        )
    if inference is not None:
        out.append(
            Grant(
                f"InferenceDeployment {workload.namespace}/{inference.metadata.name}",
                inference.spec.requested_by,
                signatures(inference.spec.approval, inference.spec.approvals),
            )
        )
    return tuple(out)


JUDGED_OWNERS = frozenset(
    {
        "Job", "ReplicaSet", "Deployment", "StatefulSet", "CronJob",
        *(kind for _, kind in COMPOSITE_KINDS),
    }
)  # fmt: skip
"""Kinds whose pods (Jobs, ReplicaSets, StatefulSets, RayClusters) are judged through their
owner, which admission judged as a whole."""
_POD_OWNED = frozenset({"StatefulSet"})
"""A LeaderWorkerSet's worker StatefulSets are owned by their leader Pod."""


def judged_through_owner(
    workload: Workload, user: str, *, trusted: frozenset[str], self_user: str | None
) -> bool:
    """Whether admission judges this object through its owner rather than alone.

    Pods a Job, ReplicaSet or StatefulSet controller creates, ReplicaSets a Deployment
    controller creates, Jobs a CronJob or JobSet creates, and what the training, LWS and Ray
    operators create for their resources cost what their owner was judged to cost; the Deployment costgov
    creates for an InferenceDeployment, what the InferenceDeployment was judged to cost.
    The owner reference alone proves nothing (anyone can write one): the request must come
    from the controller's own identity (`trusted`, or costgov itself).
    """
    owner = workload.owner
    if owner is None:
        return False
    if owner.kind == "InferenceDeployment" and owner.api_version.startswith("costgov.io/"):
        return self_user is not None and user == self_user and workload.kind == "Deployment"
    if user not in trusted:
        return False
    return owner.kind in JUDGED_OWNERS or (owner.kind == "Pod" and workload.kind in _POD_OWNED)


def how_to_approve(workload: Workload, budget: str | None) -> str:
    """The way to approve this kind of workload, for denial messages."""
    ns, kind, name = workload.namespace, workload.kind, workload.name
    capr = (
        f"a CostApproval in namespace {ns} with spec.target {{kind: {kind}, name: {name}}} "
        "and spec.requestedBy set to you, signed by the approvers (spec.approval, or "
        "spec.approvals for several sign-offs)"
    )
    if budget is not None:
        return (
            f"To approve: the approvers sign spec.approval (or spec.approvals) of "
            f"TrainingJobBudget {ns}/{budget}, or create {capr}"
        )
    if kind == "Job":
        return (
            "To approve: cover it with a TrainingJobBudget (label costgov.io/budget: <name>) "
            f"whose approvers sign its spec.approval, or create {capr}"
        )
    if kind == "InferenceDeployment":
        return (
            f"To approve: create {capr}; once it exists, the approvers may also sign its "
            "own spec.approval(s)"
        )
    return f"To approve: create {capr}, then apply the {kind} again"
