"""Estimates: what a workload costs per hour, and in total for its run (or per month).

hourly  = pods x (pod GPUs / node GPUs) x node $/h        (GPU-weighted share)
total   = hourly x hours, hours from activeDeadlineSeconds, else the budget's
          maxDuration, else one month (730 h) with a note saying so
monthly = hourly x 730 for long-running workloads (Deployments, StatefulSets)

Where the pod's node comes from, first that answers: the pod's nodeSelector and required
affinity; the covering budget's hints; the dearest node in the cluster it could land on
(the operator knows the nodes); an assumed instance type (`--assume-instance-type`, or a
policy's `assumeInstanceType`). Otherwise the workload is unpriced, with what to add.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from costgov.domain.capacity import CapacityType
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.money import HOURS_PER_MONTH, SECONDS_PER_HOUR
from costgov.domain.offerings import Offering, Unpriced, offering_for_request
from costgov.domain.placement import NodeInfo, dearest_eligible
from costgov.domain.shares import gpu_share
from costgov.domain.workloads import NodeHints, Workload

__all__ = [
    "INTERRUPTION_OVERHEAD",
    "Estimate",
    "HoursSource",
    "SpotOption",
    "affordable_replicas",
    "estimate_workload",
    "price_pod",
    "spot_option",
]

INTERRUPTION_OVERHEAD = Decimal("0.10")
"""Spot runs are assumed to take 10 % longer: restarts after preemption and the work redone
since the last checkpoint. Spot savings are quoted after this overhead."""


class HoursSource(StrEnum):
    """Where the hours of an estimate come from."""

    DEADLINE = "activeDeadlineSeconds"
    BUDGET = "budget maxDuration"
    MONTH = "one month (no runtime limit declared)"
    LONG_RUNNING = "one month (long-running)"


@dataclass(frozen=True, slots=True)
class SpotOption:
    """The same run on spot capacity."""

    label: str
    on_demand_cost: Decimal
    spot_cost: Decimal
    """Including the interruption overhead."""
    saving: Decimal
    saving_percent: Decimal
    eligible_because: str

    @property
    def assumption(self) -> str:
        return f"spot runs take {INTERRUPTION_OVERHEAD * 100:.0f}% longer (preemption, replay)"


@dataclass(frozen=True, slots=True)
class Estimate:
    """A priced (or visibly unpriced) workload."""

    workload: Workload
    offering: Offering | None
    unpriced: str | None
    hourly: Decimal | None
    hours: Decimal
    hours_source: HoursSource
    notes: tuple[str, ...]
    spot: SpotOption | None

    @property
    def amount(self) -> Decimal | None:
        """The cost that budgets and approvals judge: a run's total, or a month of running."""
        return None if self.hourly is None else self.hourly * self.hours

    @property
    def gpu_model(self) -> str | None:
        if self.offering is not None and self.offering.gpu_model is not None:
            return self.offering.gpu_model
        return self.workload.hints.gpu_model

    @property
    def capacity(self) -> CapacityType | None:
        return None if self.offering is None else self.offering.capacity


def price_pod(
    catalog: PriceCatalog, gpus: int, hints: NodeHints
) -> tuple[Offering | Unpriced, tuple[str, ...]]:
    """The offering a pod with `gpus` GPUs is priced on, and notes on how it was chosen."""
    notes = list(hints.notes)
    capacity = hints.capacity
    if capacity is None:
        capacity = CapacityType.ON_DEMAND
        notes.append("capacity type not specified; priced on demand")
    if hints.gpu_product and hints.gpu_model is None:
        return Unpriced(f"unknown GPU product {hints.gpu_product!r}"), tuple(notes)
    offering = offering_for_request(
        catalog,
        gpus=gpus,
        gpu_model=hints.gpu_model,
        instance_type=hints.instance_type,
        capacity=capacity,
        provider=hints.provider,
        region=hints.region,
    )
    if isinstance(offering, Offering):
        notes.extend(offering.assumptions)
    return offering, tuple(notes)


def _hours(workload: Workload, max_duration: int | None) -> tuple[Decimal, HoursSource]:
    if workload.long_running:
        return HOURS_PER_MONTH, HoursSource.LONG_RUNNING
    if workload.max_runtime_seconds is not None:
        return Decimal(workload.max_runtime_seconds) / SECONDS_PER_HOUR, HoursSource.DEADLINE
    if max_duration is not None:
        return Decimal(max_duration) / SECONDS_PER_HOUR, HoursSource.BUDGET
    return HOURS_PER_MONTH, HoursSource.MONTH


def spot_option(
    offering: Offering, pods: int, gpus_per_pod: int, hours: Decimal, eligible_because: str
) -> SpotOption | None:
    """What the same run costs on spot, with the interruption overhead; None if not offered."""
    if offering.capacity == CapacityType.SPOT or offering.spot_hourly is None:
        return None
    share = gpu_share(gpus_per_pod, offering.node_gpus) * pods
    on_demand = offering.on_demand_hourly * share * hours
    spot = offering.spot_hourly * share * hours * (1 + INTERRUPTION_OVERHEAD)
    if on_demand <= 0:
        return None
    saving = on_demand - spot
    return SpotOption(
        label=f"{offering.instance_type} spot",
        on_demand_cost=on_demand,
        spot_cost=spot,
        saving=saving,
        saving_percent=(saving * 100 / on_demand).quantize(Decimal("0.1")),
        eligible_because=eligible_because,
    )


def _spot_eligibility(workload: Workload, checkpointing: bool) -> str | None:
    if checkpointing or workload.checkpointing:
        return "it checkpoints and survives preemption"
    if workload.long_running and not workload.stateful and workload.pods >= 2:
        return f"it is stateless with {workload.pods} replicas"
    return None


def _place(
    workload: Workload,
    catalog: PriceCatalog,
    hints: NodeHints,
    nodes: tuple[NodeInfo, ...] | None,
    assume_instance_type: str | None,
) -> tuple[Offering | Unpriced, tuple[str, ...]]:
    """The offering a pod is priced on: from its hints, else the cluster's nodes, else an
    assumed instance type."""
    if hints.says_where or (nodes is None and assume_instance_type is None):
        return price_pod(catalog, workload.gpus_per_pod, hints)
    if nodes is not None:
        found = dearest_eligible(nodes, workload.placement, workload.gpus_per_pod, catalog)
        if not isinstance(found, Unpriced):
            offering, note = found
            return offering, (*hints.notes, note)
        if assume_instance_type is None:
            return found, hints.notes
    assumed = NodeHints(
        instance_type=assume_instance_type,
        capacity=hints.capacity,
        provider=hints.provider,
        region=hints.region,
        notes=(*hints.notes, f"no pricing hints: assumed instance type {assume_instance_type}"),
    )
    return price_pod(catalog, workload.gpus_per_pod, assumed)


def estimate_workload(
    workload: Workload,
    catalog: PriceCatalog,
    *,
    budget_hints: NodeHints | None = None,
    max_duration: int | None = None,
    checkpointing: bool = False,
    nodes: tuple[NodeInfo, ...] | None = None,
    assume_instance_type: str | None = None,
) -> Estimate:
    """Price a workload. `budget_hints`, `max_duration` and `checkpointing` come from the
    TrainingJobBudget covering it, if any; the workload's own spec wins over them. `nodes`
    (the cluster's GPU nodes) and `assume_instance_type` price work with no hints at all."""
    hints = workload.hints.over(budget_hints) if budget_hints else workload.hints
    hours, source = _hours(workload, max_duration)
    notes: list[str] = []
    if source == HoursSource.MONTH:
        notes.append("no activeDeadlineSeconds or budget maxDuration: priced for one month (730 h)")
    if workload.gpus_per_pod == 0:
        return Estimate(
            workload, None, "requests no nvidia.com/gpu", None, hours, source, tuple(notes), None
        )
    offering, pricing_notes = _place(workload, catalog, hints, nodes, assume_instance_type)
    notes.extend(pricing_notes)
    if isinstance(offering, Unpriced):
        return Estimate(workload, None, offering.reason, None, hours, source, tuple(notes), None)
    hourly = offering.hourly * gpu_share(workload.gpus_per_pod, offering.node_gpus) * workload.pods
    reason = _spot_eligibility(workload, checkpointing)
    spot = (
        spot_option(offering, workload.pods, workload.gpus_per_pod, hours, reason)
        if reason is not None
        else None
    )
    return Estimate(workload, offering, None, hourly, hours, source, tuple(notes), spot)


def affordable_replicas(
    budget_per_month: Decimal, replica_hourly: Decimal, minimum: int, maximum: int
) -> int:
    """How many replicas a monthly budget pays for, within [minimum, maximum]."""
    if replica_hourly <= 0:
        return maximum
    fits = int(
        (budget_per_month / (replica_hourly * HOURS_PER_MONTH)).to_integral_value(ROUND_FLOOR)
    )
    return max(minimum, min(maximum, fits))
