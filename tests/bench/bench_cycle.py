"""Benchmark: one reconcile cycle over 10,000 GPU pods on 1,000 nodes, real Prometheus.

Prints wall time, PromQL query count and peak RSS; asserts nothing about time.
Run: make bench-cycle  (needs prometheus and promtool on PATH; takes a few minutes)

History: 1,000 nodes (p5.48xlarge / p4d.24xlarge / g6.xlarge), 10,000 pods of 1,000 Jobs,
30 minutes at 60 s (KSM requests/info/phase/owner and DCGM utilisation per pod, in the
exporters' label sets), backfilled with promtool. The cycle: the accounting snapshot (all
queries) plus reconciling 10 CostPolicies, 100 TrainingJobBudgets and their 1,000 Jobs
against an in-memory inventory. The cluster is over-committed, as it has been since the
first version of this bench: 10 one-GPU pods on every node, 8-GPU and 1-GPU nodes alike
(the dollars are GPU-hours x the node's price per GPU, so they still check by hand).
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2] / "operator"))
sys.path.insert(0, str(HERE.parents[2]))

N_NODES, N_PODS, PODS_PER_JOB, MINUTES = 1000, 10_000, 10, 30
TYPES = [("p5.48xlarge", 8), ("p4d.24xlarge", 8), ("g6.xlarge", 1)]
MODELS = ["NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB", "NVIDIA L4"]  # dcgm's modelName


def history_series() -> Iterator[tuple[str, dict[str, str], float]]:
    """Every series of the history: (metric, labels, its constant value), pod by pod,
    with the label sets kube-state-metrics v2.20.0 and dcgm-exporter write (as in
    tests/integration/exporters.py: uid on every pod series, `node` on the GPU requests,
    all five phases, kube_pod_info's created_by_*) and the scrape's job and instance."""
    for n in range(N_NODES):
        it = TYPES[n % 3][0]
        yield "kube_node_labels", {**_KSM, "node": f"node-{n}", _INSTANCE_TYPE: it}, 1
    for p in range(N_PODS):
        yield from _pod_series(p)


def _pod_series(p: int) -> Iterator[tuple[str, dict[str, str], float]]:
    node = f"node-{p % N_NODES}"
    job = f"job-{p // PODS_PER_JOB}"
    ids = {**_KSM, "namespace": f"team-{p % 50}", "pod": f"pod-{p}", "uid": f"uid-{p}"}
    yield (
        "kube_pod_container_resource_requests",
        {**ids, "container": "c", "node": node, "resource": "nvidia_com_gpu", "unit": "integer"},
        1,
    )  # one GPU a pod, whatever the node (10 pods a node; the figures since #3 assume it)
    yield (
        "kube_pod_info",
        {
            **ids,
            "host_ip": "10.0.0.10",
            "pod_ip": "10.1.0.10",
            "node": node,
            "created_by_kind": "Job",
            "created_by_name": job,
            "host_network": "false",
        },
        1,
    )
    for phase in ("Pending", "Succeeded", "Failed", "Unknown", "Running"):
        yield "kube_pod_status_phase", {**ids, "phase": phase}, int(phase == "Running")
    yield (
        "kube_pod_owner",
        {**ids, "owner_kind": "Job", "owner_name": job, "owner_is_controller": "true"},
        1,
    )
    yield (
        "DCGM_FI_DEV_GPU_UTIL",
        {
            "job": "dcgm-exporter",
            "instance": f"10.0.{p % N_NODES // 250}.{p % N_NODES % 250}:9400",
            "gpu": "0",
            "UUID": f"GPU-{p}",
            "pci_bus_id": "00000000:10:00.0",
            "device": "nvidia0",
            "modelName": MODELS[p % N_NODES % 3],
            "Hostname": node,
            "DCGM_FI_DRIVER_VERSION": "580.105.08",
            "namespace": ids["namespace"],
            "pod": ids["pod"],
            "container": "c",
        },
        40 + p % 50,
    )


_KSM = {"job": "kube-state-metrics", "instance": "10.0.0.5:8080"}
_INSTANCE_TYPE = "label_node_kubernetes_io_instance_type"


def write_history(path: Path, end: int) -> None:
    """The history as OpenMetrics text, a sample a minute, for promtool to backfill."""
    times = range(end - MINUTES * 60, end + 1, 60)
    families: dict[str, list[str]] = {}  # OpenMetrics wants a metric's series together
    for metric, labels, value in history_series():
        text = ",".join(f'{k}="{v}"' for k, v in labels.items())
        families.setdefault(metric, []).append(f"{metric}{{{text}}} {value:g}")
    with path.open("w") as f:
        for metric, lines in families.items():
            f.write(f"# TYPE {metric} gauge\n")
            for line in lines:
                f.writelines(f"{line} {t}\n" for t in times)
        f.write("# EOF\n")


async def cycle(url: str, end: int) -> None:
    from decimal import Decimal

    from costgov.adapters.prometheus import PrometheusSource
    from costgov.api import CostPolicy, TrainingJobBudget
    from costgov.api.costpolicy import CostPolicyStatus
    from costgov.api.trainingjobbudget import TrainingJobBudgetStatus
    from costgov.catalog import load_catalog
    from costgov.domain.placement import NodeInfo
    from costgov.domain.reading import workload_from_object
    from costgov.services.inventory import Inventory, JobRecord, PodRecord
    from costgov.services.reconciling import reconcile_budget, reconcile_policy
    from costgov.services.runtime import Runtime
    from costgov.services.statuses import read_status
    from costgov.settings import Settings

    settings = Settings(prometheus_url=url, query_timeout_seconds=60)
    catalog = load_catalog()
    now = datetime.fromtimestamp(end, UTC)
    nodes = {
        f"node-{n}": NodeInfo(
            f"node-{n}", {"node.kubernetes.io/instance-type": TYPES[n % 3][0]}, TYPES[n % 3][1]
        )
        for n in range(N_NODES)
    }
    pods = tuple(
        PodRecord(
            f"team-{p % 50}",
            f"pod-{p}",
            f"node-{p % N_NODES}",
            Decimal(1),
            {},
            f"job-{p // PODS_PER_JOB}",
            "Running",
        )
        for p in range(N_PODS)
    )
    jobs = []
    for j in range(N_PODS // PODS_PER_JOB):
        body = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"job-{j}",
                "namespace": f"team-{(j * PODS_PER_JOB) % 50}",
                "labels": {"costgov.io/budget": f"b-{j % 100}"},
            },
            "spec": {
                "parallelism": PODS_PER_JOB,
                "activeDeadlineSeconds": 7200,
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "c",
                                "image": "x",
                                "resources": {"limits": {"nvidia.com/gpu": 1}},
                            }
                        ],
                        "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
                    }
                },
            },
        }
        jobs.append(JobRecord(workload_from_object(body), 1, False, now, None))
    policies = tuple(
        CostPolicy.model_validate(
            {
                "apiVersion": "costgov.io/v1alpha1",
                "kind": "CostPolicy",
                "metadata": {"name": f"p{i}"},
                "spec": {
                    "budget": {"amount": 100000},
                    "scope": {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": f"team-{i}"}
                        }
                    },
                },
            }
        )
        for i in range(10)
    )
    budgets = tuple(
        TrainingJobBudget.model_validate(
            {
                "apiVersion": "costgov.io/v1alpha1",
                "kind": "TrainingJobBudget",
                "metadata": {
                    "name": f"b-{i}",
                    "namespace": f"team-{(i * PODS_PER_JOB) % 50}",
                    "creationTimestamp": "2000-01-01T00:00:00Z",
                },
                "spec": {
                    "amount": 5000,
                    "selector": {"matchLabels": {"costgov.io/budget": f"b-{i}"}},
                },
            }
        )
        for i in range(100)
    )
    # Steady state: every resource was accounted up to the previous cycle, a minute ago.
    cursor = datetime.fromtimestamp(end - 60, UTC).isoformat().replace("+00:00", "Z")
    period = now.replace(day=1, hour=0, minute=0, second=0).isoformat().replace("+00:00", "Z")
    statuses = {
        ("CostPolicy", "", p.metadata.name): {
            "periodStart": period,
            "accounting": {"cursor": cursor, "spent": "1000"},
        }
        for p in policies
    }
    statuses.update(
        {
            ("TrainingJobBudget", b.metadata.namespace or "", b.metadata.name): {
                "accounting": {"cursor": cursor, "spent": "100", "jobs": []}
            }
            for b in budgets
        }
    )
    inv = Inventory(
        namespaces={f"team-{i}": {} for i in range(50)},
        nodes=nodes,
        pods=pods,
        jobs=tuple(jobs),
        policies=policies,
        budgets=budgets,
        statuses=statuses,
    )
    runtime = Runtime(
        settings=settings,
        catalog=catalog,
        source=PrometheusSource(settings),
        kube=None,
        clock=lambda: now,
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    snap = await runtime.snapshot(inv, now=now)
    t1 = time.perf_counter()
    situation = runtime.situation(inv, snap.at)
    for p in policies:
        reconcile_policy(
            p,
            inv,
            snap,
            situation=situation,
            old=read_status(CostPolicyStatus, inv.status_of("CostPolicy", "", p.metadata.name)),
            judgements=runtime.judgements(inv, situation),
        )
    for b in budgets:
        raw = inv.status_of("TrainingJobBudget", b.metadata.namespace or "", b.metadata.name)
        reconcile_budget(
            b, inv, snap, situation=situation, old=read_status(TrainingJobBudgetStatus, raw)
        )
    t2 = time.perf_counter()
    assert snap.error is None, snap.error
    (window,) = snap.windows.values()
    priced = sum(1 for c in window.pods if c.cost is not None)
    total = sum((c.cost for c in window.pods if c.cost), Decimal(0))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"windows: {len(snap.windows)}; pods priced in the last minute: {priced}; "
        f"spend ${total:,.2f}"
    )
    print(f"PromQL queries in the cycle: {snap.queries}")
    print(f"accounting snapshot (all queries): {t1 - t0:.2f} s")
    print(f"reconcile 10 policies + 100 budgets (1,000 Jobs): {t2 - t1:.2f} s")
    print(f"whole cycle: {t2 - t0:.2f} s")
    print(f"peak RSS: {rss:.0f} MB (before the cycle: {rss_before:.0f} MB, Python + imports)")


def serve_prometheus(
    root: Path, flags: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Prometheus on the TSDB under `root`, on a free loopback port, once it is ready."""
    import urllib.request

    from tests.ports import free_port

    (root / "p.yml").write_text("global: {}\n")
    port = free_port()
    prom = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={root / 'p.yml'}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=400d",
            "--query.timeout=600s",
            *(flags or []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    return prom, port


def main() -> int:
    if len(sys.argv) == 3:  # the measuring child
        asyncio.run(cycle(sys.argv[1], int(sys.argv[2])))
        return 0
    import tempfile

    end = (int(time.time()) // 3600 - 1) * 3600
    with tempfile.TemporaryDirectory(prefix="costgov-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        write_history(root / "data.om", end)
        size = (root / "data.om").stat().st_size / 1e6
        subprocess.run(
            [
                "promtool",
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(root / "data.om"),
                str(root / "tsdb"),
            ],
            check=True,
            capture_output=True,
        )
        (root / "data.om").unlink()
        print(f"history: {size:.0f} MB OpenMetrics backfilled in {time.perf_counter() - t0:.0f} s")
        prom, port = serve_prometheus(root)
        try:
            for run in (1, 2):
                print(f"-- run {run} ({os.cpu_count()} CPUs)")
                subprocess.run(
                    [sys.executable, str(HERE), f"http://127.0.0.1:{port}", str(end)], check=True
                )
        finally:
            prom.terminate()
            prom.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
