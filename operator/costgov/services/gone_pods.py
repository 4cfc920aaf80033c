"""GPU pods deleted in the last minutes, as the pod watch last saw them.

A cycle counts GPU time in windows of the last minutes (at least 5, plus Prometheus'
lookback), so pods deleted since the last cycle are in its answers. Their owner (which
budget pays) is the API's, remembered here, rather than asked of Prometheus by name: after
Job churn that was up to 5 queries a cycle, while Prometheus was busiest (docs/benchmarks.md,
runs S and S2). Pods deleted before the operator started, or forgotten here, are still asked.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from costgov.services.inventory import PodRecord

__all__ = ["KEEP_SECONDS", "MOST", "GonePods"]

KEEP_SECONDS = 900.0
"""How long a deleted pod is kept, at least (services/runtime sets more for long cycles)."""
MOST = 20_000
"""Deleted pods kept at most, the oldest dropped first: memory stays bounded under churn."""


class GonePods:
    """Deleted pods by uid, oldest first; bounded whether or not anyone reads them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._pods: OrderedDict[str, tuple[float, PodRecord]] = OrderedDict()
        self._records: tuple[PodRecord, ...] | None = None
        self.clock = clock
        self.keep = KEEP_SECONDS

    def went(self, uid: str, record: PodRecord) -> None:
        """`record` was deleted now (a watch's DELETED, or missing from a LIST made again)."""
        self._pods.pop(uid, None)
        self._pods[uid] = (self.clock(), record)
        self._records = None
        self._forget()

    def records(self) -> tuple[PodRecord, ...]:
        """The pods deleted in the last `keep` seconds, as last seen, oldest first."""
        self._forget()
        if self._records is None:
            self._records = tuple(record for _, record in self._pods.values())
        return self._records

    def _forget(self) -> None:
        """Drop what is older than `keep` seconds, and the oldest past MOST."""
        cutoff = self.clock() - self.keep
        while self._pods and (
            len(self._pods) > MOST or next(iter(self._pods.values()))[0] < cutoff
        ):
            self._pods.popitem(last=False)
            self._records = None
