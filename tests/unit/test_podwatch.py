"""The pod follower (services/podwatch.py) against a fake apiserver that answers as the
Kubernetes API reference describes lists and watches:

- a LIST with `limit` returns at most that many items and `metadata.continue` (the token for
  the next page, "" on the last) and the list's `metadata.resourceVersion`;
- a WATCH from a resourceVersion streams `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR,
  "object": ...}`; a BOOKMARK object carries only `metadata.resourceVersion`; an ERROR
  carries a Status, code 410 ("Expired"/"Gone") when that version is too old, after which a
  client lists again.

Pods are written as kube-apiserver returns them (abridged): the GPU pods request
`nvidia.com/gpu`, the CPU pod does not and is not kept.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from costgov.adapters.kubernetes import KubeError
from costgov.services.podwatch import PodFollower, PodStore


def pod(name: str, gpus: int, phase: str = "Running", rv: str = "1") -> dict[str, Any]:
    resources = {"requests": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    return {
        "metadata": {
            "name": name,
            "namespace": "ml",
            "uid": f"uid-{name}",
            "resourceVersion": rv,
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": "train", "uid": "job-uid",
                 "controller": True},
            ],
        },
        "spec": {"nodeName": "gpu-1", "containers": [{"name": "t", "resources": resources}]},
        "status": {"phase": phase},
    }  # fmt: skip


class FakeApi:
    """Pods in pages; watches scripted one per call; errors raised where scripted."""

    def __init__(self, pods: list[dict[str, Any]], watches: list[list[dict[str, Any]]]) -> None:
        self.pods, self.watches = pods, watches
        self.lists: list[tuple[int, str | None]] = []
        self.watched_from: list[str] = []
        self.list_errors: list[Exception] = []
        self.stream: list[dict[str, Any]] | Exception = []
        """What a streaming list (a watch with initial events) answers."""
        self.fail_at: dict[int, Exception] = {}
        """An error for the n-th LIST request (from 0)."""
        self.follower: PodFollower | None = None

    def list_pods_page(
        self, limit: int, token: str | None, namespace: str | None = None
    ) -> dict[str, Any]:
        assert namespace is None  # cluster-wide
        self.lists.append((limit, token))
        if self.list_errors:
            raise self.list_errors.pop(0)
        if len(self.lists) - 1 in self.fail_at:
            raise self.fail_at[len(self.lists) - 1]
        start, limit = int(token or 0), limit or len(self.pods)  # limit 0: no limit
        page = self.pods[start : start + limit]
        more = start + limit < len(self.pods)
        meta = {"resourceVersion": "100", "continue": str(start + limit) if more else ""}
        return {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": page}

    def watch_pods(
        self,
        version: str,
        seconds: int,
        namespace: str | None = None,
        opened: Any = None,
        initial: bool = False,
    ) -> Iterator[dict[str, Any]]:
        if initial:  # a streaming list: scripted, or refused as without WatchList
            self.watched_from.append("initial")
            if isinstance(self.stream, Exception):
                raise self.stream
            yield from self.stream
            return
        self.watched_from.append(version)
        if not self.watches:
            assert self.follower is not None
            self.follower.stop()
            return
        yield from self.watches.pop(0)


def _follow(
    api: FakeApi, page: int = 2, report: Callable[[PodStore, int], None] | None = None
) -> PodStore:
    async def run() -> PodStore:
        store = PodStore()
        if report is not None:
            store.report = lambda failing: report(store, failing)
        follower = PodFollower(api, store, asyncio.get_running_loop(), sleep=lambda _: False)
        api.follower = follower
        done = threading.Event()

        def run_then_say() -> None:
            follower._run()
            done.set()

        follower._thread = threading.Thread(target=run_then_say)
        follower.start()
        while not done.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the callbacks the thread posted last
        return store

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("costgov.services.podwatch.PAGE", page)
        return asyncio.run(run())


def test_lists_every_page_and_keeps_gpu_pods_only() -> None:
    pods = [pod("a", 1), pod("b", 8), pod("cpu", 0), pod("c", 2), pod("d", 1)]
    api = FakeApi(pods, [])
    store = _follow(api)
    assert api.lists == [(2, None), (2, "2"), (2, "4")]  # 5 pods in pages of 2
    assert store.listed and store.problem is None
    assert sorted((r.name, int(r.gpus)) for r in store.records()) == [
        ("a", 1), ("b", 8), ("c", 2), ("d", 1),
    ]  # fmt: skip
    assert api.watched_from == ["100"]  # from the list's resourceVersion


def test_follows_events_and_resumes_from_the_newest_version() -> None:
    watch = [
        {"type": "ADDED", "object": pod("e", 4, "Pending", rv="101")},
        {"type": "MODIFIED", "object": pod("a", 1, "Succeeded", rv="102")},
        {"type": "DELETED", "object": pod("b", 8, rv="103")},
        {"type": "ADDED", "object": pod("cpu2", 0, rv="104")},
        {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "150"}}},
    ]
    api = FakeApi([pod("a", 1), pod("b", 8)], [watch])
    store = _follow(api)
    found = {r.name: (int(r.gpus), r.phase) for r in store.records()}
    assert found == {"a": (1, "Succeeded"), "e": (4, "Pending")}
    # b's DELETED: kept apart, as last seen, for its owner (the Job its GPU time is for)
    assert [(r.name, r.owner_job) for r in store.gone.records()] == [("b", "train")]
    assert api.watched_from == ["100", "150"]  # the bookmark's version, not a re-list
    assert len(api.lists) == 1


def test_a_gone_version_lists_again_and_replaces_everything() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                        "message": "too old resource version: 100 (300)"}}  # fmt: skip
    api = FakeApi([pod("a", 1), pod("b", 8)], [[gone]])
    api_pods_after = [pod("b", 8), pod("z", 2)]

    def relisted(limit: int, token: str | None, namespace: str | None = None) -> dict[str, Any]:
        api.pods = api_pods_after if api.lists else api.pods
        return FakeApi.list_pods_page(api, limit, token)

    api.list_pods_page = relisted  # type: ignore[method-assign]
    store = _follow(api)
    assert sorted(r.name for r in store.records()) == ["b", "z"]  # "a" went while unwatched
    assert [r.name for r in store.gone.records()] == ["a"]
    assert [t for _, t in api.lists] == [None, None]  # each list one page of 2
    assert api.watched_from == ["100", "100"]


def test_a_refused_list_is_shown_then_cleared_once_it_works() -> None:
    api = FakeApi([pod("a", 1)], [])
    api.list_errors = [KubeError("listing pods: 403 Forbidden", 403)]
    reported: list[tuple[int, str | None]] = []
    store = _follow(api, report=lambda s, failing: reported.append((failing, s.problem)))
    # the failing scopes, as costgov_pod_follow_failing shows them: one, then none
    assert reported[0] == (1, "cannot follow pods: listing pods: 403 Forbidden")
    assert reported[-1] == (0, None) and {n for n, _ in reported} == {0, 1}
    assert store.listed and store.problem is None
    assert [r.name for r in store.records()] == ["a"]


def test_an_unlisted_store_is_not_taken_for_an_empty_cluster() -> None:
    async def run() -> tuple[bool, bool]:
        store = PodStore()
        before = await store.wait_listed(0.01)
        store.replace({})
        return before, await store.wait_listed(0.01)

    assert asyncio.run(run()) == (False, True)


class _DroppedError(ConnectionError):
    pass


def test_a_watch_cut_off_resumes_from_the_last_version_it_saw() -> None:
    def cut(events: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        yield from events
        raise _DroppedError("Response ended prematurely")

    api = FakeApi([pod("a", 1)], [])
    first = [
        {"type": "ADDED", "object": pod("b", 2, rv="150")},
        {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "200"}}},
    ]
    scripted = iter([cut(first)])

    def watch(version: str, seconds: int, namespace: str | None = None, opened: Any = None):  # type: ignore[no-untyped-def]
        api.watched_from.append(version)
        nxt = next(scripted, None)
        if nxt is None:
            assert api.follower is not None
            api.follower.stop()
            return iter(())
        return nxt

    api.watch_pods = watch  # type: ignore[method-assign]
    store = _follow(api)
    assert api.watched_from == ["100", "200"]  # not "100" again, and no second LIST
    assert len(api.lists) == 1 and store.problem is None  # a cut is not a failure
    assert sorted(r.name for r in store.records()) == ["a", "b"]


def test_a_version_gone_again_and_again_is_listed_for_with_growing_pauses() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
    api = FakeApi([pod("a", 1)], [[gone] for _ in range(4)])
    pauses: list[float] = []

    async def run() -> None:
        store = PodStore()

        def pause(seconds: float) -> bool:
            pauses.append(seconds)
            return False

        follower = PodFollower(api, store, asyncio.get_running_loop(), sleep=pause)
        api.follower = follower
        await asyncio.to_thread(follower._run)

    asyncio.run(run())
    assert len(api.lists) == 5  # the first list, and one after each of the four 410s
    # never back to back: 1, 2, 5, 10 s before the lists; then 1 s after the last watch,
    # which the fake ends at once (as a server that closes every watch would)
    assert pauses == [1.0, 2.0, 5.0, 10.0, 1.0]


def test_a_pod_costgov_cannot_read_is_left_out_and_the_rest_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from costgov.services import podwatch

    real = podwatch.pod_record  # type: ignore[attr-defined]

    def fussy(obj: Any) -> Any:
        if obj["metadata"]["name"] == "odd":
            raise ValueError("unexpected shape")
        return real(obj)

    monkeypatch.setattr(podwatch, "pod_record", fussy)
    store = _follow(FakeApi([pod("a", 1), pod("odd", 1), pod("c", 2)], []))
    assert sorted(r.name for r in store.records()) == ["a", "c"]


def test_namespaces_are_followed_as_kopf_watches_them() -> None:
    from costgov.handlers.indexing import _pod_scopes

    assert _pod_scopes([]) == ([None], None)
    assert _pod_scopes(["ml", "serving"]) == (["ml", "serving"], None)  # one watch each
    scopes, keep = _pod_scopes(["team-*, !team-x", "ml"])
    assert scopes == [None] and keep is not None  # a pattern: cluster-wide, filtered
    assert [ns for ns in ("team-a", "team-x", "ml", "other") if keep(ns)] == ["team-a", "ml"]


def test_over_http_lines_split_anywhere_and_stop_ends_a_silent_watch() -> None:
    """The real client against a loopback server speaking the watch protocol: chunked
    transfer, one JSON event per line; the ADDED event is cut inside a two-byte character
    and then the watch goes silent, as a quiet cluster's does, until stop() cuts it."""
    import http.server
    import json
    import time

    from costgov.adapters.kubernetes import KubeClient

    labelled = pod("b", 2, rv="101")
    labelled["metadata"]["labels"] = {"owner": "zoë"}
    added = {"type": "ADDED", "object": labelled}
    line = json.dumps(added, ensure_ascii=False).encode() + b"\n"
    cut = line.index("ë".encode()) + 1  # between the two bytes of "ë"
    release = threading.Event()

    class Server(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:
            if "watch=true" not in self.path:
                body = json.dumps(
                    {
                        "kind": "PodList",
                        "metadata": {"resourceVersion": "100", "continue": ""},
                        "items": [pod("a", 1)],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (line[:cut], line[cut:]):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.flush()
                time.sleep(0.05)
            release.wait(30)  # silent, as a watch with nothing to say

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Server)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{server.server_address[1]}"

    async def run() -> tuple[list[tuple[str, str]], float, bool]:
        store = PodStore()
        follower = PodFollower(KubeClient(host=host), store, asyncio.get_running_loop())
        follower.start()
        assert await store.wait_listed(10)
        for _ in range(100):
            if len(store.records()) == 2:
                break
            await asyncio.sleep(0.05)
        began = time.monotonic()
        follower.stop()
        await asyncio.to_thread(follower.join, 10)
        found = sorted((r.name, r.labels.get("owner", "")) for r in store.records())
        return found, time.monotonic() - began, follower._thread.is_alive()

    try:
        found, took, alive = asyncio.run(run())
    finally:
        release.set()
        server.shutdown()
    assert found == [("a", ""), ("b", "zoë")]
    assert not alive and took < 3  # not the watch's 240 s, nor the server's 30


def _run_with_pauses(api: FakeApi, stop_on_pause: bool = False) -> tuple[PodStore, list[float]]:
    pauses: list[float] = []

    async def run() -> PodStore:
        store = PodStore()

        def pause(seconds: float) -> bool:
            pauses.append(seconds)
            if stop_on_pause:
                follower.stop()
            return stop_on_pause

        follower = PodFollower(api, store, asyncio.get_running_loop(), sleep=pause)
        api.follower = follower
        await asyncio.to_thread(follower._run)
        await asyncio.sleep(0.05)
        return store

    return asyncio.run(run()), pauses


def test_failed_lists_are_retried_after_growing_pauses_once_each() -> None:
    api = FakeApi([pod("a", 1)], [])
    api.list_errors = [KubeError("listing pods: 503 Service Unavailable", 503)] * 3
    store, pauses = _run_with_pauses(api)
    assert len(api.lists) == 4  # three refused, the fourth answered
    assert pauses == [1.0, 2.0, 5.0, 1.0]  # one pause per refusal (then the empty watch's)
    assert store.listed and store.problem is None


def test_a_stop_during_a_pause_sends_no_more_requests() -> None:
    api = FakeApi([pod("a", 1)], [])
    api.list_errors = [KubeError("listing pods: 403 Forbidden", 403)] * 5
    store, pauses = _run_with_pauses(api, stop_on_pause=True)
    assert len(api.lists) == 1 and pauses == [1.0]
    assert not store.listed and store.problem == "cannot follow pods: listing pods: 403 Forbidden"


def test_each_namespace_keeps_its_own_problem() -> None:
    async def run() -> tuple[str | None, bool, str | None]:
        store = PodStore()
        store.expect(["ml", "serving"])
        store.failing("cannot follow pods in ml: listing pods in ml: 403 Forbidden", "ml")
        store.replace({}, "serving")  # serving listed: ml's problem stays, nothing listed
        before = store.problem
        listed = store.listed
        store.replace({}, "ml")
        return before, listed, store.problem

    assert asyncio.run(run()) == (
        "cannot follow pods in ml: listing pods in ml: 403 Forbidden", False, None,
    )  # fmt: skip


def _stream(pods: list[dict[str, Any]], version: str) -> list[dict[str, Any]]:
    """A streaming list as kube-apiserver v1.36.3 answers it (sendInitialEvents=true):
    every pod ADDED, then a BOOKMARK annotated k8s.io/initial-events-end (seen on the
    real apiserver: ADDED p0 192, p1 193, p2 194, BOOKMARK 194)."""
    end = {"kind": "Pod", "apiVersion": "v1", "metadata": {
        "resourceVersion": version, "annotations": {"k8s.io/initial-events-end": "true"}}}  # fmt: skip
    return [*({"type": "ADDED", "object": p} for p in pods), {"type": "BOOKMARK", "object": end}]


def test_an_expired_continue_token_lists_again_as_a_stream() -> None:
    """Paging 10,000s of pods through a loaded apiserver can outlast its watch cache: the
    next page answers 410 (reason Expired). Listing again in pages would expire again; one
    LIST of everything holds every pod's JSON at once (341 MiB to parse 10,000, found by
    review). A streaming list holds one pod at a time."""
    pods = [pod(f"p{i}", 1) for i in range(5)]
    api = FakeApi(pods, [])
    api.fail_at = {1: KubeError("listing pods: 410 Gone", 410)}  # the continue is too old
    api.stream = _stream([*pods, pod("cpu-only", 0)], "150")
    store = _follow(api)
    assert api.lists == [(2, None), (2, "2")]  # no unpaged LIST
    assert sorted(r.name for r in store.records()) == [f"p{i}" for i in range(5)]
    assert store.listed and store.problem is None
    assert api.watched_from == ["initial", "150"]  # then watched from the stream's end


def test_without_watchlist_an_expired_list_is_made_in_one_request() -> None:
    api = FakeApi([pod(f"p{i}", 1) for i in range(5)], [])
    api.fail_at = {1: KubeError("listing pods: 410 Gone", 410)}
    # an apiserver with the WatchList feature off refuses sendInitialEvents
    api.stream = KubeError("watching pods: 422 Unprocessable Entity", 422)
    store = _follow(api)
    assert api.lists == [(2, None), (2, "2"), (0, None)]  # client-go's fallback
    assert sorted(r.name for r in store.records()) == [f"p{i}" for i in range(5)]
    assert api.watched_from == ["initial", "100"]


def test_a_first_page_gone_is_listed_again_in_pages() -> None:
    api = FakeApi([pod(f"p{i}", 1) for i in range(3)], [])
    api.fail_at = {0: KubeError("listing pods: 410 Gone", 410)}
    store = _follow(api)
    assert api.lists[:2] == [(2, None), (2, None)]  # no token to have expired: as before
    assert sorted(r.name for r in store.records()) == ["p0", "p1", "p2"]


def test_a_watch_answering_only_errors_is_shown_and_paced() -> None:
    """Found by review: an ERROR event (a Status 500: etcd timed out) counted as progress,
    so a watch answering nothing else was retried at once, forever, and never shown."""
    error = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
             "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500}}  # fmt: skip
    api = FakeApi([pod("a", 1)], [[error] for _ in range(6)])
    pauses: list[float] = []
    reported: list[tuple[int, str | None]] = []

    async def run() -> PodStore:
        store = PodStore()
        store.report = lambda failing: reported.append((failing, store.problem))
        follower = PodFollower(api, store, asyncio.get_running_loop(),
                               sleep=lambda s: bool(pauses.append(s)))  # fmt: skip
        api.follower = follower
        await asyncio.to_thread(follower._run)
        await asyncio.sleep(0.05)  # the callbacks the thread posted last
        return store

    asyncio.run(run())
    assert (1, "cannot follow pods: watch error 500: InternalError") in reported
    assert pauses[:6] == [1.0, 2.0, 5.0, 10.0, 30.0, 30.0]  # growing, as for a failed LIST
    assert "etcdserver" not in str(reported)  # the apiserver's words stay in the log


def test_a_transport_error_is_shown_without_its_url() -> None:
    """Found by review: urllib3 names the URL, and a continue token in it decodes to another
    namespace's pod; status shows the error's kind, the log the whole of it."""
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    url = "/api/v1/pods?continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJzdGFydCI6InRlYW0tc2VjcmV0L3AifQ&limit=500"
    api = FakeApi([pod("a", 1)], [])
    api.list_errors = [MaxRetryError(None, url, NewConnectionError(None, "refused"))]  # type: ignore[arg-type]
    reported: list[str | None] = []
    _follow(api, report=lambda s, failing: reported.append(s.problem))
    assert reported[0] == "cannot follow pods: MaxRetryError"


def test_a_watch_answering_events_again_is_shown_as_followed_at_its_first_event() -> None:
    """Found by a second review: after an ERROR, the problem stayed shown until the next
    watch ended (up to 240 s), though that watch delivered events all along."""
    error = {"type": "ERROR", "object": {"kind": "Status", "code": 500, "reason": "InternalError"}}
    added = {"type": "ADDED", "object": pod("b", 2, rv="101")}
    api = FakeApi([pod("a", 1)], [[error], [added]])
    seen: list[tuple[int, int]] = []  # (failing scopes, GPU pods known) at each report
    store = _follow(api, report=lambda s, failing: seen.append((failing, len(s.records()))))
    assert seen[-2:] == [(1, 1), (0, 1)]  # followed again before pod b is applied
    assert sorted(r.name for r in store.records()) == ["a", "b"]


def test_a_stream_cut_before_its_end_is_a_failure_not_an_unpaged_list() -> None:
    """Found by a second review: a streaming list ended early fell back to the unpaged
    LIST it is there to avoid. It is a failure: shown, paused, listed again in pages."""
    pods = [pod(f"p{i}", 1) for i in range(3)]
    api = FakeApi(pods, [])
    api.fail_at = {1: KubeError("listing pods: 410 Gone", 410)}
    api.stream = _stream(pods, "150")[:2]  # two pods, then the apiserver's timeout
    problems: list[str | None] = []
    store = _follow(api, report=lambda s, failing: problems.append(s.problem))
    assert (0, None) not in api.lists
    assert api.lists[2:] == [(2, None), (2, "2")]  # listed again in pages, after a pause
    assert problems[0] == "cannot follow pods: the pod list as a stream ended after 2 GPU pods"
    assert store.listed and store.problem is None
