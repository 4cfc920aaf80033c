"""Ways a model server could cost less, each with the dollars it saves per month."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from costgov.domain.costing import SpotOption
from costgov.domain.money import usd

__all__ = ["Advice", "Evidence", "inference_advice"]

LOW_UTILISATION_PERCENT = 30


@dataclass(frozen=True)
class Evidence:
    """What a recommendation rests on: a metric, the window it was read over, its value."""

    metric: str
    window: str
    value: str


@dataclass(frozen=True)
class Advice:
    kind: str
    message: str
    monthly_saving: Decimal | None = None
    evidence: tuple[Evidence, ...] = ()
    subject: str = ""
    """What it is about when a status holds several workloads' (a budget's Jobs)."""


def inference_advice(
    *,
    monthly: Decimal | None,
    utilisation: float | None,
    replicas: int,
    min_replicas: int,
    measured_per_million: Decimal | None,
    hosted_per_million: Decimal | None,
    spot: SpotOption | None,
) -> list[Advice]:
    """Fewer replicas when GPUs are mostly idle, the hosted API when it is cheaper per token,
    spot capacity when the server is stateless with replicas to spare."""
    out = []
    if (
        monthly is not None
        and utilisation is not None
        and utilisation < LOW_UTILISATION_PERCENT
        and replicas > min_replicas
    ):
        out.append(
            Advice(
                "fewer-replicas",
                f"GPUs are {utilisation:.0f}% busy: {min_replicas} replica(s) may do",
                monthly * (replicas - min_replicas) / replicas,
            )
        )
    if (
        hosted_per_million is not None
        and measured_per_million is not None
        and measured_per_million > hosted_per_million
    ):
        out.append(
            Advice(
                "hosted-api",
                f"serving costs {usd(measured_per_million)} per 1M tokens; the hosted API "
                f"charges {usd(hosted_per_million)}",
            )
        )
    if spot is not None:
        out.append(
            Advice(
                "spot",
                f"{spot.label} would save {spot.saving_percent}% ({spot.eligible_because})",
                spot.saving,
            )
        )
    return out
