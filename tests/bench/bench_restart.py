"""Benchmark: what a (re)started operator takes to load a 10,000-pod cluster into memory.

A real etcd and kube-apiserver (no scheduler, controllers or kubelets: nothing changes
while the operator starts) holding NODES GPU nodes (bench_scale's Karpenter/GFD labels),
10 namespaces, JOBS Jobs and PODS_PER_JOB one-GPU pods per Job, each pod bound to a node
and owned by its Job, written through the apiserver as the job controller writes them.
Then the operator starts (the chart's RBAC, webhook and CRDs; Prometheus unreachable, so
this is the start-up alone) and its RSS and CPU are sampled every 2 s until RSS has not
grown for SETTLE seconds. Prints the peak and settled RSS and when the pods were listed.
Asserts nothing about time or memory.
Run: make bench-restart  (about 4 minutes on 2 cores; NODES=100 JOBS=100 for a quick try)
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))

from tests.bench.bench_scale import JOBS, NODES, PODS_PER_JOB, TEAMS, Api, _many, _node  # noqa: E402
from tests.sim import cluster  # noqa: E402

SETTLE = float(os.environ.get("SETTLE_SECONDS", "40"))


def _jobs() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"run-{k}", "namespace": f"team-{k % TEAMS}",
                         "labels": {"costgov.io/budget": f"run-{k % 10}"}},
            "spec": {"suspend": True, "parallelism": PODS_PER_JOB, "completions": PODS_PER_JOB,
                     "template": {"spec": {"restartPolicy": "Never", "containers": [
                         {"name": "train", "image": "trainer",
                          "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}},
        }
        for k in range(JOBS)
    ]  # fmt: skip


def _pod(job: dict[str, Any], uid: str, i: int) -> dict[str, Any]:
    """A Job's pod as kube-controller-manager creates it (labels, controller ownerReference),
    bound to a node as kube-scheduler binds it."""
    meta = job["metadata"]
    labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name":
              meta["name"], "controller-uid": uid, "job-name": meta["name"], **meta["labels"]}  # fmt: skip
    spec = dict(job["spec"]["template"]["spec"])
    spec["nodeName"] = _node((int(meta["name"].split("-")[1]) * PODS_PER_JOB + i) % NODES)[
        "metadata"
    ]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{meta['name']}-{i}-x{i:04d}",
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": meta["name"],
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


def _populate(api: Api) -> None:
    began = time.monotonic()
    _many(api, "node", [_node(i) for i in range(NODES)])
    for t in range(TEAMS):
        api.create("namespace", {"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": f"team-{t}"}})  # fmt: skip
    jobs = _jobs()
    made = [api.batch.create_namespaced_job(j["metadata"]["namespace"], j) for j in jobs]
    pods = [
        _pod(j, str(m.metadata.uid), i)
        for j, m in zip(jobs, made, strict=True)
        for i in range(PODS_PER_JOB)
    ]

    def create(body: dict[str, Any]) -> float:
        started = time.perf_counter()
        api.core.create_namespaced_pod(body["metadata"]["namespace"], body, _preload_content=False)
        return time.perf_counter() - started

    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(create, pods))
    print(f"{NODES} nodes, {JOBS} Jobs, {len(pods)} GPU pods created in "
          f"{time.monotonic() - began:.0f} s", flush=True)  # fmt: skip


def _sample(pid: int) -> tuple[float, int, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = Path(f"/proc/{pid}/status").read_text()
    kib = {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}
    return cpu, kib["VmRSS"] * 1024, kib["VmHWM"] * 1024


def _watch(pid: int, log: Path, began: float) -> None:
    last_growth, top, listed = time.monotonic(), 0, None
    while time.monotonic() - last_growth < SETTLE:
        time.sleep(2)
        cpu, rss, peak = _sample(pid)
        if rss > top * 1.01:
            top, last_growth = rss, time.monotonic()
        if listed is None and "GPU pods listed" in log.read_text(errors="replace"):
            listed = time.monotonic() - began
            print(f"  pods listed {listed:.0f} s after the operator was launched", flush=True)
    took = time.monotonic() - began
    print(f"operator start-up: RSS {rss / 2**20:.0f} MiB settled, peak {peak / 2**20:.0f} MiB; "
          f"{cpu:.1f} CPU s in {took:.0f} s (RSS unchanged for the last {SETTLE:.0f} s)",
          flush=True)  # fmt: skip


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="costgov-restart-"))
    procs = cluster.Processes(root)
    try:
        cp = cluster._control_plane(root, procs)
        api = Api(cp.kubeconfig)
        _populate(api)
        began = time.monotonic()
        env = cluster._operator(cp, procs, "http://127.0.0.1:9", cluster.in_process,
                                cluster._free_port())  # fmt: skip
        pid = procs.pids["costgov"]
        print(f"operator started (pid {pid}; {env['KUBECONFIG']})", flush=True)
        logs = sorted(root.glob("operator*.log")) + sorted((root / "logs").glob("*costgov*"))
        _watch(pid, logs[0] if logs else root / "missing.log", began)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
