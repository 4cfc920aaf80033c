"""Offline estimate: price manifests and judge them against CostPolicies (`costgov estimate`).

Classifies documents, prices every workload through the domain engine, joins Jobs to their
TrainingJobBudgets and workloads to the policies in scope, and returns a `Report`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from pydantic import ValidationError

from costgov.adapters.manifests import Document
from costgov.api import GROUP, CostApproval, CostPolicy, InferenceDeployment, TrainingJobBudget
from costgov.api.common import Resource
from costgov.api.errors import describe_validation_error
from costgov.domain.budgets import cost_in_period, highest_crossed, utilization_percent
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.costing import Estimate
from costgov.domain.judging import (
    Judgement,
    Situation,
    Spend,
    Submission,
    estimate_for,
    judge,
)
from costgov.domain.reading import workload_from_object
from costgov.domain.resources import inference_workload
from costgov.domain.scoping import DEFAULT_OPERATOR_NAMESPACE, covering_budget, excluded_namespaces
from costgov.domain.verdicts import Verdict, worst_action
from costgov.domain.workloads import WORKLOAD_KINDS, ManifestError, Workload

__all__ = [
    "BudgetLine",
    "InputError",
    "Options",
    "PolicyLine",
    "Report",
    "WorkloadLine",
    "estimate_documents",
]

_MODELS: dict[str, type[Resource]] = {
    "CostPolicy": CostPolicy,
    "TrainingJobBudget": TrainingJobBudget,
    "InferenceDeployment": InferenceDeployment,
    "CostApproval": CostApproval,
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
    """What the governed workloads cost in one budget period (their estimates without a
    budget)."""
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
    """Kinds seen but not priced (Services, ConfigMaps..., workloads without GPUs), counted."""
    unreadable: tuple[str, ...] = ()
    """Files and documents that are not Kubernetes objects (Helm templates, values files),
    each with why: reported and skipped."""

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
    approvals: list[tuple[str, CostApproval]] = field(default_factory=list)
    workloads: list[tuple[str, Workload]] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    def skip(self, kind: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1


def _header(doc: Document) -> tuple[str, str] | str:
    """(apiVersion, kind) of a document, or why it is not a Kubernetes object."""
    body = doc.body
    if not isinstance(body, dict):
        return (
            f"{doc.where}: not a Kubernetes object (a mapping with apiVersion, kind and "
            f"metadata), but a {type(body).__name__}"
        )
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        missing = "apiVersion" if not isinstance(api_version, str) else "kind"
        return f"{doc.where}: not a Kubernetes object: {missing} is missing"
    return api_version, kind


def _add_resource(inputs: _Inputs, doc: Document, kind: str) -> None:
    """A costgov object: validated and filed under its kind."""
    if kind == "PriceCatalog":  # a pricing file: it takes effect through --pricing
        inputs.skip(kind)
        return
    if kind not in _MODELS:
        name = (doc.body.get("metadata") or {}).get("name", "?")
        raise InputError(
            [
                f"{doc.where}: {kind}/{name}: kind: unknown {GROUP} kind {kind!r}; "
                f"expected one of {', '.join(_MODELS)}"
            ]
        )
    resource = _validate(doc, kind)
    if isinstance(resource, CostPolicy):
        inputs.policies.append((doc.where, resource))
    elif isinstance(resource, TrainingJobBudget):
        inputs.budgets.append((doc.where, resource))
    elif isinstance(resource, InferenceDeployment):
        inputs.inference.append((doc.where, resource))
    elif isinstance(resource, CostApproval):
        inputs.approvals.append((doc.where, resource))


def _add(inputs: _Inputs, doc: Document) -> None:
    header = _header(doc)
    if isinstance(header, str):
        inputs.unreadable.append(header)
        return
    api_version, kind = header
    body = doc.body
    name = (body.get("metadata") or {}).get("name", "?")
    try:
        if api_version.split("/")[0] == GROUP:
            _add_resource(inputs, doc, kind)
        elif (api_version, kind) in WORKLOAD_KINDS:
            workload = workload_from_object(body)
            if workload.uses_gpus:
                inputs.workloads.append((doc.where, workload))
            else:
                inputs.skip(f"{kind} (no GPUs)")
        elif (api_version, kind) == ("v1", "Namespace"):
            meta = body.get("metadata") or {}
            labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
            inputs.namespaces[str(meta.get("name"))] = labels
        else:
            inputs.skip(kind)
    except ManifestError as exc:
        raise InputError([f"{doc.where}: {kind}/{name}: {exc}"]) from exc


def _classify(docs: Iterable[Document], unreadable: Sequence[str]) -> _Inputs:
    """Every document filed by kind; all problems reported together."""
    inputs, problems = _Inputs(unreadable=list(unreadable)), []
    for doc in docs:
        try:
            _add(inputs, doc)
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return inputs


def _situation(
    inputs: _Inputs, catalog: PriceCatalog, now: datetime, options: Options
) -> Situation:
    """What is known offline: the inputs, no spend, no nodes; each budget's covered Jobs
    commit their estimates (the engine leaves out the Job being judged)."""
    base = Situation(
        catalog=catalog,
        now=now,
        policies=[p for _, p in inputs.policies],
        namespaces=inputs.namespaces,
        budgets=[b for _, b in inputs.budgets],
        approvals=[a for _, a in inputs.approvals],
        assume_instance_type=options.assume_instance_type,
        excluded=excluded_namespaces(options.operator_namespace),
    )
    commitments: dict[tuple[str, str], dict[str, Decimal]] = {}
    for _, wl in inputs.workloads:
        budget = covering_budget(base.budgets, wl) if wl.kind == "Job" else None
        amount = estimate_for(wl, base, budget).amount if budget is not None else None
        if budget is not None and amount is not None:
            key = (wl.namespace, budget.metadata.name)
            commitments.setdefault(key, {})[wl.name] = amount
    return replace(base, spend=Spend(commitments=commitments))


def _budget_lines(inputs: _Inputs, found: Sequence[Judgement]) -> list[BudgetLine]:
    lines = []
    for where, tjb in inputs.budgets:
        jobs = tuple(j.estimate for j in found if j.budget is tjb)
        amounts = [e.amount for e in jobs]
        total = None if None in amounts else sum((a for a in amounts if a is not None), Decimal(0))
        lines.append(BudgetLine(where, tjb, jobs, total))
    return lines


def _policy_lines(inputs: _Inputs, lines: Sequence[WorkloadLine]) -> list[PolicyLine]:
    out = []
    for where, policy in inputs.policies:
        name, budget = policy.metadata.name, policy.spec.budget
        governed = [w for w in lines if any(v.policy == name for v in w.verdicts)]
        costs = [
            w.estimate.amount
            if budget is None or w.estimate.hourly is None
            else cost_in_period(
                w.estimate.hourly,
                w.estimate.hours,
                budget.period,
                w.estimate.workload.schedule,
                w.estimate.run_hours,
            )
            for w in governed
        ]
        out.append(
            PolicyLine(
                where,
                policy,
                len(governed),
                sum((c for c in costs if c is not None), Decimal(0)),
                sum(1 for c in costs if c is None),
                sum(1 for w in governed if any(v.denied for v in w.verdicts if v.policy == name)),
            )
        )
    return out


@dataclass(frozen=True)
class Options:
    """How to judge what the files do not say."""

    assume_instance_type: str | None = None
    """Price GPU work with no node hints as this instance type."""
    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE
    """Never governed (nor is kube-system)."""


def estimate_documents(
    docs: Sequence[Document],
    catalog: PriceCatalog,
    *,
    now: datetime,
    extra_policies: Sequence[Document] = (),
    options: Options = Options(),
    unreadable: Sequence[str] = (),
) -> Report:
    """Price every workload in `docs` and judge it against every policy in scope, through
    the same engine as the admission webhook (`domain.judging.judge`)."""
    inputs = _classify([*docs, *extra_policies], unreadable)
    situation = _situation(inputs, catalog, now, options)
    submissions = [(where, Submission(wl)) for where, wl in inputs.workloads] + [
        (where, Submission(inference_workload(i), inference=i)) for where, i in inputs.inference
    ]
    found = [(where, judge(sub, situation)) for where, sub in submissions]
    lines = [
        WorkloadLine(
            where,
            j.estimate,
            j.verdicts,
            j.budget.metadata.name if j.budget else None,
            j.subject.affordable_replicas,
            j.submission.inference.spec.replicas.min if j.submission.inference else None,
        )
        for where, j in found
    ]
    return Report(
        catalog.version,
        now,
        tuple(lines),
        tuple(_budget_lines(inputs, [j for _, j in found])),
        tuple(_policy_lines(inputs, lines)),
        dict(inputs.skipped),
        tuple(inputs.unreadable),
    )
