"""The GPU pods the operator knows, listed a page at a time and then watched, outside kopf.

kopf gives every watched object a worker of its own, and at start-up each worker holds its
object until every object of every indexed kind is indexed. At 10,000 pods that held some
400 MB, and pymalloc kept it after start-up: a restarted operator stayed at 550 MiB
(docs/benchmarks.md, "Scale through the apiserver"). Pods are only indexed (no handler acts
on one), so costgov follows them itself: a LIST in pages of PAGE, then a WATCH from the
list's resourceVersion with bookmarks, again from the newest version seen when a watch ends,
and a fresh LIST when the apiserver says that version is gone (410). A LIST whose pages took
longer than the apiserver keeps versions (its continue token expired) is made again as a
streaming list (a watch sending every pod, then a bookmark: one pod in memory at a time),
or, where the apiserver has no WatchList, in one request, as client-go's pager does. Only each GPU pod's
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
from costgov.services.gone_pods import GonePods
from costgov.services.inventory import PodRecord, pod_record

__all__ = ["PAGE", "PodFollower", "PodSource", "PodStore"]

PAGE = 500
"""Pods per page of the LIST (client-go's pager default)."""
WATCH_SECONDS = 240
"""How long one WATCH request lasts before it is made again from the newest version."""
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
STREAM_SECONDS = 3600
"""How long a streaming list may take: it replaces a paged LIST that took longer than the
apiserver keeps versions (about 5 minutes), so it gets far longer than a watch."""
INITIAL_END = "k8s.io/initial-events-end"
"""The annotation on the bookmark that ends a streaming list's initial events."""
"""Seconds between attempts after a failed LIST or WATCH (the last one repeats)."""

log = logging.getLogger("costgov.pods")


class PodSource(Protocol):
    """What the follower needs of the API (adapters/kubernetes.KubeClient)."""

    def list_pods_page(
        self, limit: int, token: str | None, namespace: str | None = None
    ) -> dict[str, Any]: ...

    def watch_pods(
        self,
        version: str,
        seconds: int,
        namespace: str | None = None,
        opened: Callable[[Any], None] | None = None,
        initial: bool = False,
    ) -> Iterable[dict[str, Any]]: ...


Scope = str | None
"""What one follower lists and watches: a namespace, or None for the whole cluster."""


class PodStore:
    """GPU pods by scope and uid; written on the event loop only."""

    def __init__(self) -> None:
        self._parts: dict[Scope, dict[str, PodRecord]] = {}
        self._expected: set[Scope] = {None}
        self._all: tuple[PodRecord, ...] | None = ()
        self._listed = asyncio.Event()
        self._problems: dict[Scope, str] = {}
        self.gone = GonePods()
        """GPU pods deleted in the last minutes (services/gone_pods.py)."""
        self.report: Callable[[int], None] = lambda failing: None
        """Told how many scopes fail to be followed, whenever that may have changed."""

    def expect(self, scopes: Iterable[Scope]) -> None:
        """The scopes that must each be listed before the store is complete."""
        self._expected = set(scopes)

    def records(self) -> tuple[PodRecord, ...]:
        if self._all is None:
            self._all = tuple(r for part in self._parts.values() for r in part.values())
        return self._all

    @property
    def problem(self) -> str | None:
        """Why pods are not (or no longer) followed, in every scope where that lasts."""
        return "; ".join(self._problems.values()) or None

    @property
    def problems(self) -> dict[Scope, str]:
        """The same, by scope (a namespace, or None for the whole cluster)."""
        return dict(self._problems)

    @property
    def listed(self) -> bool:
        return self._listed.is_set()

    async def wait_listed(self, timeout: float) -> bool:
        try:  # not wait_for: on 3.11 it can lose a cancellation (see services.leadership)
            async with asyncio.timeout(timeout):
                await self._listed.wait()
        except TimeoutError:
            return False
        return True

    def replace(self, records: Mapping[str, PodRecord], scope: Scope = None) -> None:
        """A complete LIST of one scope: these are all its GPU pods (those it no longer
        has went while the watch was down)."""
        for uid, record in self._parts.get(scope, {}).items():
            if uid not in records:
                self.gone.went(uid, record)
        self._parts[scope], self._all = dict(records), None
        self.failing(None, scope)
        if self._expected <= set(self._parts):
            self._listed.set()

    def apply(self, uid: str, record: PodRecord | None, scope: Scope = None) -> None:
        """One watch event: the pod's record now, or None (gone, or no GPU pod)."""
        part = self._parts.setdefault(scope, {})
        if record is None:
            if (went := part.pop(uid, None)) is not None:
                self.gone.went(uid, went)
                self._all = None
        else:
            part[uid] = record
            self._all = None

    def failing(self, problem: str | None, scope: Scope = None) -> None:
        if problem is None:
            self._problems.pop(scope, None)
        else:
            self._problems[scope] = problem
        self.report(len(self._problems))


def _uid(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


def _record(obj: Mapping[str, Any]) -> PodRecord | None:
    """The pod's record; a pod costgov cannot read is logged and left out, never stopping
    the others (as a failing kopf index handler skipped one object)."""
    try:
        return pod_record(obj)
    except Exception as exc:  # logged: one odd pod must not stall every pod
        meta = obj.get("metadata") or {}
        log.warning(f"pod {meta.get('namespace')}/{meta.get('name')} left out: {exc!r}")
        return None


class GoneError(Exception):
    """The apiserver no longer has the version the watch asked to start from (410)."""


class WatchError(Exception):
    """The watch answered an ERROR event (its code and reason, fit to show in status)."""


class PodFollower:
    """Follows the pods of one scope into a PodStore, from a thread; `stop()` ends it."""

    def __init__(
        self,
        source: PodSource,
        store: PodStore,
        loop: asyncio.AbstractEventLoop,
        *,
        scope: Scope = None,
        keep: Callable[[str], bool] | None = None,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self._source, self._store, self._loop = source, store, loop
        self._scope, self._keep = scope, keep
        self._stopped = threading.Event()
        self._sleep = sleep or self._stopped.wait
        self._version: str | None = None
        self._seen = 0
        """Events the watch in progress delivered."""
        self._failures = 0
        """Failed attempts in a row (the pause before the next grows with them)."""
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name="costgov-pods", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the follower: a watch in progress is shut down, not waited out."""
        self._stopped.set()
        response = self._response
        if response is not None:
            for method in ("shutdown", "close"):
                try:
                    getattr(response, method)()
                    break
                except Exception:  # an older urllib3: close it instead
                    continue

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed: the operator is gone
            self._stopped.set()

    def _opened(self, response: Any) -> None:
        self._response = response
        if self._stopped.is_set():
            self.stop()

    def _run(self) -> None:
        gone, listed_at = 0, -1e9
        while not self._stopped.is_set():
            self._seen = 0
            try:
                if self._version is None:
                    self._version = self._list()
                    listed_at = time.monotonic()
                    self._failures = 0  # listed: the store cleared the problem itself
                if self._version is not None and not self._stopped.is_set():
                    self._follow()
                    self._recovered()  # a watch that ended as watches do: all is well
            except Exception as exc:  # logged and shown; tried again after a pause
                if self._stopped.is_set():
                    return
                if isinstance(exc, GoneError) or (isinstance(exc, KubeError) and exc.status == 410):
                    self._version = None  # too old to list on or watch from: list again,
                    soon = time.monotonic() - listed_at < BACKOFF[-1]
                    gone = gone + 1 if soon else 0  # after a pause if that keeps happening
                    if gone and self._sleep(BACKOFF[min(gone - 1, len(BACKOFF) - 1)]):
                        return
                    continue
                if self._seen:  # cut off after some events: resume from the last at once
                    log.info(f"pod watch cut off ({exc}); resuming at {self._version}")
                    self._recovered()
                    continue
                # an HTTP error's words only: a transport error names the URL, and with it a
                # continue token that decodes to another namespace's pod
                shown = exc if isinstance(exc, (KubeError, WatchError)) else type(exc).__name__
                problem = f"cannot follow pods{self._where}: {shown}"
                log.error(f"cannot follow pods{self._where}: {exc}")
                self._post(self._store.failing, problem, self._scope)
                if self._sleep(BACKOFF[min(self._failures, len(BACKOFF) - 1)]):
                    return
                self._failures += 1

    def _recovered(self) -> None:
        """Pods are followed again: the problem shown goes, the pauses start over."""
        if self._failures:
            self._post(self._store.failing, None, self._scope)
        self._failures = 0

    @property
    def _where(self) -> str:
        return f" in {self._scope}" if self._scope else ""

    def _follow(self) -> None:
        began = time.monotonic()
        self._watch()
        if time.monotonic() - began < 1:  # a watch the server ends at once
            self._sleep(1.0)

    def _kept(self, obj: Mapping[str, Any]) -> bool:
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        return self._keep is None or self._keep(namespace)

    def _list(self) -> str | None:
        """Every pod of the scope, a page at a time (as a stream if a page's continue token
        expired); the list's resourceVersion (None: stopped)."""
        records: dict[str, PodRecord] = {}
        token: str | None = None
        began, pages = time.monotonic(), 0
        while True:
            try:
                page = self._source.list_pods_page(PAGE, token, self._scope)
            except KubeError as exc:
                if exc.status != 410 or token is None:
                    raise
                # the pages took longer than the apiserver keeps versions (about 5 minutes):
                # listing again in pages would expire again
                log.warning(f"pod list{self._where} expired after {pages} pages ({exc}); "
                            "listing again as a stream")  # fmt: skip
                return self._stream_list()
            pages += 1
            for item in page.get("items") or ():
                if (record := self._kept_record(item)) is not None:
                    records[_uid(item)] = record
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if token is None:
                self._post(self._store.replace, records, self._scope)
                took = time.monotonic() - began
                log.info(
                    f"{len(records)} GPU pods listed{self._where} ({pages} pages) in {took:.1f} s"
                )
                return str(meta.get("resourceVersion") or "")
            if self._stopped.is_set():
                return None

    def _stream_list(self) -> str | None:
        """Every pod of the scope as a streaming list (a watch sending every pod, then a
        bookmark marking the end: one pod in memory at a time, no continue token to
        expire); where the apiserver refuses that, one LIST of everything, as client-go's
        pager does (the whole answer in memory at once). The version to watch from."""
        records: dict[str, PodRecord] = {}
        began = time.monotonic()
        try:
            events = self._source.watch_pods("", STREAM_SECONDS, self._scope, self._opened, True)
            for event in events:
                kind, obj = event.get("type"), event.get("object") or {}
                meta = obj.get("metadata") or {}
                if kind == "ADDED" and (record := self._kept_record(obj)) is not None:
                    records[_uid(obj)] = record
                elif kind == "BOOKMARK" and (meta.get("annotations") or {}).get(INITIAL_END):
                    self._post(self._store.replace, records, self._scope)
                    took = time.monotonic() - began
                    log.info(f"{len(records)} GPU pods listed{self._where} as a stream in "
                             f"{took:.1f} s")  # fmt: skip
                    return str(meta.get("resourceVersion") or "")
                elif kind == "ERROR":
                    raise WatchError(f"watch error {obj.get('code')}: {obj.get('reason')}")
                if self._stopped.is_set():
                    return None
            # cut before its end: a failure (shown, paused, listed again in pages); never
            # the unpaged LIST this stream is there to avoid
            raise WatchError(f"the pod list as a stream ended after {len(records)} GPU pods")
        except KubeError as exc:  # refused: no WatchList here, so everything at once
            log.warning(f"pod list{self._where} as a stream refused ({exc}); one LIST instead")
        page = self._source.list_pods_page(0, None, self._scope)
        records = {_uid(i): r for i in page.get("items") or () if (r := self._kept_record(i))}
        self._post(self._store.replace, records, self._scope)
        return str((page.get("metadata") or {}).get("resourceVersion") or "")

    def _kept_record(self, obj: Mapping[str, Any]) -> PodRecord | None:
        return _record(obj) if self._kept(obj) else None

    def _watch(self) -> None:
        """Events from the newest version seen, which every event and bookmark moves on
        (a watch cut off mid-way resumes where it was, not where it started)."""
        self._seen = 0
        events = self._source.watch_pods(
            self._version or "", WATCH_SECONDS, self._scope, self._opened
        )
        for event in events:
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":  # not progress: an ERROR answered again and again must
                if obj.get("code") == 410:  # show, and pause, as a failure
                    raise GoneError(str(obj.get("message") or ""))
                log.warning(f"pod watch{self._where} answered: {obj.get('message')}")
                raise WatchError(f"watch error {obj.get('code')}: {obj.get('reason')}")
            self._seen += 1
            if self._seen == 1:  # a watch answering events: followed again, at once (not
                self._recovered()  # only when it ends, up to WATCH_SECONDS later)
            self._version = str((obj.get("metadata") or {}).get("resourceVersion") or self._version)
            if kind in ("ADDED", "MODIFIED") and self._kept(obj):
                self._post(self._store.apply, _uid(obj), _record(obj), self._scope)
            elif kind == "DELETED":
                self._post(self._store.apply, _uid(obj), None, self._scope)
            if self._stopped.is_set():
                return
