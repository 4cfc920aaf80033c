"""Writes to the Kubernetes API that kopf does not do for us: patch Jobs, apply Deployments.

The official client is blocking; calls run in worker threads. One client per operator, made
at start (never a module-level global).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from costgov.domain.leases import Lease

__all__ = ["ConflictError", "KubeClient", "KubeError", "LeaseConflictError"]


TIMEOUT = 10.0
"""Seconds any single API call may take; a hung call must not stall a reconcile forever."""
POOL = 64
"""Connections kept per host: one per pod watch (a namespace each) and the other calls."""
WATCH_TIMEOUT = 60.0
"""Seconds a page of pods may take, and a watch may stay silent past its own timeout."""


def _drain(response: Any) -> None:
    """Read and release an unparsed response (we do not need it back as a typed object,
    and parsing it would fail on anything the generated models do not expect)."""
    for method in ("read", "release_conn", "close"):
        fn = getattr(response, method, None)
        if callable(fn):
            fn()


class KubeError(RuntimeError):
    """The API refused or could not be reached; names the object. `status`: the HTTP
    status, when the apiserver answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConflictError(KubeError):
    """The object changed since read (409: its resourceVersion), or is gone (404)."""


class LeaseConflictError(KubeError):
    """Another replica wrote the Lease first (409): this attempt lost the race."""


def _micro(at: datetime | None) -> str | None:
    """A MicroTime as the apiserver takes it (RFC 3339, microseconds, UTC)."""
    return None if at is None else at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def lease_body(namespace: str, name: str, lease: Lease) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace}
    spec = {
        "holderIdentity": lease.holder,
        "leaseDurationSeconds": lease.duration_seconds,
        "acquireTime": _micro(lease.acquired),
        "renewTime": _micro(lease.renewed),
        "leaseTransitions": lease.transitions,
    }
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {**meta, **({"resourceVersion": lease.version} if lease.version else {})},
        "spec": {k: v for k, v in spec.items() if v is not None},
    }


def lease_from(body: Mapping[str, Any]) -> Lease:
    spec = body.get("spec") or {}
    return Lease(
        holder=str(spec.get("holderIdentity") or ""),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquired=_when(spec.get("acquireTime")),
        renewed=_when(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        version=str((body.get("metadata") or {}).get("resourceVersion") or ""),
    )


class KubeClient:
    def __init__(
        self, *, host: str | None = None, token: str | None = None, verify_ssl: bool = True
    ) -> None:
        if host is not None:
            cfg = client.Configuration()
            cfg.host = host
            cfg.verify_ssl = verify_ssl
            if token:
                cfg.api_key = {"authorization": f"Bearer {token}"}
            cfg.connection_pool_maxsize = POOL
            api = client.ApiClient(cfg)
        else:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except config.ConfigException:
                config.load_kube_config()  # type: ignore[no-untyped-call]
            cfg = client.Configuration.get_default_copy()
            cfg.connection_pool_maxsize = POOL
            api = client.ApiClient(cfg)
        self._core = client.CoreV1Api(api)
        self._batch = client.BatchV1Api(api)
        self._apps = client.AppsV1Api(api)
        self._authn = client.AuthenticationV1Api(api)
        self._leases = client.CoordinationV1Api(api)
        self._custom = client.CustomObjectsApi(api)

    def _pods(self, namespace: str | None, **kwargs: Any) -> Any:
        """GET pods, cluster-wide or in one namespace, unparsed."""
        if namespace is None:
            return self._core.list_pod_for_all_namespaces(_preload_content=False, **kwargs)
        return self._core.list_namespaced_pod(namespace, _preload_content=False, **kwargs)

    def list_pods_page(
        self, limit: int, token: str | None, namespace: str | None = None
    ) -> dict[str, Any]:
        """One page of the pods (blocking: the pod follower's thread calls it), parsed as
        plain JSON, not into the client's models."""
        more: dict[str, Any] = {"_continue": token} if token else {}
        where = f" in {namespace}" if namespace else ""
        try:
            response = self._pods(namespace, limit=limit, _request_timeout=WATCH_TIMEOUT, **more)
        except ApiException as exc:
            raise KubeError(f"listing pods{where}: {exc.status} {exc.reason}", exc.status) from exc
        try:
            return cast(dict[str, Any], json.loads(response.data))
        finally:
            response.release_conn()

    def watch_pods(
        self,
        version: str,
        seconds: int,
        namespace: str | None = None,
        opened: Callable[[Any], None] | None = None,
        initial: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Every pod event after `version`, bookmarks included, for `seconds` at most
        (blocking: the pod follower's thread reads it); one JSON object per line. `opened`
        receives the response, which another thread may shut down to end the watch.
        `initial`: a streaming list instead (every pod as an ADDED event, then a BOOKMARK
        annotated `k8s.io/initial-events-end`: the WatchList feature, beta since 1.32)."""
        where = f" in {namespace}" if namespace else ""
        start: dict[str, Any] = {"resource_version": version}
        if initial:
            start = {"send_initial_events": True, "resource_version_match": "NotOlderThan"}
        try:
            response = self._pods(
                namespace, watch=True, allow_watch_bookmarks=True, timeout_seconds=seconds,
                _request_timeout=(TIMEOUT, seconds + WATCH_TIMEOUT), **start,
            )  # fmt: skip
        except ApiException as exc:
            raise KubeError(f"watching pods{where}: {exc.status} {exc.reason}", exc.status) from exc
        if opened is not None:
            opened(response)
        try:
            rest = b""
            for chunk in response.stream(None):  # each chunk as it comes (chunked encoding)
                *lines, rest = (rest + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        yield cast(dict[str, Any], json.loads(line))
        finally:
            response.release_conn()

    async def whoami(self) -> str:
        """This client's user name, as the apiserver authenticates it (SelfSubjectReview)."""

        def call() -> str:
            try:
                review = self._authn.create_self_subject_review(
                    client.V1SelfSubjectReview(), _request_timeout=TIMEOUT
                )
            except ApiException as exc:
                raise KubeError(f"SelfSubjectReview: {exc.status} {exc.reason}") from exc
            info = review.status.user_info if review.status is not None else None
            if info is None or not info.username:
                raise KubeError("SelfSubjectReview: the apiserver named no user")
            return str(info.username)

        return await asyncio.to_thread(call)

    async def patch_job(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        def call() -> None:
            try:
                _drain(
                    self._batch.patch_namespaced_job(
                        name,
                        namespace,
                        dict(patch),
                        _content_type="application/merge-patch+json",
                        _preload_content=False,
                        _request_timeout=TIMEOUT,
                    )
                )
            except ApiException as exc:
                raise KubeError(
                    f"patching Job {namespace}/{name}: {exc.status} {exc.reason}"
                ) from exc

        await asyncio.to_thread(call)

    async def apply_deployment(self, manifest: Mapping[str, Any]) -> None:
        """Create the Deployment, or patch it to the wanted spec when it exists."""
        meta = manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]

        def call() -> None:
            try:
                _drain(
                    self._apps.patch_namespaced_deployment(
                        name,
                        namespace,
                        dict(manifest),
                        _content_type="application/strategic-merge-patch+json",
                        _preload_content=False,
                        _request_timeout=TIMEOUT,
                    )
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise KubeError(
                        f"patching Deployment {namespace}/{name}: {exc.status} {exc.reason}"
                    ) from exc
                try:
                    _drain(
                        self._apps.create_namespaced_deployment(
                            namespace,
                            dict(manifest),  # type: ignore[arg-type]  # dicts serialize as-is
                            _preload_content=False,
                            _request_timeout=TIMEOUT,
                        )
                    )
                except ApiException as exc2:
                    raise KubeError(
                        f"creating Deployment {namespace}/{name}: {exc2.status} {exc2.reason}"
                    ) from exc2

        await asyncio.to_thread(call)

    def list_costgov_now(
        self, plural: str, namespace: str | None, timeout: float, limit: int
    ) -> list[dict[str, Any]]:
        """Every costgov.io/v1alpha1 object of a kind, read from the apiserver (a consistent
        read, not the watch cache), cluster-wide when `namespace` is None. Blocking: the
        caller picks the thread. KubeError when there are more than `limit`."""
        options: dict[str, Any] = {
            "limit": limit,
            "_preload_content": False,
            "_request_timeout": timeout,
        }
        try:
            if namespace is None:
                response = self._custom.list_cluster_custom_object(
                    "costgov.io", "v1alpha1", plural, **options
                )
            else:
                response = self._custom.list_namespaced_custom_object(
                    "costgov.io", "v1alpha1", namespace, plural, **options
                )
        except ApiException as exc:
            raise KubeError(f"listing {plural}: {exc.status} {exc.reason}") from exc
        found = json.loads(cast(Any, response).data)
        if (found.get("metadata") or {}).get("continue"):
            raise KubeError(f"listing {plural}: more than {limit}")
        return [i for i in found.get("items") or () if isinstance(i, dict)]

    async def patch_status_if(
        self,
        plural: str,
        meta: Mapping[str, Any],
        status: Mapping[str, Any],
        timeout: float,
    ) -> dict[str, Any]:
        """Merge `status` into a costgov.io/v1alpha1 object's status only if it is still the
        version `meta` names (its resourceVersion: kube-apiserver answers 409 to a stale one,
        on /status too; a uid there is not checked); the object as written, or
        ConflictError."""
        ns, name = str(meta.get("namespace") or "default"), str(meta["name"])
        version = meta.get("resourceVersion")
        if not version:  # never an unconditional write
            raise KubeError(f"{plural} {ns}/{name}: no resourceVersion to write against")
        body = {"metadata": {"resourceVersion": version}, "status": dict(status)}

        def call() -> dict[str, Any]:
            try:
                response = self._custom.patch_namespaced_custom_object_status(
                    "costgov.io", "v1alpha1", ns, plural, name, body,
                    _content_type="application/merge-patch+json",
                    _preload_content=False, _request_timeout=timeout,
                )  # fmt: skip
            except ApiException as exc:
                if exc.status in (404, 409):  # gone, or changed since read
                    raise ConflictError(f"{plural} {ns}/{name}: {exc.status}") from exc
                raise KubeError(f"patching {plural} {ns}/{name} status: {exc.status}") from exc
            return cast(dict[str, Any], json.loads(cast(Any, response).data))

        return await asyncio.to_thread(call)

    async def read_costgov(
        self, plural: str, namespace: str, name: str, timeout: float
    ) -> dict[str, Any] | None:
        """A costgov.io/v1alpha1 object as the apiserver holds it now, or None if gone."""

        def call() -> dict[str, Any] | None:
            try:
                response = self._custom.get_namespaced_custom_object(
                    "costgov.io", "v1alpha1", namespace, plural, name,
                    _preload_content=False, _request_timeout=timeout,
                )  # fmt: skip
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise KubeError(f"reading {plural} {namespace}/{name}: {exc.status}") from exc
            return cast(dict[str, Any], json.loads(cast(Any, response).data))

        return await asyncio.to_thread(call)

    async def read_lease(self, namespace: str, name: str, timeout: float) -> Lease | None:
        """The Lease, or None when it does not exist."""

        def call() -> Lease | None:
            try:
                response = self._leases.read_namespaced_lease(
                    name, namespace, _preload_content=False, _request_timeout=timeout
                )
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise KubeError(f"reading Lease {namespace}/{name}: {exc.status}") from exc
            return lease_from(json.loads(cast(Any, response).data))

        return await asyncio.to_thread(call)

    async def write_lease(self, namespace: str, name: str, lease: Lease, timeout: float) -> Lease:
        """Create the Lease (no version yet) or replace it at the version it was read at;
        LeaseConflictError when another replica wrote it in between."""
        body = lease_body(namespace, name, lease)

        def call() -> Lease:
            try:
                if lease.version:
                    response = self._leases.replace_namespaced_lease(
                        name,
                        namespace,
                        cast(Any, body),
                        _preload_content=False,
                        _request_timeout=timeout,
                    )
                else:
                    response = self._leases.create_namespaced_lease(
                        namespace, cast(Any, body), _preload_content=False, _request_timeout=timeout
                    )
            except ApiException as exc:
                if exc.status == 409 or (exc.status == 404 and lease.version):
                    raise LeaseConflictError(f"Lease {namespace}/{name}: {exc.status}") from exc
                raise KubeError(f"writing Lease {namespace}/{name}: {exc.status}") from exc
            return lease_from(json.loads(cast(Any, response).data))

        return await asyncio.to_thread(call)
