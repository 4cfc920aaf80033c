"""PromQL for hosted-API spend: LLM gateways' counters (domain/gateways.py names them), grown
over a span exactly where their history allows."""

from __future__ import annotations

from collections.abc import Iterable

from costgov.domain.gateways import (
    GATEWAY_METRICS,
    REQUEST_METRICS,
    SERIES_LABEL,
    check_team_labels,
)

__all__ = ["START_LOOKBACK_SECONDS", "counter_growth", "gateway_increase", "gateway_requests"]


def _dur(seconds: int) -> str:
    return f"{int(seconds)}s"


START_LOOKBACK_SECONDS = 4200
"""How far before a window's start its starting value is looked for (70 minutes): a failed
scrape (Prometheus marks the series stale), a restart or lagging ingestion leave gaps
longer than the 5-minute lookback an instant lookup has."""


def counter_growth(metric: str, span_seconds: int) -> str:
    """How much each series of a counter grew over the span ending at the evaluation time:
    - a series with a sample in the 70 minutes before the start: its last value in the span
      minus that sample (exact; consecutive spans telescope, the sample at a boundary ending
      one and starting the next);
    - a series with none (born inside the span, or after a longer gap): `increase()`, which
      extrapolates from its samples and never counts a counter's lifetime total as a
      window's (what the series counted before its first sample is not seen);
    - a series that reset inside the span (a gateway restarted): `increase()`, which counts
      across resets."""
    span = _dur(span_seconds)
    last = f"last_over_time({metric}[{span}])"
    start = f"last_over_time({metric}[{_dur(START_LOOKBACK_SECONDS)}] offset {span})"
    resets = f"(resets({metric}[{span}]) > 0)"
    increase = f"increase({metric}[{span}])"
    steady = f"(clamp_min({last} - {start}, 0) unless {resets})"
    return f"({steady} or ({increase} and {resets}) or ({increase} unless {start}))"


def gateway_increase(span_seconds: int, team_labels: Iterable[str] = ()) -> str:
    """How much each LLM-gateway counter grew over the span ending at the evaluation time
    (`counter_growth`), grouped by the labels that say which model, provider, token type and
    team; each alternative tagged with `costgov_series` naming its counter
    (domain/gateways.py). Counters of different gateways never collide: the tags keep their
    label sets apart."""
    extra = tuple(check_team_labels(team_labels))
    parts = []
    for m in GATEWAY_METRICS:
        by = sorted({*m.model, *m.provider, *m.team, *extra, *filter(None, [m.token_type])})
        growth = counter_growth(m.metric, span_seconds)
        parts.append(
            f"label_replace(sum by ({', '.join(by)}) ({growth}),"
            f' "{SERIES_LABEL}", "{m.key}", "", "")'
        )
    return "\n or ".join(parts)


def gateway_requests(span_seconds: int, team_labels: Iterable[str] = ()) -> str:
    """How many requests each gateway served over the span (`counter_growth`), by model and
    team, tagged with `costgov_series` as `gateway_increase` tags its counters."""
    extra = tuple(check_team_labels(team_labels))
    parts = []
    for m in REQUEST_METRICS:
        by = sorted({*m.model, *m.team, *extra})
        growth = counter_growth(m.selector, span_seconds)
        parts.append(
            f"label_replace(sum by ({', '.join(by)}) ({growth}),"
            f' "{SERIES_LABEL}", "{m.key}", "", "")'
        )
    return "\n or ".join(parts)
