"""The pod follower's streaming list against a real kube-apiserver v1.36.3, under the
chart's RBAC: the fallback when a paged LIST outlasts the apiserver's versions (a 410 on a
continue token), holding one pod in memory at a time instead of every pod's JSON."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from costgov.adapters.kubernetes import KubeClient, KubeError
from costgov.services.podwatch import INITIAL_END, PodFollower, PodStore

from .controlplane import ControlPlane
from .operating import NS, SA, install_chart

SPACE = "listing"


def _pod(name: str, gpus: int) -> dict[str, Any]:
    resources = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": SPACE},
            "spec": {"containers": [{"name": "c", "image": "trainer", "resources": resources}]}}  # fmt: skip


@pytest.fixture(scope="module")
def api(cp: ControlPlane) -> KubeClient:
    install_chart(cp)
    cp.kubectl("create", "namespace", SPACE)
    for name, gpus in (("gpu-0", 1), ("gpu-1", 2), ("gpu-2", 8), ("cpu-0", 0)):
        cp.kubectl("apply", "-f", "-", stdin=json.dumps(_pod(name, gpus)))
    token = cp.kubectl("create", "token", SA, "-n", NS, "--duration=1h").stdout.strip()
    return KubeClient(host=cp.url, token=token, verify_ssl=False)


def test_a_streaming_list_sends_every_pod_then_marks_its_end(api: KubeClient) -> None:
    names, end = [], None
    for event in api.watch_pods("", 30, SPACE, None, initial=True):
        meta = event["object"]["metadata"]
        if event["type"] == "ADDED":
            names.append(meta["name"])
        elif event["type"] == "BOOKMARK" and (meta.get("annotations") or {}).get(INITIAL_END):
            end = meta["resourceVersion"]
            break
    assert sorted(names) == ["cpu-0", "gpu-0", "gpu-1", "gpu-2"] and end


class Expiring:
    """The real client, but every continued page answers as an expired one (410): the
    apiserver's compaction cannot be waited for in a test."""

    def __init__(self, api: KubeClient) -> None:
        self.api, self.lists = api, []  # type: list[tuple[int, str | None]]

    def list_pods_page(self, limit: int, token: str | None, namespace: str | None = None) -> Any:
        self.lists.append((limit, token))
        if token:
            raise KubeError("listing pods: 410 Gone", 410)
        return self.api.list_pods_page(1, None, namespace)  # one pod a page: a continue

    def watch_pods(self, *args: Any, **kwargs: Any) -> Any:
        return self.api.watch_pods(*args, **kwargs)


def test_an_expired_list_is_followed_by_a_streaming_list(api: KubeClient) -> None:
    source = Expiring(api)

    async def follow() -> PodStore:
        store = PodStore()
        store.expect([SPACE])  # as handlers/indexing.py does for watchNamespaces
        follower = PodFollower(source, store, asyncio.get_running_loop(), scope=SPACE)  # type: ignore[arg-type]
        follower.start()
        listed = await store.wait_listed(30)
        follower.stop()
        await asyncio.to_thread(follower.join, 10)
        assert listed, store.problem
        return store

    store = asyncio.run(follow())
    assert [t is None for _, t in source.lists] == [True, False]  # a page, then expired
    assert sorted((r.name, r.gpus) for r in store.records()) == [
        ("gpu-0", 1), ("gpu-1", 2), ("gpu-2", 8)]  # fmt: skip
