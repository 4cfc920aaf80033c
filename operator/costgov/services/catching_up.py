"""Catching up on past spend in the background, one chunk of history after another.

A window far behind the cycle (a fresh install's month to date, a budget whose Jobs began
weeks ago, an operator that was down for hours) is not counted inside the accounting cycle:
at 10,000 pods Prometheus takes seconds per hour of history. `CatchUp` counts such windows on
a task and query threads of their own, chunk after chunk with no wait between them, and each
cycle reports how far it got (`report`): the resources' cursors move there, their CaughtUp
condition says how much is left, and the cycle's own queries never wait behind a chunk.

Progress is kept per window start, as one running total of every pod's GPU-seconds and
dollars (so memory grows with the pods the history holds, not with its length). When a
cycle reports a window, the point it reached becomes a window of its own, for the resources
that move there; windows that stand at the same point share each chunk. Progress on a
window no resource starts from any more is dropped. A chunk's size adapts
(`planning.next_chunk`): its slowest query aims at half the query timeout; a failed chunk is
tried again at half the size after a pause, and says why in the window's CaughtUp condition.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from costgov.adapters.memory import give_back_memory
from costgov.adapters.prometheus import PrometheusSource
from costgov.domain.catalogs import PriceCatalog
from costgov.domain.spend import combine_costs
from costgov.services import recorded, recorded_check
from costgov.services.accounting import Snapshot, WindowSpend, chunk_spend
from costgov.services.planning import MAX_POINTS, floor_to, next_chunk
from costgov.services.querying import PodKey
from costgov.services.windows import timestamp

__all__ = ["HANDOFF_INTERVALS", "CatchUp", "Progress"]

HANDOFF_INTERVALS = 2
"""A window longer than this many cycle intervals is caught up in the background; a shorter
one is counted by the cycle itself."""
RETRY_SECONDS = 5.0
"""The pause before a failed chunk is tried again (smaller)."""
RAW_AFTER_FAILURE = 86400
"""Seconds of history read from raw samples after the recording rules failed for one
evaluation's hour (a failure an hour, each with its pause, would crawl)."""

log = logging.getLogger("costgov")


@dataclass
class Progress:
    """What has been counted of one window's history so far."""

    start: datetime
    end: datetime
    spend: WindowSpend | None = None
    owners: dict[PodKey, tuple[str, str]] = field(default_factory=dict)
    error: str | None = None


def _weighted(old: WindowSpend, new: WindowSpend) -> dict[PodKey, float]:
    """Each pod's mean GPU utilisation over both stretches, weighted by the GPU-seconds it
    held in each (a pod's idle dollars then come out as over the whole window)."""

    def held(spend: WindowSpend) -> dict[PodKey, float]:
        out: dict[PodKey, float] = {}
        for line in spend.pods:
            out[line.usage.key] = out.get(line.usage.key, 0.0) + float(line.usage.gpu_seconds)
        return out

    a, b = held(old), held(new)
    out = {}
    for key in old.utilization.keys() | new.utilization.keys():
        parts = [
            (spend.utilization[key], weights.get(key, 0.0))
            for spend, weights in ((old, a), (new, b))
            if key in spend.utilization
        ]
        total = sum(w for _, w in parts)
        out[key] = (
            sum(u * w for u, w in parts) / total if total else sum(u for u, _ in parts) / len(parts)
        )
    return out


def extend(
    progress: Progress, chunk: WindowSpend, owners: Mapping[PodKey, tuple[str, str]]
) -> None:
    """Add the chunk that starts where `progress` ends."""
    old = progress.spend
    if old is None:
        progress.spend = dataclasses.replace(chunk, start=progress.start)
    else:
        progress.spend = WindowSpend(
            progress.start,
            chunk.end,
            combine_costs((*old.pods, *chunk.pods)),
            _weighted(old, chunk),
        )
    progress.end, progress.error = chunk.end, None
    progress.owners.update(owners)


class CatchUp:
    """The windows far behind, counted on a task of their own; see the module's doc."""

    def __init__(
        self,
        source: PrometheusSource,
        catalog: PriceCatalog,
        *,
        step: int,
        timeout: float,
        most: int,
        retry: float = RETRY_SECONDS,
    ) -> None:
        self._source, self._catalog, self._retry = source, catalog, retry
        self._step, self._timeout, self._most = step, timeout, most
        self.chunk = min(3600, most)
        self.recorded_chunk = MAX_POINTS * step
        """The most history one chunk read from recording rules counts: 2,880 points (what
        the raw second round asks for at the step), halved after a failure. It is not
        `most`: a chunk of them costs Prometheus a few samples a pod, and every chunk costs
        the operator its pods' lines, so the fewer the better."""
        self.counted = {"recorded": 0, "raw": 0}
        """Seconds of history counted from recording rules and from raw samples."""
        self._run: recorded.Run | None = None
        self._raw = (0, 0)
        """A stretch (unix seconds, from, to) read from raw samples whatever the rules hold:
        a recorded chunk of one evaluation failed there (it can be no smaller), so the
        rules are left alone for RAW_AFTER_FAILURE from it."""
        self.checker = recorded_check.Checker(source, step, retry)
        """Whether the rules saw every pod (services/recorded_check.py)."""
        self._progress: dict[datetime, Progress] = {}
        self._labels: Mapping[str, Mapping[str, str]] = {}
        self._to: datetime | None = None
        """Where the last cycle accounted to: the history is counted up to there."""
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.held = asyncio.Lock()
        """Held by a cycle from reading `owners` to `report`: a chunk that answers meanwhile
        is added after, so the owners a snapshot attributes by always cover the spend it
        reports (a pod known only to that chunk would otherwise count for no budget)."""

    def behind(self, windows: Mapping[str, datetime], at: datetime, interval: int) -> set[str]:
        """The windows (name -> start) too far behind `at` for the cycle to count."""
        to = floor_to(at, self._step)
        return {
            name
            for name, start in windows.items()
            if (to - floor_to(start, self._step)).total_seconds() > HANDOFF_INTERVALS * interval
        }

    def want(
        self, starts: Mapping[str, datetime], to: datetime, labels: Mapping[str, Mapping[str, str]]
    ) -> None:
        """The cycle's windows far behind (name -> start), to be counted up to `to` (the
        cycle's end): counting goes on, or starts; progress on any other window is dropped.
        `labels`: the nodes as the API has them (they win over Prometheus')."""
        keep = set(starts.values())
        self._progress = {s: p for s, p in self._progress.items() if s in keep}
        for start in keep:
            self._progress.setdefault(start, Progress(start, floor_to(start, self._step)))
        self._labels, self._to = labels, to
        idle = self._task is None or self._task.done()
        if keep and idle and not self._closed:
            self._task = asyncio.get_running_loop().create_task(
                self._work(), name="costgov catch-up"
            )

    def owners(self) -> dict[PodKey, tuple[str, str]]:
        """Owners the history counted so far showed (older windows first)."""
        out: dict[PodKey, tuple[str, str]] = {}
        for start in sorted(self._progress):
            out.update(self._progress[start].owners)
        return out

    def report(self, snap: Snapshot, behind: Mapping[str, datetime]) -> Snapshot:
        """`snap` with the windows far behind as far as they are counted; each point
        reached starts a window of its own, for the resources that move there."""
        if snap.error is not None or not behind:
            return snap
        windows, lagging = dict(snap.windows), dict(snap.lagging)
        for name, start in behind.items():
            found = self._progress.get(start)
            if found is not None and found.spend is not None:
                windows[name] = found.spend
                end = found.spend.end
                if snap.accounted_to is not None and end < snap.accounted_to:
                    self._progress.setdefault(end, Progress(end, end))
            if found is None or found.error is not None or found.spend is None:
                lagging[name] = self._why(found, start)
        return dataclasses.replace(snap, windows=windows, lagging=lagging)

    @staticmethod
    def _why(found: Progress | None, start: datetime) -> str:
        if found is not None and found.error is not None:
            return f"counting is tried again in smaller chunks: {found.error}"
        return f"counted in the background from {timestamp(start)}"

    def forget(self) -> None:
        """Drop all progress and stop counting until the next `want` (leadership lost: a
        new leader counts from the cursors in status)."""
        self._raw = (0, 0)
        self.checker.forget()
        if self._task is not None:
            self._task.cancel()
        self._progress, self._to = {}, None

    async def settled(self) -> None:
        """Wait until counting stops (everything wanted is counted, or it was stopped)."""
        if self._task is not None:
            await asyncio.wait([self._task])

    def close(self) -> None:
        """Stop counting (the operator is stopping, or no longer leads)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        self._source.close()

    def _next(self) -> datetime | None:
        """The point to count from next: the least advanced window's end, if behind."""
        if self._to is None:
            return None
        ends = [p.end for p in self._progress.values() if p.end < self._to]
        return min(ends) if ends else None

    async def _work(self) -> None:
        """Chunk after chunk until every window is counted up to now."""
        while not self._closed and (point := self._next()) is not None and self._to:
            try:
                await self._count(point, self._to)
            except Exception:  # a bug must not end the counting for good; logged, retried
                log.exception("catching up on past spend failed")
                await asyncio.sleep(self._retry)

    async def _next_chunk(
        self, point: datetime, to: datetime
    ) -> tuple[tuple[WindowSpend, dict[PodKey, tuple[str, str]]] | str, bool]:
        """The chunk from `point`, and whether it was read from raw samples (True: to be
        sized by `next_chunk`): from the recording rules where they cover it, else from raw
        samples, up to where the rules take over (services/recorded.py)."""
        start, end, step = int(point.timestamp()), int(to.timestamp()), self._step
        ahead: recorded.Run | int | None = None
        if self._raw[0] <= start < self._raw[1]:
            ahead = min(self._raw[1], end)  # a grid time: `end` is `to`, on the grid
        elif self.checker.missing:
            ahead = None  # the rules missed pods: raw samples, as without them
        elif found := await recorded.evaluations(self._source, start, end, step):
            interval, evaluated, seen = found
            ahead = recorded.stretch(
                evaluated, interval, start, end, step, self.recorded_chunk, seen
            )
            if isinstance(ahead, recorded.Run) and not await self.checker.covered(ahead, evaluated):
                ahead = None
        self._run = ahead if isinstance(ahead, recorded.Run) else None
        rules = None if self._run is None else recorded.recorded_plan(start, self._run, step,
                                                                      "history")  # fmt: skip
        if isinstance(ahead, int):
            to = datetime.fromtimestamp(ahead, point.tzinfo)
        spend = await chunk_spend(
            self._source, self._catalog, start=point, to=to, step=step,
            chunk=self.chunk, live_node_labels=self._labels, recorded=rules,
        )  # fmt: skip
        if not isinstance(spend, str):
            kind = "raw" if rules is None else "recorded"
            self.counted[kind] += int((spend[0].end - point).total_seconds())
        return spend, rules is None

    async def _count(self, point: datetime, to: datetime) -> None:
        began = time.monotonic()
        found, raw = await self._next_chunk(point, to)
        took = time.monotonic() - began
        sharing = [p for p in self._progress.values() if p.end == point]
        if isinstance(found, str):
            self._resize(raw, None)
            log.warning(f"past spend from {timestamp(point)}: {found}; retried smaller")
            for p in sharing:
                p.error = found
            await asyncio.sleep(self._retry)
            return
        spend, owners = found
        async with self.held:  # never between a cycle's owners and its report
            for p in [p for p in self._progress.values() if p.end == point]:
                extend(p, spend, owners)
        self._resize(raw, took)
        await asyncio.to_thread(give_back_memory)  # what the chunk's answers took

    def _resize(self, raw: bool, took: float | None) -> None:
        """The next chunk of the kind just counted (`took` None: it failed); after a
        recorded chunk of one evaluation failed, its stretch is read from raw samples."""
        failed, step, timeout = took is None, self._step, self._timeout
        run = self._run
        if failed and not raw and run is not None and run.first == run.last:
            start = (run.first // 1000 - run.interval) // step * step
            self._raw = (start, (start + max(self._most, RAW_AFTER_FAILURE)) // step * step)
        if raw:
            self.chunk = next_chunk(self.chunk, took, failed, timeout=timeout, step=step,
                                    most=self._most)  # fmt: skip
        else:
            self.recorded_chunk = next_chunk(self.recorded_chunk, took, failed, timeout=timeout,
                                             step=step, most=MAX_POINTS * step)  # fmt: skip
