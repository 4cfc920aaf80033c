"""What the catch-up says when the chart's recording rules are there but cannot be read.

services/recorded.py reads an hour from the rules only when all of them recorded at that
evaluation, and only this release's version of them; elsewhere it counts raw samples, to
the same dollars but more slowly (minutes for a month at 10,000 pods). Two causes last and
need a person: rules of another release evaluated instead of this one's, and a rule failing
at most evaluations (a query timeout or a sample limit at the cluster's size, a rule edited
out of the group). Each is said once, with what to look for, not on every chunk.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from costgov.adapters import promql_rules
from costgov.adapters.prometheus import RangeSeries

__all__ = ["failing_rules", "other_versions"]

log = logging.getLogger("costgov")

FEWEST = 3
"""Evaluations (the latest left out) needed before rules are said to fail: one failure in
a few is Prometheus restarting, not a rule that cannot run."""

_TOLD: set[frozenset[str]] = set()
"""The sets of other rules versions already logged (once per process each)."""
_FAILING: dict[int, frozenset[str]] = {}
"""Per interval, the rules last said to fail: said again only when that set changes, or
after the rules were seen mostly complete again."""


def other_versions(series: Iterable[RangeSeries]) -> None:
    """Say once when only rules of other versions were evaluated: the rules a release ships
    and the operator it runs differ (one was upgraded without the other)."""
    mine = promql_rules.VERSION
    others = frozenset(s.labels.get(promql_rules.VERSION_LABEL, "none") for s in series) - {mine}
    if others and others not in _TOLD:
        _TOLD.add(others)
        log.warning(
            f"recording rules of version(s) {', '.join(sorted(others))} (label costgov_rules) "
            f"are evaluated, and none of version {mine}, the only one this operator reads: "
            "past spend there is counted from raw samples. Right after an upgrade that lasts "
            "until the new rules' first evaluation; if it lasts longer, install the rules of "
            "this release (the chart's catchupRules, or `costgov rules`; docs/operator.md, "
            "From recording rules)"
        )


def failing_rules(
    markers: Mapping[int, Mapping[str, set[int]]],
    found: Mapping[int, tuple[list[int], list[int]]],
    step: int,
) -> None:
    """Say when at most half of this version's evaluations recorded every rule, naming how
    often each recorded. Per interval, `markers`: each rule's marker times (unix ms);
    `found`: the times all of them recorded at, and those any did (services/recorded). The
    latest evaluation is left out: a query can land while Prometheus is still writing a
    group's rules one after another (each its own commit, all at the evaluation's time)."""
    for interval, by_name in sorted(markers.items()):
        times = found[interval][1][:-1]
        if len(times) < FEWEST:
            continue
        counts = {n: len(by_name.get(n, set()).intersection(times)) for n in promql_rules.NAMES}
        complete = len(set(found[interval][0]).intersection(times))
        if complete * 2 > len(times):
            _FAILING.pop(interval, None)  # mostly complete: a later failure is said again
            continue
        short = frozenset(n for n, c in counts.items() if c < len(times))
        if _FAILING.get(interval) == short:
            continue
        _FAILING[interval] = short
        _say(promql_rules.group_name(step, interval), times, complete, counts)


def _say(group: str, times: list[int], complete: int, counts: Mapping[str, int]) -> None:
    def when(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")

    n = len(times)
    each = ", ".join(f"{name} {c}/{n}" for name, c in counts.items() if c < n)
    log.warning(
        f"recording rule group {group}: {complete} of its {n} evaluations from "
        f"{when(times[0])} to {when(times[-1])} recorded all {len(counts)} rules ({each}). "
        "The hours of the others are counted from raw samples, more slowly. Look for the "
        "failing rule in Prometheus (its Rules page, prometheus_rule_evaluation_failures_total"
        "): a query timeout or a sample limit at this cluster's size, or a rule left out of "
        "the group"
    )
