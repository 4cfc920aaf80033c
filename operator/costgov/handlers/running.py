"""Start the operator: settings in, kopf out (webhook server, liveness, metrics)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
from typing import Any

import kopf

from costgov.adapters.exposition import serve_metrics
from costgov.adapters.kubernetes import KubeClient
from costgov.adapters.memory import limit_malloc_arenas
from costgov.adapters.metrics import OperatorMetrics
from costgov.adapters.prometheus import PrometheusSource
from costgov.catalog import load_catalog
from costgov.domain.leases import Timings
from costgov.handlers.essences import EssentialDiffBase
from costgov.handlers.registry import build_registry
from costgov.handlers.serving import SafeWebhookServer
from costgov.services.leadership import Elector, Leadership
from costgov.services.podwatch import PAGE
from costgov.services.runtime import Runtime
from costgov.settings import Settings

__all__ = [
    "SafeWebhookServer",
    "configure",
    "limit_malloc_arenas",
    "make_runtime",
    "run",
    "settle_memory",
]


def settle_memory() -> None:
    """Move what start-up allocated (modules, catalog, clients) out of the garbage
    collector's view: every later collection then scans only what requests allocate."""
    gc.collect()
    gc.freeze()


async def discover_identity(runtime: Runtime) -> None:
    """Who costgov is to the apiserver (a SelfSubjectReview), unless settings say; only that
    identity resumes Jobs costgov suspended and creates the Deployments of model servers."""
    if runtime.self_user is not None or runtime.kube is None:
        return
    try:
        runtime.self_user = await runtime.kube.whoami()
    except Exception as exc:  # logged: admission then refuses costgov's own resumes
        logging.getLogger("costgov").error(
            f"cannot tell costgov's own identity (SelfSubjectReview: {exc}); "
            "set COSTGOV_OPERATOR_USERNAME"
        )
        return
    logging.getLogger("costgov").info(f"costgov runs as {runtime.self_user}")


def make_runtime(settings: Settings, *, kube: KubeClient | None) -> Runtime:
    elected = settings.leader_lease is not None and kube is not None  # leads once elected
    identity = settings.identity or f"{socket.gethostname()}-{os.getpid()}"
    return Runtime(
        settings=settings,
        catalog=load_catalog(settings.pricing_file),
        source=PrometheusSource(settings),
        kube=kube,
        leadership=Leadership(identity, leading=not elected),
    )


def elect(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    """With a Lease: elect from start-up on; on the way out, stop reconciling and release
    the Lease so another replica leads at once (docs/adr/0003-high-availability.md)."""
    lease, kube = runtime.settings.leader_lease, runtime.kube
    if lease is None or kube is None:
        return
    timings = Timings.of(runtime.settings.leader_lease_seconds)
    elector = Elector(kube, runtime.settings.operator_namespace, lease, runtime.leadership, timings)
    running: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry)
    async def _elect(**_: Any) -> None:
        running.append(asyncio.create_task(elector.run(), name="costgov leader election"))

    @kopf.on.cleanup(registry=registry)
    async def _release(**_: Any) -> None:
        for task in running:
            task.cancel()
        await elector.release()


def configure(
    kopf_settings: kopf.OperatorSettings,
    settings: Settings,
    metrics: OperatorMetrics | None = None,
) -> None:
    """Operator settings shared by `run` and the tests; the webhook server counts its error
    answers in `metrics` (the runtime's)."""
    kopf_settings.admission.server = SafeWebhookServer(
        metrics=metrics,
        addr=settings.webhook_host,
        port=settings.webhook_port,
        certfile=str(settings.webhook_cert_file) if settings.webhook_cert_file else None,
        pkeyfile=str(settings.webhook_key_file) if settings.webhook_key_file else None,
        insecure=settings.webhook_cert_file is None,
    )
    kopf_settings.admission.managed = None  # the Helm chart owns the webhook configuration
    kopf_settings.persistence.finalizer = "costgov.io/finalizer"
    kopf_settings.posting.level = logging.INFO
    kopf_settings.watching.server_timeout = 300
    kopf_settings.watching.chunk_size = PAGE  # kopf's initial LISTs in pages, as the pods'
    kopf_settings.persistence.diffbase_storage = EssentialDiffBase()


async def run(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; kopf stops handlers gracefully."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runtime = make_runtime(settings, kube=KubeClient())
    metrics = runtime.metrics
    serve_metrics(settings.metrics_port, metrics.registry, [metrics.hourly_cost])
    registry = build_registry(settings.reconcile_interval_seconds)
    elect(registry, runtime)

    @kopf.on.startup(registry=registry)
    async def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings, runtime.settings, runtime.metrics)
        server = settings.admission.server
        if isinstance(server, SafeWebhookServer):  # the chart's pre-stop hook sends SIGUSR1
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, server.drain)
        await discover_identity(runtime)
        settle_memory()

    @kopf.on.login(registry=registry)
    def _login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # In-cluster service account or KUBECONFIG, through the official client.
        return kopf.login_via_client(**kwargs)

    await kopf.operator(
        registry=registry,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=f"http://0.0.0.0:{settings.liveness_port}/healthz",
        memo=kopf.Memo(runtime=runtime),
    )


def main(settings: Settings) -> int:
    limit_malloc_arenas()
    asyncio.run(run(settings))
    return 0
