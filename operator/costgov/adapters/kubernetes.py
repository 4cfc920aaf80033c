"""Writes to the Kubernetes API that kopf does not do for us: patch Jobs, apply Deployments.

The official client is blocking; calls run in worker threads. One client per operator, made
at start (never a module-level global).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

__all__ = ["KubeClient", "KubeError"]


TIMEOUT = 10.0
"""Seconds any single API call may take; a hung call must not stall a reconcile forever."""


def _drain(response: Any) -> None:
    """Read and release an unparsed response (we do not need it back as a typed object,
    and parsing it would fail on anything the generated models do not expect)."""
    for method in ("read", "release_conn", "close"):
        fn = getattr(response, method, None)
        if callable(fn):
            fn()


class KubeError(RuntimeError):
    """The API refused or could not be reached; names the object."""


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
            api = client.ApiClient(cfg)
        else:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except config.ConfigException:
                config.load_kube_config()  # type: ignore[no-untyped-call]
            api = client.ApiClient()
        self._batch = client.BatchV1Api(api)
        self._apps = client.AppsV1Api(api)
        self._authn = client.AuthenticationV1Api(api)

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
