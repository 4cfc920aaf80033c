"""Reconcile an InferenceDeployment: replicas capped to its budget under an enforcing policy,
measured $/h, $ per 1M tokens and per 1k requests, utilisation, idle dollars, advice, and
the Deployment costgov owns. Pure: no I/O; the handler applies the outcome.
"""

from __future__ import annotations

from decimal import Decimal

from costgov.api import InferenceDeployment
from costgov.api.advice import Recommendation
from costgov.api.fields import Condition
from costgov.api.inferencedeployment import (
    BuildVsBuyStatus,
    InferenceDeploymentStatus,
)
from costgov.catalog.hosted import PROVIDER_IDS, hosted_prices
from costgov.domain.buildbuy import blended, build_vs_buy
from costgov.domain.enforcing import replica_cap
from costgov.domain.judging import Judgement, Situation, Submission, judge
from costgov.domain.money import HOURS_PER_MONTH, cents, usd
from costgov.domain.recommending import Advice, inference_advice
from costgov.domain.resources import inference_workload
from costgov.domain.scoping import governing
from costgov.domain.spend import idle_cost, totals, unit_cost
from costgov.domain.tokens import TokenPrice
from costgov.services.accounting import Snapshot
from costgov.services.advice import covers, keeps_standing, with_evidence, workload_advice
from costgov.services.approval_states import approval_states
from costgov.services.conditions import Event, condition, merge_conditions
from costgov.services.deployments import INFERENCE_LABEL, deployment_manifest
from costgov.services.evidence import PodEvidence
from costgov.services.figures import metrics_condition, pods_condition
from costgov.services.inventory import Inventory
from costgov.services.outcomes import Outcome
from costgov.services.planning import UNIT_COST_SPAN_SECONDS

__all__ = ["reconcile_inference"]


def _cap(
    idep: InferenceDeployment, found: Judgement, situation: Situation, gen: int
) -> tuple[int, int | None, Condition]:
    spec, now = idep.spec, situation.now
    wl = found.submission.workload
    policies = governing(
        situation.policies, wl, situation.namespace_labels(wl.namespace), situation.excluded
    )
    affordable = found.subject.affordable_replicas
    replicas, by = replica_cap(affordable, spec.replicas.max, policies)
    if affordable is None or affordable >= spec.replicas.max:
        message = "the budget affords the maximum replicas"
        return (
            replicas,
            None,
            condition("BudgetCapped", False, "WithinBudget", message, generation=gen, now=now),
        )
    if by is None:
        message = f"{spec.replicas.max} replicas would exceed the monthly budget; no enforcing policy, so not capped"
        return (
            replicas,
            None,
            condition("BudgetCapped", False, "OverBudget", message, generation=gen, now=now),
        )
    message = (
        f"{spec.replicas.max} replicas would cost {usd(found.estimate.amount or Decimal(0))}/month, "
        f"over the {usd(spec.monthly_budget or Decimal(0))} budget; capped at {replicas} by policy {by}"
    )
    return (
        replicas,
        replicas,
        condition("BudgetCapped", True, "OverBudget", message, generation=gen, now=now),
    )


def _measured(idep: InferenceDeployment, inv: Inventory, snapshot: Snapshot) -> dict[str, object]:
    """$/h, $/month, $ per 1M tokens and 1k requests, utilisation and idle dollars."""
    ns, name = idep.metadata.namespace or "default", idep.metadata.name
    pods = {
        (p.namespace, p.name)
        for p in inv.pods
        if p.namespace == ns and p.labels.get(INFERENCE_LABEL) == name
    }
    hourly = totals(c for c in snapshot.hourly_by_namespace.get(ns, ()) if c.usage.key in pods).cost
    monthly = hourly * HOURS_PER_MONTH
    # what the pods cost over exactly the span their tokens and requests were counted in
    serving = totals(c for c in snapshot.unit_costs if c.usage.key in pods)
    per_million = unit_cost(serving, sum(snapshot.tokens.get(k, 0.0) for k in pods), 1_000_000)
    per_thousand = unit_cost(serving, sum(snapshot.requests.get(k, 0.0) for k in pods), 1000)
    utils = [snapshot.utilization[k] for k in pods if k in snapshot.utilization]
    tokens = [snapshot.tokens[k] for k in pods if k in snapshot.tokens]
    out: dict[str, object] = {
        "hourly_cost": cents(hourly),
        "projected_monthly_cost": cents(monthly),
        "figures_as_of": snapshot.at,
        "_pods": pods,
        "_hourly": hourly,
    }
    if per_million is not None:
        out["cost_per_million_tokens"] = cents(per_million)
    if per_thousand is not None:
        out["cost_per_thousand_requests"] = cents(per_thousand)
    if tokens:  # counted over the trailing hour (accounting's UNIT_COST_SPAN_SECONDS)
        out["_tokens_per_hour"] = Decimal(repr(sum(tokens))) * 3600 / UNIT_COST_SPAN_SECONDS
    if utils:
        util = sum(utils) / len(utils)
        out["gpu_utilization_percent"] = min(100, max(0, int(util)))
        out["idle_gpu_cost"] = cents(idle_cost(monthly, util))
        out["_util"] = util
    return out


def served_model(idep: InferenceDeployment) -> str | None:
    """spec.model, else the server's model argument: `--model X`, `--model=X`, SGLang's
    `--model-path X`, `serve X`, or a first argument naming a hub model (org/name)."""
    if idep.spec.model:
        return idep.spec.model
    args = idep.spec.args
    for i, arg in enumerate(args):
        if arg in ("--model", "--model-path", "serve") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(("--model=", "--model-path=")):
            return arg.partition("=")[2]
    # the vllm/vllm-openai image runs `vllm serve`: its args start with the model, a hub id
    return args[0] if args and "/" in args[0] and not args[0].startswith("-") else None


def _hosted(
    idep: InferenceDeployment, situation: Situation, share: Decimal
) -> tuple[str, TokenPrice | None, str | None] | None:
    """The hosted model to compare with: the one spec names, else the nearest to the
    served model (None: neither)."""
    prices = hosted_prices(situation.catalog)
    named = idep.spec.replaces_hosted_model
    if named is not None:
        provider, _, model = named.partition("/")
        return named, prices.price(provider, model, situation.now), None
    served = served_model(idep)
    found = None if served is None else prices.nearest(served, situation.now, share)
    if found is None:
        return None
    price, why = found
    return f"{price.provider}/{price.model}", price, why


def _build_vs_buy(
    idep: InferenceDeployment,
    situation: Situation,
    measured: dict[str, object],
    tokens_per_hour: Decimal | None,
) -> BuildVsBuyStatus | None:
    """status.buildVsBuy: the named hosted model's price against the measured server."""
    spec = idep.spec
    share = Decimal(spec.hosted_input_share_percent) / 100
    hosted = _hosted(idep, situation, share)
    if hosted is None:
        return None
    named, price, picked = hosted
    # every field set (None included): a figure that no longer applies is removed from status
    out = BuildVsBuyStatus.model_validate(
        dict.fromkeys(BuildVsBuyStatus.model_fields) | {"hosted_model": named, "picked": picked}
    )
    if price is None:
        return out.model_copy(update={"note": "not in genai-prices nor the pricing file's "
                                      "models: add it there"})  # fmt: skip
    provider = named.partition("/")[0]
    hourly = measured.get("_hourly")  # exact: x 730 it equals projectedMonthlyCost
    fields: dict[str, object] = {
        "price_source": price.source,
        "priced_as": f"{price.provider}/{price.model}",
        "hosted_per_million_tokens": format(blended(price, share), "f"),
        "self_hosted_per_million_tokens": measured.get("cost_per_million_tokens"),
    }
    asked = PROVIDER_IDS.get(provider.lower(), provider.lower())
    if price.provider.lower() != asked:
        fields["note"] = (f"no price for provider {provider}: priced as {price.provider}'s "
                          f"{price.model}")  # fmt: skip
    if not isinstance(hourly, Decimal) or tokens_per_hour is None:
        fields["note"] = "no measured cost or token volume yet"
        return out.model_copy(update=fields)
    if tokens_per_hour == 0:
        fields["note"] = "no tokens served in the last hour"
    found = build_vs_buy(
        price, input_share=share, self_hourly=hourly, tokens_per_hour=tokens_per_hour
    )
    crossover = found.crossover_monthly_tokens
    return out.model_copy(update={
        **fields, "monthly_tokens": int(found.monthly_tokens),
        "hosted_monthly_cost": cents(found.hosted_monthly),
        "self_hosted_monthly_cost": cents(found.self_monthly), "cheaper": found.cheaper,
        "monthly_difference": cents(found.monthly_difference),
        "crossover_monthly_tokens": None if crossover is None else int(crossover),
    })  # fmt: skip


def _listed(
    idep: InferenceDeployment,
    advice: list[Advice],
    pods: set[tuple[str, str]],
    snapshot: Snapshot,
    evidence: PodEvidence | None,
    old: InferenceDeploymentStatus,
    situation: Situation,
) -> list[Recommendation]:
    """status.recommendations: `advice` with the evidence's; the last ones while no figures
    are read, the evidence-based ones while evidence does not cover the pods yet."""
    if snapshot.error:
        return old.recommendations
    more = None
    if covers(evidence, pods):
        more = workload_advice(pods, snapshot, evidence, situation.catalog,
                               min_replicas=idep.spec.replicas.min)  # fmt: skip
    return with_evidence(advice, more, old.recommendations, keeps_standing(evidence, pods))


def reconcile_inference(
    idep: InferenceDeployment,
    inv: Inventory,
    snapshot: Snapshot,
    *,
    situation: Situation,
    old: InferenceDeploymentStatus,
    ready_replicas: int,
    evidence: PodEvidence | None = None,
) -> Outcome[InferenceDeploymentStatus]:
    spec, gen, now = idep.spec, idep.metadata.generation or 0, situation.now
    ns, name = idep.metadata.namespace or "default", idep.metadata.name
    found = judge(Submission(inference_workload(idep), inference=idep), situation)
    replicas, capped, capping = _cap(idep, found, situation, gen)
    measured = {} if snapshot.error else _measured(idep, inv, snapshot)
    util = measured.pop("_util", None)
    per_hour = measured.pop("_tokens_per_hour", None)
    pods = measured.pop("_pods", set())
    comparison = _build_vs_buy(idep, situation, measured, per_hour)  # type: ignore[arg-type]
    exact = measured.pop("_hourly", None)
    advice = inference_advice(
        monthly=None if exact is None else exact * HOURS_PER_MONTH,  # type: ignore[operator]
        utilisation=util,  # type: ignore[arg-type]
        replicas=replicas,
        min_replicas=spec.replicas.min,
        measured_per_million=measured.get("cost_per_million_tokens"),  # type: ignore[arg-type]
        hosted_per_million=spec.hosted_api_price_per_million_tokens,
        spot=found.estimate.spot,
    )
    listed = _listed(idep, advice, pods, snapshot, evidence, old, situation)  # type: ignore[arg-type]
    ready = condition(
        "Ready", ready_replicas >= min(replicas, 1), "DeploymentReady" if ready_replicas else "Waiting",
        f"{ready_replicas}/{replicas} replicas ready", generation=gen, now=now,
    )  # fmt: skip
    status = InferenceDeploymentStatus(
        observed_generation=gen,
        replicas=replicas,
        capped_replicas=capped,
        ready_replicas=ready_replicas,
        approvals=approval_states(found),
        recommendations=listed,
        conditions=merge_conditions(
            old.conditions,
            [
                ready,
                metrics_condition(snapshot, gen, now),
                capping,
                pods_condition(inv.pods_problem([idep.metadata.namespace or "default"]), gen, now),
            ],
        ),
        build_vs_buy=comparison,
        **measured,
    )
    events = []
    if capped is not None and old.capped_replicas != capped:
        events.append(
            Event("InferenceDeployment", ns, name, "Warning", "ReplicasCapped", capping.message)
        )
    return Outcome(status, events, deployment=deployment_manifest(idep, replicas))
