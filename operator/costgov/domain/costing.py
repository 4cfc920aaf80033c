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

import math
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from costgov.domain.capacity import CapacityType
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.money import HOURS_PER_MONTH, SECONDS_PER_HOUR
from costgov.domain.offerings import Offering, Unpriced
from costgov.domain.placement import NodeInfo, dearest_eligible
from costgov.domain.pricing import claimed_devices, price_pod
from costgov.domain.shares import gpu_share
from costgov.domain.workloads import NodeHints, PodGroup, Schedule, Workload, gpu_figure

__all__ = [
    "INTERRUPTION_OVERHEAD",
    "Estimate",
    "GroupPrice",
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
    SCHEDULE = "one month of scheduled runs"


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
class GroupPrice:
    """One pod group's price: its offering (or why none) and what its pods cost an hour."""

    group: PodGroup
    offering: Offering | None
    unpriced: str | None
    hourly: Decimal | None
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A priced (or visibly unpriced) workload."""

    workload: Workload
    offering: Offering | None
    """The offering of the group that costs the most (the only one, mostly)."""
    unpriced: str | None
    hourly: Decimal | None
    hours: Decimal
    hours_source: HoursSource
    notes: tuple[str, ...]
    spot: SpotOption | None
    parts: tuple[GroupPrice, ...] = ()
    """Every GPU pod group's price (one for most kinds)."""
    run_hours: Decimal | None = None
    """A CronJob's hours per run, when bounded."""

    @property
    def amount(self) -> Decimal | None:
        """The cost that budgets and approvals judge: a run's total, or a month of running
        (of scheduled runs, for a CronJob)."""
        return None if self.hourly is None else self.hourly * self.hours

    @property
    def per_run(self) -> Decimal | None:
        """A CronJob's cost per run, when its runs are bounded."""
        if self.hourly is None or self.run_hours is None:
            return None
        return self.hourly * self.run_hours

    @property
    def gpu_model(self) -> str | None:
        if self.offering is not None and self.offering.gpu_model is not None:
            return self.offering.gpu_model
        return self.workload.hints.gpu_model

    @property
    def capacity(self) -> CapacityType | None:
        return None if self.offering is None else self.offering.capacity


def _hours(
    workload: Workload, max_duration: int | None
) -> tuple[Decimal, HoursSource, Decimal | None, list[str]]:
    """(hours priced, where they come from, a CronJob's hours per run, notes)."""
    run: Decimal | None = None
    if workload.max_runtime_seconds is not None:
        run = Decimal(workload.max_runtime_seconds) / SECONDS_PER_HOUR
    elif max_duration is not None:
        run = Decimal(max_duration) / SECONDS_PER_HOUR
    if workload.schedule is not None:
        return _scheduled_hours(workload.schedule, run)
    if workload.long_running:
        return HOURS_PER_MONTH, HoursSource.LONG_RUNNING, None, []
    if workload.max_runtime_seconds is not None and run is not None:
        return run, HoursSource.DEADLINE, None, []
    if run is not None:
        return run, HoursSource.BUDGET, None, []
    note = "no activeDeadlineSeconds or budget maxDuration: priced for one month (730 h)"
    return HOURS_PER_MONTH, HoursSource.MONTH, None, [note]


def _scheduled_hours(
    schedule: Schedule, run: Decimal | None
) -> tuple[Decimal, HoursSource, Decimal | None, list[str]]:
    runs = schedule.runs_per_month.quantize(Decimal("0.01")).normalize()
    said = f"schedule {schedule.expression!r} fires {runs:f} times a month"
    if run is None:
        note = f"{said}; runs declare no activeDeadlineSeconds: priced as running all month (730 h)"
        return HOURS_PER_MONTH, HoursSource.SCHEDULE, None, [note]
    hours = schedule.runs_per_month * run
    if hours > HOURS_PER_MONTH and not schedule.overlapping:
        note = f"{said}, each up to {run.normalize():f} h; runs never overlap: at most 730 h"
        return HOURS_PER_MONTH, HoursSource.SCHEDULE, run, [note]
    return hours, HoursSource.SCHEDULE, run, [f"{said}, each up to {run.normalize():f} h"]


def spot_option(
    offering: Offering,
    pods: int,
    gpus_per_pod: int | Decimal,
    hours: Decimal,
    eligible_because: str,
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
    group: PodGroup,
    catalog: PriceCatalog,
    hints: NodeHints,
    nodes: tuple[NodeInfo, ...] | None,
    assume_instance_type: str | None,
) -> tuple[Offering | Unpriced, tuple[str, ...]]:
    """The offering a pod is priced on: from its hints, else the cluster's nodes, else an
    assumed instance type. A budget's hints do not bind the scheduler: where the cluster's
    nodes are known, they never price a pod below the dearest node it may land on."""
    gpus = math.ceil(group.gpu_equivalents)
    if hints.says_where and nodes is not None and not group.hints.says_where:
        return _hinted_within_nodes(group, catalog, hints, nodes, gpus)
    if hints.says_where or (nodes is None and assume_instance_type is None):
        return price_pod(catalog, gpus, hints)
    if nodes is not None:
        found = dearest_eligible(nodes, group.placement, gpus, catalog)
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
    return price_pod(catalog, gpus, assumed)


def _hinted_within_nodes(
    group: PodGroup,
    catalog: PriceCatalog,
    hints: NodeHints,
    nodes: tuple[NodeInfo, ...],
    gpus: int,
) -> tuple[Offering | Unpriced, tuple[str, ...]]:
    """A pod priced by its budget's hints alone: at the hint, unless a node it may land on
    is dearer (the hint names hardware the pod need not get); with no node that can take
    it (an autoscaler will add one), at the hint."""
    hinted, notes = price_pod(catalog, gpus, hints)
    found = dearest_eligible(nodes, group.placement, gpus, catalog)
    if isinstance(found, Unpriced):
        return hinted, notes
    offering, where = found
    cost = offering.hourly * gpu_share(gpus, offering.node_gpus)
    if isinstance(hinted, Offering) and cost <= hinted.hourly * gpu_share(gpus, hinted.node_gpus):
        return hinted, notes
    said = hinted.label if isinstance(hinted, Offering) else "nothing it can price"
    note = (
        f"the budget's hints ({said}) do not bind the scheduler, and the pod may land on "
        f"dearer nodes: {where.removeprefix('no pricing hints: ')}"
    )
    return offering, (*group.hints.notes, note)


def _node_note(group: PodGroup, offering: Offering) -> str | None:
    """Whether each pod fills its node or shares it, so no note contradicts the figure."""
    if offering.instance_type is None:
        return None
    held, of = group.gpu_equivalents, offering.node_gpus
    if held >= of:
        return f"whole node: each pod fills a {offering.instance_type} ({of} GPU{'s' * (of > 1)})"
    shown = gpu_figure(held)
    return (
        f"shared node: each pod holds {shown} of the {of} GPUs of a {offering.instance_type}, "
        f"priced at {shown}/{of} of it"
    )


def _price_group(group: PodGroup, catalog: PriceCatalog, context: _Context) -> GroupPrice:
    hints = group.hints.over(context.budget_hints) if context.budget_hints else group.hints
    if group.claims:
        return GroupPrice(group, None, claimed_devices(group.claims), None, hints.notes)
    offering, notes = _place(group, catalog, hints, context.nodes, context.assume_instance_type)
    if isinstance(offering, Unpriced):
        return GroupPrice(group, None, offering.reason, None, notes)
    hourly = offering.hourly * gpu_share(group.gpu_equivalents, offering.node_gpus) * group.pods
    node = _node_note(group, offering)
    return GroupPrice(group, offering, None, hourly, (*notes, *([node] if node else [])))


@dataclass(frozen=True, slots=True)
class _Context:
    budget_hints: NodeHints | None
    nodes: tuple[NodeInfo, ...] | None
    assume_instance_type: str | None


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
    (the cluster's GPU nodes) and `assume_instance_type` price work with no hints at all.
    Workloads whose pods come in groups are priced group by group, and judged as a whole."""
    hours, source, run_hours, notes = _hours(workload, max_duration)
    if not workload.uses_gpus:
        return Estimate(
            workload, None, "requests no GPU", None, hours, source, tuple(notes), None,
            run_hours=run_hours,
        )  # fmt: skip
    context = _Context(budget_hints, nodes, assume_instance_type)
    parts = tuple(_price_group(g, catalog, context) for g in workload.parts if g.gpu_work)
    composite = bool(workload.groups)
    for part in parts:
        notes.extend(f"{part.group.name}: {n}" if composite else n for n in part.notes)
    missing = next((p for p in parts if p.unpriced is not None), None)
    if missing is not None:
        reason = f"{missing.group.name}: {missing.unpriced}" if composite else missing.unpriced
        return Estimate(
            workload, None, reason, None, hours, source, tuple(notes), None, parts, run_hours
        )
    hourly = sum((p.hourly or Decimal(0) for p in parts), Decimal(0))
    dearest = max(parts, key=lambda p: p.hourly or Decimal(0)).offering
    spot = _spot(workload, parts, hours, checkpointing)
    return Estimate(
        workload, dearest, None, hourly, hours, source, tuple(notes), spot, parts, run_hours
    )


def _spot(
    workload: Workload, parts: tuple[GroupPrice, ...], hours: Decimal, checkpointing: bool
) -> SpotOption | None:
    """The whole workload on spot, when it is eligible and every GPU group has a spot price."""
    reason = _spot_eligibility(workload, checkpointing)
    if reason is None:
        return None
    options = []
    for p in parts:
        found = None
        if p.offering is not None:
            found = spot_option(p.offering, p.group.pods, p.group.gpu_equivalents, hours, reason)
        if found is None:
            return None
        options.append(found)
    if len(options) == 1:
        return options[0]
    on_demand = sum((o.on_demand_cost for o in options), Decimal(0))
    spot = sum((o.spot_cost for o in options), Decimal(0))
    return SpotOption(
        label=", ".join(dict.fromkeys(o.label for o in options)),
        on_demand_cost=on_demand,
        spot_cost=spot,
        saving=on_demand - spot,
        saving_percent=((on_demand - spot) * 100 / on_demand).quantize(Decimal("0.1")),
        eligible_because=reason,
    )


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
