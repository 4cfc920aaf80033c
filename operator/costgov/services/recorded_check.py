"""Whether the recording rules saw every pod, before the catch-up trusts their records.

Rules can run and record less than the cluster holds: a PrometheusRule that the Prometheus
Operator narrows with `enforcedNamespaceLabel` sees its own namespace only, and rules
evaluated where only some series are (another Prometheus, a kube-state-metrics shard) miss
pods. Read as they are, those records count the pods they missed as $0. So before a run of
evaluations is read (services/recorded.py), one hour is checked against raw samples
(`promql_rules.uncovered_pods`): the pods Running at one of its sample points, on a node,
with a GPU request, each of which the rules write a line for.

A check costs Prometheus about three reads of an hour (0.4 s at 10,000 pods), so while
checks pass, one covers CHECK_SPACING of history: it is made at the far end of that span
(the latest evaluation within it), so rules narrowed at any time before it and since are
caught before their records are read. Once a check finds pods missing, the rules are not
read again until `forget` (a new leader, a restart): narrowed rules are a configuration,
not a blip. An hour with no pod Running proves nothing and extends no trust. A check
Prometheus does not answer is tried again after a pause, then that run is read raw.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from costgov.adapters import promql_rules
from costgov.adapters.prometheus import MetricsError, PrometheusSource
from costgov.services.recorded import Run

__all__ = ["CHECK_SPACING", "Check", "Checker", "uncovered"]

CHECK_SPACING = 7 * 86400
"""Seconds of history one passing check vouches for."""
CHECK_ATTEMPTS = 3
"""Tries of a check Prometheus does not answer before its run is read from raw samples."""

log = logging.getLogger("costgov")


@dataclass(frozen=True)
class Check:
    """A spot check of the records at one evaluation: the pods raw samples show Running
    then (`checked`) and, per namespace, how many of them the record has no line for."""

    checked: int
    missing: dict[str, int]


async def uncovered(source: PrometheusSource, at: int, interval: int, step: int) -> Check | str:
    """The spot check of the records of the evaluation at `at` (unix ms), by
    `promql_rules.uncovered_pods`, or why Prometheus could not say."""
    expr = promql_rules.uncovered_pods(step, interval, at / 1000)
    try:
        found = await source.query(expr, datetime.fromtimestamp(at / 1000, UTC))
    except MetricsError as exc:
        return f"could not check the recording rules' records: {exc}"
    checked, missing = 0, {}
    for s in found.samples:
        if not math.isfinite(s.value):
            continue
        if s.labels.get(promql_rules.CHECKED) == "true":
            checked = int(s.value)
        else:
            missing[s.labels.get("namespace", "")] = int(s.value)
    return Check(checked, missing)


class Checker:
    """What the checks so far allow the catch-up to read (see the module's doc)."""

    def __init__(self, source: PrometheusSource, step: int, retry: float) -> None:
        self._source, self._step, self._retry = source, step, retry
        self.trusted: tuple[int, int, int] | None = None
        """(interval, from, to): runs of that interval ending in [from, to] (unix ms)."""
        self.missing: dict[str, int] = {}
        """Pods per namespace a check found unrecorded: the rules are not read any more."""

    def forget(self) -> None:
        self.trusted, self.missing = None, {}

    async def covered(self, run: Run, evaluated: Sequence[int]) -> bool:
        """Whether `run` may be read from the records (`evaluated`: every evaluation ahead)."""
        if self.missing:
            return False
        span = self.trusted
        if span and span[0] == run.interval and span[1] <= run.last <= span[2]:
            return True
        reach = run.last + CHECK_SPACING * 1000
        far = max(t for t in [*evaluated, run.last] if run.last <= t <= reach)
        for at in dict.fromkeys((far, run.last)):  # the run's own if the far hour was idle
            check = await self._check(at, run.interval)
            if check is None:
                return False
            if check.missing:
                self._found(check.missing)
                return False
            if check.checked:
                self.trusted = (run.interval, run.last, at)
                return True
        return True  # no pod Running in either hour: nothing against them, no trust beyond

    async def _check(self, at: int, interval: int) -> Check | None:
        for attempt in range(1, CHECK_ATTEMPTS + 1):
            found = await uncovered(self._source, at, interval, self._step)
            if not isinstance(found, str):
                return found
            then = "tried again" if attempt < CHECK_ATTEMPTS else "read from raw samples"
            log.warning(f"{found} (attempt {attempt} of {CHECK_ATTEMPTS}; {then})")
            if attempt < CHECK_ATTEMPTS:
                await asyncio.sleep(self._retry)
        return None

    def _found(self, missing: dict[str, int]) -> None:
        self.missing = missing
        pods = ", ".join(f"{ns} ({n})" for ns, n in sorted(missing.items()))
        log.warning(
            "the recording rules (costgov:pod_gpu_samples) recorded nothing for GPU pods "
            f"Prometheus shows Running, by namespace: {pods}; past spend is counted from raw "
            "samples (slower, the same dollars) until the operator restarts. Rules the "
            "Prometheus Operator narrows with enforcedNamespaceLabel see their own namespace "
            "only, and rules evaluated where some series are not (another Prometheus, a "
            "shard) miss pods (docs/operator.md, From recording rules)"
        )
