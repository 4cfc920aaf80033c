"""Benchmark: the operator at scale on the simulated cluster, with real watches.

Through the apiserver: NODES kwok GPU nodes (60 % p5.48xlarge, 40 % p4d.24xlarge, 8 GPUs
each, labelled as Karpenter and GPU feature discovery label them), 10 governed namespaces,
one CostPolicy (audit, with a monthly budget), 100 TrainingJobBudgets and JOBS Jobs of 10
one-GPU pods each, created by the real job controller, bound by the real scheduler, run by
kwok, exported by kube-state-metrics and kwok's fake dcgm-exporter, scraped by Prometheus.
With 1,000 nodes there are 8,000 GPU slots, so of 10,000 pods 8,000 run and 2,000 wait
Pending (a full cluster, as GPU clusters are).

Prints: set-up times; the operator's peak RSS; per steady cycle its CPU seconds, duration
and PromQL queries; time from a restarted operator's start to complete status on every
TrainingJobBudget and the CostPolicy; admission latency through the apiserver (client
side, and the webhook's own histogram) while Jobs churn. Asserts nothing about time.
Run: make bench-scale  (about 15-25 minutes on 2 cores; NODES=100 JOBS=100 for a quick try)

STANDINS_NICE=N runs the processes that stand in for other machines at nice N: kwok (the
kubelets of NODES nodes) and the control plane (etcd, kube-apiserver, kube-scheduler,
kube-controller-manager: on nodes of their own, or the cloud's, in a real cluster), so
that Prometheus, kube-state-metrics and the operator get the CPU first, as they would on
their own nodes. Admission latency then includes a de-prioritised apiserver.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))

NODES, JOBS = int(os.environ.get("NODES", "1000")), int(os.environ.get("JOBS", "1000"))
PODS_PER_JOB, TEAMS, BUDGETS_PER_TEAM = 10, 10, 10
RECONCILE = os.environ.get("RECONCILE_SECONDS", "30")
STANDINS_NICE = int(os.environ.get("STANDINS_NICE", "0"))
STANDINS = ("etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager", "kwok")
os.environ.setdefault("SIM_SCRAPE_SECONDS", "15")
os.environ.setdefault("SIM_KUBE_API_QPS", "200")
os.environ.setdefault("SIM_QUERY_TIMEOUT_SECONDS", "10")  # the chart's default (the sim's 5 s
# is for a small cluster: at 10,000 pods a timed-out query makes the next window longer)
os.environ["SIM_RECONCILE_SECONDS"] = RECONCILE

from kubernetes import client, config  # noqa: E402
from tests.sim import cluster  # noqa: E402

NODE_TYPES = (
    ("p5.48xlarge", "NVIDIA-H100-80GB-HBM3", "p5", "h100", "81920"),
    ("p4d.24xlarge", "NVIDIA-A100-SXM4-40GB", "p4d", "a100", "40960"),
)


def _node(i: int) -> dict[str, Any]:
    itype, product, family, gpu, memory = NODE_TYPES[0 if i % 5 < 3 else 1]
    name = f"scale-{family}-{i:04d}"
    alloc = {"cpu": "96", "memory": "1000Gi", "pods": "110", "nvidia.com/gpu": "8"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "node.kubernetes.io/instance-type": itype,
                "topology.kubernetes.io/region": "us-east-1",
                "topology.kubernetes.io/zone": f"us-east-1{'abc'[i % 3]}",
                "karpenter.sh/capacity-type": "on-demand",
                "karpenter.sh/nodepool": "gpu-training",
                "karpenter.k8s.aws/instance-family": family,
                "karpenter.k8s.aws/instance-gpu-count": "8",
                "karpenter.k8s.aws/instance-gpu-name": gpu,
                "karpenter.k8s.aws/instance-gpu-memory": memory,
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": product,
                "nvidia.com/gpu.count": "8",
            },
        },
        "status": {"capacity": alloc, "allocatable": alloc},
    }  # fmt: skip


def _job(team: int, budget: int, k: int) -> dict[str, Any]:
    itype = NODE_TYPES[(budget + k) % 2][0]
    container = {"name": "train", "image": "trainer",
                 "resources": {"limits": {"nvidia.com/gpu": "1"}}}  # fmt: skip
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"run-{budget}-{k}", "namespace": f"team-{team}",
                     "labels": {"costgov.io/budget": f"run-{budget}"}},
        "spec": {
            "parallelism": PODS_PER_JOB, "completions": PODS_PER_JOB,
            "activeDeadlineSeconds": 86400, "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {"sim.costgov.io/gpu-util": str(40 + k * 5)}},
                "spec": {"restartPolicy": "Never", "containers": [container],
                         "nodeSelector": {"node.kubernetes.io/instance-type": itype}},
            },
        },
    }  # fmt: skip


def _governance() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for t in range(TEAMS):
        out.append(
            (
                "namespace",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": f"team-{t}",
                        "labels": {"costgov.io/governed": "true", "team": f"t{t}"},
                    },
                },
            )
        )
    out.append(
        (
            "costpolicy",
            {
                "apiVersion": "costgov.io/v1alpha1",
                "kind": "CostPolicy",
                "metadata": {"name": "scale"},
                "spec": {
                    "mode": "audit",
                    "scope": {
                        "namespaceSelector": {"matchLabels": {"costgov.io/governed": "true"}}
                    },
                    "budget": {"amount": 100000000, "period": "monthly"},
                },
            },
        )
    )
    for t in range(TEAMS):
        for b in range(BUDGETS_PER_TEAM):
            out.append(
                (
                    "tjb",
                    {
                        "apiVersion": "costgov.io/v1alpha1",
                        "kind": "TrainingJobBudget",
                        "metadata": {"name": f"run-{b}", "namespace": f"team-{t}"},
                        "spec": {
                            "amount": 10000000,
                            "requestedBy": "admin",
                            "selector": {"matchLabels": {"costgov.io/budget": f"run-{b}"}},
                        },
                    },
                )
            )
    return out  # fmt: skip


class Api:
    def __init__(self, kubeconfig: Path) -> None:
        self.api = config.new_client_from_config(str(kubeconfig))
        self.api.configuration.connection_pool_maxsize = 16
        self.core, self.batch = client.CoreV1Api(self.api), client.BatchV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def create(self, kind: str, body: dict[str, Any]) -> float:
        started = time.perf_counter()
        ns = body["metadata"].get("namespace")
        if kind == "node":
            self.core.create_node(body)
        elif kind == "namespace":
            self.core.create_namespace(body)
        elif kind == "job":
            self.batch.create_namespaced_job(ns, body, _preload_content=False)
        elif kind == "costpolicy":
            self.custom.create_cluster_custom_object("costgov.io", "v1alpha1", "costpolicies", body)
        else:
            self.custom.create_namespaced_custom_object(
                "costgov.io", "v1alpha1", ns, "trainingjobbudgets", body
            )
        return time.perf_counter() - started

    def pods(self) -> dict[str, int]:
        phases: dict[str, int] = {}
        cont: str | None = None
        while True:
            page = self.core.list_pod_for_all_namespaces(
                limit=2000, _continue=cont, label_selector="batch.kubernetes.io/job-name"
            )
            for pod in page.items:
                phases[pod.status.phase] = phases.get(pod.status.phase, 0) + 1
            cont = page.metadata._continue
            if not cont:
                return phases

    def budgets(self) -> list[dict[str, Any]]:
        found = self.custom.list_cluster_custom_object(
            "costgov.io", "v1alpha1", "trainingjobbudgets"
        )
        return list(found["items"])

    def policy(self) -> dict[str, Any]:
        got = self.custom.get_cluster_custom_object(
            "costgov.io", "v1alpha1", "costpolicies", "scale"
        )
        return dict(got)


def _many(api: Api, kind: str, bodies: list[dict[str, Any]], workers: int = 8) -> list[float]:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda b: api.create(kind, b), bodies))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _wait(what: str, check: Any, timeout: float, every: float = 5) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        found = check()
        if found:
            return time.monotonic() - started
        time.sleep(every)
    raise SystemExit(f"{what}: not within {timeout:.0f} s")


READ = (  # the operator's figures the bench reads: only they are asked for (`name[]`)
    "costgov_accounting_cycles_total", "costgov_accounting_cycle_queries",
    "costgov_accounting_cycle_duration_seconds_sum", "costgov_leader",
    *(f"costgov_webhook_request_duration_seconds_{s}" for s in ("count", "sum", "bucket")),
)  # fmt: skip
"""Polled every 2 s: the whole /metrics (8,000 pods' $/h) would add the bench's own load
to the operator's CPU and to the two cores the cycle shares."""


def _metrics(sim: cluster.Sim) -> dict[str, float]:
    query = urllib.parse.urlencode([("name[]", name) for name in READ])
    with urllib.request.urlopen(f"{sim.metrics_url}?{query}", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_:]+(?:\{[^}]*\})?) (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def _proc(pid: int) -> tuple[float, int, int]:
    """(CPU seconds, RSS bytes, peak RSS bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    kib = lambda key: int(status[key].split()[0]) * 1024  # noqa: E731
    return cpu, kib("VmRSS"), kib("VmHWM")


def _complete(api: Api, since: datetime) -> bool:
    def fresh(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        stamp, spent = status.get("figuresAsOf"), status.get("spent")
        current = any(
            c.get("type") == "CaughtUp" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )  # not still catching up on past spend a chunk at a time
        return bool(stamp and spent and current) and datetime.fromisoformat(stamp) > since

    budgets = api.budgets()
    done = sum(1 for b in budgets if fresh(b))
    print(f"  status complete on {done}/{len(budgets)} budgets", flush=True)
    return done == len(budgets) == TEAMS * BUDGETS_PER_TEAM and fresh(api.policy())


def _nice_standins(root: Path) -> None:
    """Every thread of the stand-ins at nice STANDINS_NICE (Linux nice is per thread; Go
    starts threads from niced ones after this, and each phase applies it again)."""
    if not STANDINS_NICE:
        return
    pids = cluster.Processes(root).pids
    for name in STANDINS:
        for task in Path(f"/proc/{pids[name]}/task").iterdir():
            with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
                os.setpriority(os.PRIO_PROCESS, int(task.name), STANDINS_NICE)


def _steady(sim: cluster.Sim, pid: int, phase: str, cycles: int = 3) -> None:
    _nice_standins(sim.root)
    first, cpu0 = _metrics(sim), _proc(pid)[0]
    n0 = first.get("costgov_accounting_cycles_total", 0)
    seen: dict[float, float] = {}  # queries of each cycle (the gauge is the last cycle's)

    def done() -> bool:
        now = _metrics(sim)
        count = now.get("costgov_accounting_cycles_total", 0)
        if count > n0:
            seen[count] = now["costgov_accounting_cycle_queries"]
        return count >= n0 + cycles

    _wait("steady cycles", done, timeout=cycles * float(RECONCILE) * 3, every=2)
    last, (cpu1, rss, peak) = _metrics(sim), _proc(pid)
    n = last["costgov_accounting_cycles_total"] - n0
    took = (last["costgov_accounting_cycle_duration_seconds_sum"]
            - first["costgov_accounting_cycle_duration_seconds_sum"]) / n  # fmt: skip
    low, high = min(seen.values()), max(seen.values())
    print(f"steady ({phase}): {n:.0f} cycles, {took:.2f} s per accounting snapshot, "
          f"{low:.0f}{f'-{high:.0f}' if high > low else ''} PromQL queries per cycle, "
          f"{(cpu1 - cpu0) / n:.2f} CPU s per cycle interval ({RECONCILE} s, reconcile and "
          f"watches included); RSS {rss / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB",
          flush=True)  # fmt: skip


def _restart(sim: cluster.Sim, api: Api) -> int:
    procs = cluster.Processes(sim.root)
    old = procs.pids["costgov"]
    os.kill(old, signal.SIGTERM)
    _wait("the operator to stop", lambda: not cluster._alive(old), timeout=60, every=0.5)
    started = datetime.now(UTC)
    log = (sim.root / "operator-restarted.log").open("a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "costgov", "run"],
        env={**os.environ, **sim.operator_env}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    procs.add("costgov", proc.pid)
    took = _wait("complete status after restart", lambda: _complete(api, started), 900, 5)
    print(f"restart: complete status on {TEAMS * BUDGETS_PER_TEAM} budgets and the policy "
          f"{took:.0f} s after the operator started", flush=True)  # fmt: skip
    return proc.pid


def _churn_and_admit(api: Api, sim: cluster.Sim, seconds: float = 120) -> None:
    """Delete and recreate Jobs (their pods go and come) while new Jobs are admitted."""
    stop = threading.Event()

    def churn() -> None:
        k = 0
        while not stop.is_set():
            t, b = k % TEAMS, k % BUDGETS_PER_TEAM
            name = f"run-{b}-{(k // TEAMS) % (JOBS // TEAMS // BUDGETS_PER_TEAM or 1)}"
            try:
                api.batch.delete_namespaced_job(name, f"team-{t}", propagation_policy="Background")
                time.sleep(0.5)
                body = _job(t, b, 0)
                body["metadata"]["name"] = name
                api.create("job", body)
            except client.ApiException:
                pass
            k += 1

    _nice_standins(sim.root)
    before = _metrics(sim)
    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    latencies: list[float] = []
    started, i = time.monotonic(), 0
    while time.monotonic() - started < seconds:
        body = _job(i % TEAMS, i % BUDGETS_PER_TEAM, 0)
        body["metadata"]["name"] = f"probe-{i}"
        body["spec"]["parallelism"] = body["spec"]["completions"] = 1
        latencies.append(api.create("job", body))
        i += 1
        time.sleep(0.2)
    stop.set()
    thread.join(timeout=30)
    after = _metrics(sim)
    key = 'costgov_webhook_request_duration_seconds_{}{{webhook="jobs"}}'
    served = after.get(key.format("count"), 0) - before.get(key.format("count"), 0)
    mean = (after.get(key.format("sum"), 0) - before.get(key.format("sum"), 0)) / max(served, 1)
    buckets = sorted(
        (float(re.search(r'le="([^"]+)"', k).group(1)), v - before.get(k, 0))  # type: ignore[union-attr]
        for k, v in after.items()
        if k.startswith("costgov_webhook_request_duration_seconds_bucket{") and '"jobs"' in k
    )
    p99 = next((le for le, n in buckets if n >= 0.99 * served), float("inf"))
    print(f"admission while Jobs churn: {len(latencies)} Job creates through the apiserver, "
          f"p50 {_pct(latencies, 0.5) * 1000:.0f} ms, p99 {_pct(latencies, 0.99) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms (client side); the webhook answered {served:.0f} "
          f"Job reviews, mean {mean * 1000:.1f} ms, p99 at most {p99 * 1000:.0f} ms "
          f"(histogram bucket)", flush=True)  # fmt: skip


def _settle(api: Api, every: float = 15) -> None:
    """Wait until the cluster is done with the churn: the pods' phase counts the same on
    two reads `every` seconds apart (the job controller, scheduler and kwok at rest)."""
    last: list[dict[str, int]] = [{}]

    def still() -> bool:
        now = api.pods()
        same, last[0] = now == last[0], now
        return same

    took = _wait("pods to settle after churn", still, 900, every)
    print(f"pods settled {took:.0f} s after the churn: {last[0]}", flush=True)


def _health(sim: cluster.Sim) -> str:
    """The operator's accounting cycles, leadership and RSS, for a log of the run."""
    try:
        found = _metrics(sim)
        rss = _proc(cluster.Processes(sim.root).pids["costgov"])[1]
    except (OSError, KeyError, ValueError) as exc:
        return f"unreadable ({exc})"
    return (f"{found.get('costgov_accounting_cycles_total', 0):.0f} cycles, "
            f"leader {found.get('costgov_leader', 0):.0f}, RSS {rss / 2**20:.0f} MiB")  # fmt: skip


def _ready_nodes(api: Api) -> int:
    return sum(
        1
        for n in api.core.list_node().items
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
    )


def _populate(api: Api, sim: cluster.Sim) -> None:
    took = time.monotonic()
    _many(api, "node", [_node(i) for i in range(NODES)])
    _wait("nodes Ready", lambda: _ready_nodes(api) >= NODES, 600)
    print(f"{NODES} nodes created and Ready in {time.monotonic() - took:.0f} s", flush=True)
    for kind, body in _governance():
        api.create(kind, body)
    time.sleep(5)  # the operator's indexes hold the budgets before Jobs come
    took = time.monotonic()
    per_team = TEAMS * BUDGETS_PER_TEAM
    bodies = [_job(j % TEAMS, (j // TEAMS) % BUDGETS_PER_TEAM, j // per_team) for j in range(JOBS)]
    creates = _many(api, "job", bodies)
    print(f"{JOBS} Jobs created through the webhook in {time.monotonic() - took:.0f} s: "
          f"p50 {_pct(creates, 0.5) * 1000:.0f} ms, p99 {_pct(creates, 0.99) * 1000:.0f} ms "
          f"per create (8 in parallel)", flush=True)  # fmt: skip
    want = min(NODES * 8, JOBS * PODS_PER_JOB)

    def running() -> bool:
        phases = api.pods()
        print(f"  pods: {phases}; operator: {_health(sim)}", flush=True)
        return phases.get("Running", 0) >= want

    took = _wait("pods Running", running, 1800, 15)
    print(f"pods Running: {want} in {took:.0f} s after the Jobs", flush=True)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="costgov-scale-"))
    began = time.monotonic()
    sim = cluster.up(root)
    try:
        print(f"simulated cluster up in {time.monotonic() - began:.0f} s ({root})", flush=True)
        if STANDINS_NICE:
            print(f"stand-ins for other machines at nice {STANDINS_NICE}: {', '.join(STANDINS)}")
            _nice_standins(root)
        api = Api(sim.cp.kubeconfig)
        _populate(api, sim)
        pid = cluster.Processes(root).pids["costgov"]
        since = datetime.now(UTC)
        took = _wait("complete status", lambda: _complete(api, since), 900, 5)
        print(f"complete status {took:.0f} s after the pods ran", flush=True)
        _steady(sim, pid, "after the pods ran")
        pid = _restart(sim, api)
        _steady(sim, pid, "after a restart")
        _churn_and_admit(api, sim)
        _steady(sim, pid, "right after Job churn")
        _settle(api)
        _steady(sim, pid, "once the pods settled after churn")
    finally:
        cluster.down(root)
        kept = Path(f"{root}-logs")
        kept.mkdir()
        for log in [*root.glob("*.log"), *root.glob("logs/*.log")]:
            log.rename(kept / log.name)
        subprocess.run(["rm", "-rf", str(root)], check=False)
        print(f"logs kept in {kept}", flush=True)
    print(f"total {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
