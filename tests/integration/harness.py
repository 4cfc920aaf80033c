"""The operator really running: kopf against the kmock Kubernetes emulator, a real Prometheus.

kmock serves a Kubernetes-like API over real HTTP on loopback; every resource kopf looks for
is declared. It merges patches as plain dicts and has no webhooks of its own: admission is
tested by posting AdmissionReview JSON to the operator's webhook server directly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import aiohttp.web
import jsonpatch
import kmock
import kopf

from costgov.adapters.kubernetes import KubeClient
from costgov.handlers.registry import build_registry
from costgov.handlers.running import configure, make_runtime
from costgov.services.runtime import Runtime
from costgov.settings import Settings

from .prom import free_port


def _patch_kmock_namespaces() -> None:
    """kmock 0.8 parses /api/v1/namespaces[/NAME] as a namespaced path and fails; teach it
    that Namespaces are themselves a cluster-scoped resource (a limitation of the emulator)."""
    from kmock._internal import parsing

    original = parsing.parse_path
    if getattr(original, "_costgov", False):
        return

    def parse_path(path: str) -> Any:
        parts = path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) in (3, 4):
            return parsing.ParsedPath(
                "", "v1", "namespaces", None, parts[3] if len(parts) == 4 else None, None
            )
        return original(path)

    parse_path._costgov = True  # type: ignore[attr-defined]
    parsing.parse_path = parse_path


def caught_up(status: dict[str, Any]) -> bool:
    """Whether a budget's or policy's figures are current: measured, and no longer catching
    up on past spend a chunk at a time (the CaughtUp condition)."""
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return "spent" in status and conditions.get("CaughtUp") == "True"


class Emulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock with `metadata.generateName` (kopf names its Events that way) and a
    resourceVersion that changes on every write, as watchers expect."""

    _counter = 0

    async def _handle(self, request: Any) -> Any:
        data = request.data
        if isinstance(data, dict) and request.method in ("POST", "PATCH", "PUT"):
            Emulator._counter += 1
            meta = data.setdefault("metadata", {})
            if request.method == "POST" and not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{Emulator._counter:05d}"
            meta["resourceVersion"] = str(Emulator._counter)
        try:
            return await super()._handle(request)
        except jsonpatch.JsonPatchTestFailed as exc:
            # kube-apiserver answers a failed JSON-patch `test` (kopf tests resourceVersion)
            # with 422 and kopf re-applies on its next cycle; kmock would answer 500, which
            # kopf retries with seconds of backoff (a flaky-test source under load)
            return aiohttp.web.json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "Invalid",
                    "code": 422,
                    "message": str(exc),
                },
                status=422,
            )


RESOURCES = {
    "apiextensions.k8s.io/v1/customresourcedefinitions": ("CustomResourceDefinition", False, ()),
    "v1/namespaces": ("Namespace", False, ()),
    "v1/nodes": ("Node", False, ()),
    "v1/pods": ("Pod", True, ("status",)),
    "v1/events": ("Event", True, ()),
    "v1/configmaps": ("ConfigMap", True, ()),
    "batch/v1/jobs": ("Job", True, ("status",)),
    "apps/v1/deployments": ("Deployment", True, ("status",)),
    "apps/v1/statefulsets": ("StatefulSet", True, ("status",)),
    "costgov.io/v1alpha1/costpolicies": ("CostPolicy", False, ("status",)),
    "costgov.io/v1alpha1/trainingjobbudgets": ("TrainingJobBudget", True, ("status",)),
    "costgov.io/v1alpha1/inferencedeployments": ("InferenceDeployment", True, ("status",)),
    "costgov.io/v1alpha1/costapprovals": ("CostApproval", True, ("status",)),
    "apps/v1/replicasets": ("ReplicaSet", True, ("status",)),
    "batch/v1/cronjobs": ("CronJob", True, ("status",)),
    "kubeflow.org/v1/pytorchjobs": ("PyTorchJob", True, ("status",)),
    "jobset.x-k8s.io/v1alpha2/jobsets": ("JobSet", True, ("status",)),
    "leaderworkerset.x-k8s.io/v1/leaderworkersets": ("LeaderWorkerSet", True, ("status",)),
    "ray.io/v1/rayjobs": ("RayJob", True, ("status",)),
}
VERBS = {"list", "watch", "get", "create", "patch", "update", "delete"}


@dataclass
class Cluster:
    k8s: Any
    api: str
    webhook: str
    runtime: Runtime
    session: aiohttp.ClientSession

    async def create(self, resource: str, body: dict[str, Any]) -> None:
        meta = body.setdefault("metadata", {})
        meta.setdefault("resourceVersion", "1")
        # uids are unique per object, as the apiserver makes them (kopf keys its state by
        # them: a Namespace and a CostPolicy both named `soft` must not share one)
        meta.setdefault(
            "uid", f"uid-{resource.rsplit('/', 1)[1]}-{meta.get('namespace', '')}-{meta['name']}"
        )
        ns = meta.get("namespace")
        group_version, plural = resource.rsplit("/", 1)
        prefix = "api" if group_version == "v1" else "apis"
        path = f"/{prefix}/{group_version}/" + (f"namespaces/{ns}/" if ns else "") + plural
        async with self.session.post(self.api + path, json=body) as response:
            assert response.status < 300, await response.text()

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        return dict(self.k8s.objects[resource, namespace, name].last.raw)

    async def wait_for(
        self,
        check: Callable[[], bool],
        timeout: float = 20,
        describe: Callable[[], str] = lambda: "",
    ) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        last: Exception | None = None
        while asyncio.get_running_loop().time() < deadline:
            try:
                if check():
                    return
            except (KeyError, AssertionError, TypeError) as exc:
                last = exc
            await asyncio.sleep(0.2)
        raise AssertionError(f"condition not met in {timeout}s (last error: {last!r}) {describe()}")

    async def review(self, path: str, review: dict[str, Any] | bytes | str) -> tuple[int, Any]:
        data = review if isinstance(review, bytes | str) else None
        kwargs: dict[str, Any] = {"data": data} if data is not None else {"json": review}
        async with self.session.post(f"{self.webhook}/{path}", **kwargs) as response:
            text = await response.text()
            try:
                import json

                return response.status, json.loads(text)
            except ValueError:
                return response.status, text


@contextlib.asynccontextmanager
async def emulator() -> AsyncIterator[tuple[Any, str]]:
    """The kmock API server with every resource the operator uses; yields (emulator, url)."""
    _patch_kmock_namespaces()
    async with Emulator() as k8s, kmock.Server(k8s) as server:
        for key, (kind, namespaced, subresources) in RESOURCES.items():
            k8s.resources[key] = kmock.ResourceInfo(
                kind=kind, namespaced=namespaced, verbs=VERBS, subresources=set(subresources)
            )
        yield k8s, str(server.url).rstrip("/")


@contextlib.asynccontextmanager
async def operator_on(
    k8s: Any,
    api: str,
    prometheus_url: str,
    *,
    clock: Callable[[], datetime],
    interval: float = 1.0,
    extra: Callable[[kopf.OperatorRegistry], None] | None = None,
) -> AsyncIterator[Cluster]:
    """One operator process (in this event loop) against an existing emulator.

    `extra` may register more handlers (the admission benchmark adds a trivial one)."""
    webhook_port = free_port()
    settings = Settings(
        prometheus_url=prometheus_url,
        reconcile_interval_seconds=interval,
        webhook_host="127.0.0.1",
        webhook_port=webhook_port,
        query_timeout_seconds=2,
        query_retries=1,
    )
    runtime = make_runtime(settings, kube=KubeClient(host=api, verify_ssl=False))
    runtime.clock = clock
    registry = build_registry(interval)
    if extra is not None:
        extra(registry)

    @kopf.on.login(registry=registry)
    def _login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=api, insecure=True)

    @kopf.on.startup(registry=registry)
    def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings, runtime.settings, runtime.metrics)
        settings.watching.reconnect_backoff = 0.2
        settings.networking.request_timeout = 5

    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            registry=registry,
            clusterwide=True,
            standalone=True,
            stop_flag=stop,
            ready_flag=ready,
            memo=kopf.Memo(runtime=runtime),
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), 20)
        async with aiohttp.ClientSession() as session:
            cluster = Cluster(k8s, api, f"http://127.0.0.1:{webhook_port}", runtime, session)
            await _wait_port(webhook_port)
            yield cluster
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, 15)


@contextlib.asynccontextmanager
async def running_operator(
    prometheus_url: str, *, clock: Callable[[], datetime], interval: float = 1.0
) -> AsyncIterator[Cluster]:
    async with (
        emulator() as (k8s, api),
        operator_on(k8s, api, prometheus_url, clock=clock, interval=interval) as cluster,
    ):
        yield cluster


async def _wait_port(port: int) -> None:
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"the webhook server never listened on {port}")
