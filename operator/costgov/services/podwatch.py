"""The GPU pods the operator knows, listed a page at a time and then watched, outside kopf.

kopf gives every watched object a worker of its own, and at start-up each worker holds its
object until every object of every indexed kind is indexed. At 10,000 pods that held some
400 MB, and pymalloc kept it after start-up: a restarted operator stayed at 550 MiB
(docs/benchmarks.md, "Scale through the apiserver"). Pods are only indexed (no handler acts
on one), so costgov follows them itself: a LIST in pages of PAGE, then a WATCH from the
list's resourceVersion with bookmarks, again from the newest version seen when a watch ends,
and a fresh LIST when the apiserver says that version is gone (410). Only each GPU pod's
record is kept; no page or event outlives its parsing.

The follower runs in a thread (the Kubernetes client blocks) and hands every change to the
event loop, where the store is read and written: a reconcile never sees a half-applied page.
Until the first LIST is complete, reconciles wait (`PodStore.wait_listed`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from costgov.adapters.kubernetes import KubeError
from costgov.services.inventory import PodRecord, pod_record

__all__ = ["PAGE", "PodFollower", "PodSource", "PodStore"]

PAGE = 500
"""Pods per page of the LIST (client-go's pager default)."""
WATCH_SECONDS = 240
"""How long one WATCH request lasts before it is made again from the newest version."""
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds between attempts after a failed LIST or WATCH (the last one repeats)."""

log = logging.getLogger("costgov.pods")


class PodSource(Protocol):
    """What the follower needs of the API (adapters/kubernetes.KubeClient)."""

    def list_pods_page(self, limit: int, token: str | None) -> dict[str, Any]: ...

    def watch_pods(self, version: str, seconds: int) -> Iterable[dict[str, Any]]: ...


class PodStore:
    """GPU pods by uid; written on the event loop only."""

    def __init__(self) -> None:
        self._records: dict[str, PodRecord] = {}
        self._all: tuple[PodRecord, ...] | None = ()
        self._listed = asyncio.Event()
        self.problem: str | None = None
        """Why the pods are not (or no longer) followed, while that lasts."""

    def records(self) -> tuple[PodRecord, ...]:
        if self._all is None:
            self._all = tuple(self._records.values())
        return self._all

    @property
    def listed(self) -> bool:
        return self._listed.is_set()

    async def wait_listed(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._listed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def replace(self, records: Mapping[str, PodRecord]) -> None:
        """A complete LIST: these are all the GPU pods."""
        self._records, self._all, self.problem = dict(records), None, None
        self._listed.set()

    def apply(self, uid: str, record: PodRecord | None) -> None:
        """One watch event: the pod's record now, or None (gone, or no GPU pod)."""
        if record is None:
            if self._records.pop(uid, None) is not None:
                self._all = None
        else:
            self._records[uid] = record
            self._all = None

    def failing(self, problem: str | None) -> None:
        self.problem = problem


def _uid(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


class GoneError(Exception):
    """The apiserver no longer has the version the watch asked to start from (410)."""


class PodFollower:
    """Follows every pod into a PodStore, from a thread; `stop()` ends it."""

    def __init__(
        self,
        source: PodSource,
        store: PodStore,
        loop: asyncio.AbstractEventLoop,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self._source, self._store, self._loop = source, store, loop
        self._stopped = threading.Event()
        self._sleep = sleep or self._stopped.wait
        self._thread = threading.Thread(target=self._run, name="costgov-pods", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed: the operator is gone
            self._stopped.set()

    def _run(self) -> None:
        failures, version = 0, None
        while not self._stopped.is_set():
            try:
                if version is None:
                    version = self._list()
                if version is not None and not self._stopped.is_set():
                    began = time.monotonic()
                    version = self._watch(version)
                    if time.monotonic() - began < 1:  # a watch the server ends at once
                        self._sleep(1.0)
                if failures:
                    self._post(self._store.failing, None)
                failures = 0
            except GoneError:
                version = None
            except Exception as exc:  # logged and shown; tried again after a pause
                if isinstance(exc, KubeError) and exc.status == 410:
                    version = None  # the version is too old to watch from: list again
                    continue
                problem = f"cannot follow pods: {exc}"
                log.error(problem)
                self._post(self._store.failing, problem)
                self._sleep(BACKOFF[min(failures, len(BACKOFF) - 1)])
                failures += 1

    def _list(self) -> str | None:
        """Every pod, a page at a time; the list's resourceVersion (None: stopped)."""
        records: dict[str, PodRecord] = {}
        token: str | None = None
        began, pages = time.monotonic(), 0
        while True:
            page = self._source.list_pods_page(PAGE, token)
            pages += 1
            for item in page.get("items") or ():
                record = pod_record(item)
                if record is not None:
                    records[_uid(item)] = record
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if token is None:
                self._post(self._store.replace, records)
                took = time.monotonic() - began
                log.info(f"{len(records)} GPU pods listed ({pages} pages) in {took:.1f} s")
                return str(meta.get("resourceVersion") or "")
            if self._stopped.is_set():
                return None

    def _watch(self, version: str) -> str:
        for event in self._source.watch_pods(version, WATCH_SECONDS):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise GoneError(str(obj.get("message") or ""))
                raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind in ("ADDED", "MODIFIED"):
                self._post(self._store.apply, _uid(obj), pod_record(obj))
            elif kind == "DELETED":
                self._post(self._store.apply, _uid(obj), None)
            if self._stopped.is_set():
                break
        return version
