"""Offline estimate: price manifests and judge them against CostPolicies (`costgov estimate`).

Classifies documents, prices every workload through the domain engine, joins Jobs to their
TrainingJobBudgets and workloads to the policies in scope, and returns a `Report`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from pydantic import ValidationError

from costgov.adapters.manifests import Document
from costgov.api import GROUP, CostPolicy, InferenceDeployment, TrainingJobBudget
from costgov.api.common import Resource
from costgov.api.errors import describe_validation_error
from costgov.domain.budgets import highest_crossed, utilization_percent
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.costing import Estimate, estimate_workload
from costgov.domain.policies import (
    BudgetView,
    Subject,
    Verdict,
    evaluate,
    in_scope,
    worst_action,
)
from costgov.domain.resources import budget_hints, covers, inference_workload
from costgov.domain.workloads import WORKLOAD_KINDS, ManifestError, Workload, workload_from_object

__all__ = [
    "BudgetLine",
    "InputError",
    "PolicyLine",
    "Report",
    "WorkloadLine",
    "estimate_documents",
]

_MODELS: dict[str, type[Resource]] = {
    "CostPolicy": CostPolicy,
    "TrainingJobBudget": TrainingJobBudget,
    "InferenceDeployment": InferenceDeployment,
}


class InputError(ValueError):
    """Input that cannot be estimated; `problems` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class WorkloadLine:
    """One priced workload and its verdicts."""

    source: str
    estimate: Estimate
    verdicts: tuple[Verdict, ...]
    budget: str | None = None
    affordable_replicas: int | None = None
    min_replicas: int | None = None

    @property
    def action(self) -> str:
        return worst_action(list(self.verdicts))


@dataclass(frozen=True)
class BudgetLine:
    """A TrainingJobBudget and the Jobs it covers."""

    source: str
    budget: TrainingJobBudget
    jobs: tuple[Estimate, ...]
    estimated: Decimal | None
    """None when a covered Job cannot be priced: the sum would be understated."""

    @property
    def remaining(self) -> Decimal | None:
        return None if self.estimated is None else self.budget.spec.amount - self.estimated


@dataclass(frozen=True)
class PolicyLine:
    """A CostPolicy and what of the input it governs."""

    source: str
    policy: CostPolicy
    workloads: int
    in_scope_estimate: Decimal
    unpriced: int
    denied: int

    @property
    def utilization(self) -> int | None:
        budget = self.policy.spec.budget
        return (
            None if budget is None else utilization_percent(self.in_scope_estimate, budget.amount)
        )

    @property
    def threshold(self) -> int | None:
        budget = self.policy.spec.budget
        if budget is None:
            return None
        return highest_crossed(self.in_scope_estimate, budget.amount, budget.alert_thresholds)


@dataclass(frozen=True)
class Report:
    """Everything `costgov estimate` prints."""

    catalog_version: str
    generated_at: datetime
    workloads: tuple[WorkloadLine, ...]
    budgets: tuple[BudgetLine, ...]
    policies: tuple[PolicyLine, ...]
    skipped: Mapping[str, int] = field(default_factory=dict)
    """Kinds seen but not priced (Services, ConfigMaps...), with counts."""

    @property
    def denied(self) -> int:
        return sum(1 for w in self.workloads if w.action == "deny")

    @property
    def exit_code(self) -> int:
        """1 when anything is denied by an enforce-mode policy, else 0."""
        return 1 if self.denied else 0


def _validate(doc: Document, kind: str) -> Resource:
    body = doc.body
    name = (body.get("metadata") or {}).get("name", "?") if isinstance(body, dict) else "?"
    try:
        return _MODELS[kind].model_validate(body)
    except ValidationError as exc:
        raise InputError(
            describe_validation_error(exc, root=f"{doc.where}: {kind}/{name}")
        ) from exc


@dataclass
class _Inputs:
    policies: list[tuple[str, CostPolicy]] = field(default_factory=list)
    budgets: list[tuple[str, TrainingJobBudget]] = field(default_factory=list)
    inference: list[tuple[str, InferenceDeployment]] = field(default_factory=list)
    workloads: list[tuple[str, Workload]] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)


def _classify(docs: Iterable[Document]) -> _Inputs:
    inputs, problems = _Inputs(), []
    for doc in docs:
        body = doc.body
        if not isinstance(body, dict):
            problems.append(
                f"{doc.where}: expected a Kubernetes object (a mapping with "
                f"apiVersion, kind and metadata), got {type(body).__name__}"
            )
            continue
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            missing = "apiVersion" if not isinstance(api_version, str) else "kind"
            problems.append(f"{doc.where}: {missing}: required field is missing")
            continue
        name = (body.get("metadata") or {}).get("name", "?")
        try:
            if api_version.split("/")[0] == GROUP:
                if kind == "PriceCatalog":  # a pricing file: it takes effect through --pricing
                    inputs.skipped[kind] = inputs.skipped.get(kind, 0) + 1
                    continue
                if kind not in _MODELS:
                    problems.append(
                        f"{doc.where}: {kind}/{name}: kind: unknown {GROUP} kind {kind!r}; "
                        f"expected one of {', '.join(_MODELS)}"
                    )
                    continue
                resource = _validate(doc, kind)
                if isinstance(resource, CostPolicy):
                    inputs.policies.append((doc.where, resource))
                elif isinstance(resource, TrainingJobBudget):
                    inputs.budgets.append((doc.where, resource))
                elif isinstance(resource, InferenceDeployment):
                    inputs.inference.append((doc.where, resource))
            elif (api_version, kind) in WORKLOAD_KINDS:
                inputs.workloads.append((doc.where, workload_from_object(body)))
            elif (api_version, kind) == ("v1", "Namespace"):
                meta = body.get("metadata") or {}
                labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
                inputs.namespaces[str(meta.get("name"))] = labels
            else:
                inputs.skipped[kind] = inputs.skipped.get(kind, 0) + 1
        except InputError as exc:
            problems.extend(exc.problems)
        except ManifestError as exc:
            problems.append(f"{doc.where}: {kind}/{name}: {exc}")
    if problems:
        raise InputError(problems)
    return inputs


def _namespace_labels(namespaces: Mapping[str, Mapping[str, str]], name: str) -> dict[str, str]:
    # Kubernetes labels every namespace with its own name; offline we know no more unless a
    # Namespace manifest is among the inputs.
    return {**namespaces.get(name, {}), "kubernetes.io/metadata.name": name}


def estimate_documents(
    docs: Sequence[Document],
    catalog: PriceCatalog,
    *,
    now: datetime,
    extra_policies: Sequence[Document] = (),
) -> Report:
    """Price every workload in `docs` and judge it against every policy in scope."""
    inputs = _classify([*docs, *extra_policies])
    estimates: list[tuple[str, Estimate, TrainingJobBudget | None]] = []
    for where, wl in inputs.workloads:
        tjb = next((b for _, b in inputs.budgets if covers(b, wl)), None)
        est = estimate_workload(
            wl,
            catalog,
            budget_hints=budget_hints(tjb.spec.hints) if tjb else None,
            max_duration=tjb.spec.max_duration if tjb else None,
            checkpointing=tjb.spec.checkpointing if tjb else False,
        )
        estimates.append((where, est, tjb))
    for where, server in inputs.inference:
        estimates.append((where, estimate_workload(inference_workload(server), catalog), None))

    # What each budget's covered Jobs add up to (priced ones), computed once.
    priced_total: dict[int, Decimal] = {id(b): Decimal(0) for _, b in inputs.budgets}
    for _, est, covering in estimates:
        if covering is not None and est.amount is not None:
            priced_total[id(covering)] += est.amount
    budget_lines = []
    for where, tjb in inputs.budgets:
        jobs = tuple(e for _, e, b in estimates if b is tjb)
        amounts = [e.amount for e in jobs]
        total = (
            None
            if any(a is None for a in amounts)
            else sum((a for a in amounts if a is not None), Decimal(0))
        )
        budget_lines.append(BudgetLine(where, tjb, jobs, total))

    idep_by_ref = {
        f"InferenceDeployment/{i.metadata.namespace or 'default'}/{i.metadata.name}": i
        for _, i in inputs.inference
    }
    lines: list[WorkloadLine] = []
    for where, est, tjb in estimates:
        wl = est.workload
        idep = idep_by_ref.get(wl.ref)
        subject = Subject(
            estimate=est,
            approval=tjb.spec.approval if tjb else (idep.spec.approval if idep else None),
            training_budget=_budget_view(tjb, est, priced_total[id(tjb)]) if tjb else None,
            monthly_budget=idep.spec.monthly_budget if idep else None,
            min_replicas=idep.spec.replicas.min if idep else 0,
        )
        verdicts = []
        for _, policy in inputs.policies:
            if in_scope(
                policy.spec,
                namespace=wl.namespace,
                namespace_labels=_namespace_labels(inputs.namespaces, wl.namespace),
                workload_labels=wl.labels,
            ):
                verdicts.append(evaluate(policy.metadata.name, policy.spec, subject, now=now))
        lines.append(
            WorkloadLine(
                where,
                est,
                tuple(verdicts),
                tjb.metadata.name if tjb else None,
                subject.affordable_replicas,
                idep.spec.replicas.min if idep else None,
            )
        )

    policy_lines = []
    for where, policy in inputs.policies:
        governed = [w for w in lines if any(v.policy == policy.metadata.name for v in w.verdicts)]
        policy_lines.append(
            PolicyLine(
                where,
                policy,
                len(governed),
                sum((w.estimate.amount or Decimal(0) for w in governed), Decimal(0)),
                sum(1 for w in governed if w.estimate.amount is None),
                sum(
                    1
                    for w in governed
                    if any(v.denied for v in w.verdicts if v.policy == policy.metadata.name)
                ),
            )
        )
    return Report(
        catalog.version,
        now,
        tuple(lines),
        tuple(budget_lines),
        tuple(policy_lines),
        dict(inputs.skipped),
    )


def _budget_view(tjb: TrainingJobBudget, est: Estimate, covered_total: Decimal) -> BudgetView:
    """The budget as one covered Job sees it: its other Jobs' estimates are committed."""
    others = covered_total - (est.amount or Decimal(0))
    return BudgetView(tjb.metadata.name, tjb.spec.amount, spent=None, committed=others)
