"""The simulated GPU cluster: the real control plane and exporters, no containers.

etcd, kube-apiserver, kube-scheduler and kube-controller-manager (built from Go modules by
hack/build-control-plane.sh and hack/build-sim.sh), kwok playing the kubelets of the fake GPU
nodes in nodepool.yaml and serving fake dcgm-exporter and vLLM metrics (kwok-metrics.yaml),
kube-state-metrics with a node-label allow-list, and Prometheus scraping both, and the
operator's /metrics, every few seconds. On top, the chart (CRDs, RBAC, webhook configuration pointed at loopback) and
`costgov run` under the chart's ServiceAccount.

Every process runs in its own session, so the cluster outlives `make sim-up`; the pids are in
`<dir>/pids.json` and `make sim-down` stops them, etcd last.
    python -m tests.sim.cluster up|down|status [--dir .sim]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tests.e2e.controlplane import (
    ROOT,
    ControlPlane,
    _certs,
    _free_port,
    _run,
    _wait_ready,
    admin_kubeconfig,
    apiserver_argv,
    binaries,
    etcd_argv,
)
from tests.e2e.operating import Launcher, Operator, in_process, install_chart

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = ROOT / ".sim"
SCRAPE_SECONDS = int(os.environ.get("SIM_SCRAPE_SECONDS", "5"))
"""Prometheus scrapes kube-state-metrics and kwok this often (dollars are checked to about
one sample step; see tests/sim/README in docs/testing.md)."""
NODE_LABELS = (
    "node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type",
    "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
    "karpenter.sh/capacity-type", "eks.amazonaws.com/capacityType",
    "cloud.google.com/gke-spot", "cloud.google.com/gke-preemptible",
    "kubernetes.azure.com/scalesetpriority", "nvidia.com/gpu.product", "nvidia.com/gpu.count",
    "costgov.io/provider",
)  # fmt: skip
"""The node labels kube-state-metrics is allowed to export: what docs/operator.md tells users
to put in --metric-labels-allowlist."""
CONTROLLERS = (
    "job-controller", "replicaset-controller", "deployment-controller",
    "garbage-collector-controller", "namespace-controller", "node-lifecycle-controller",
    "pod-garbage-collector-controller", "ttl-after-finished-controller",
)  # fmt: skip
KWOK_STAGES = (
    "node-fast-node-initialize.yaml",
    "node-heartbeat-with-lease-node-heartbeat-with-lease.yaml",
    "pod-fast-pod-ready.yaml",
    "pod-fast-pod-delete.yaml",
    "pod-general-pod-complete.yaml",
)

COMPLETE_AFTER = "pod-complete.stage.kwok.x-k8s.io/delay"
"""A Job pod with this annotation (e.g. "30s") completes that long after it runs (kwok's
pod-complete stage); without it, it runs until deleted."""


def sim_binaries() -> Path:
    """kube-scheduler, kube-controller-manager, kwok and kube-state-metrics (built once)."""
    return Path(_run("bash", str(ROOT / "hack" / "build-sim.sh")).strip().splitlines()[-1])


@dataclass
class Sim:
    """A running simulated cluster, as `up` left it (and `load` reads it back)."""

    root: Path
    cp: ControlPlane
    prometheus_url: str
    operator_env: dict[str, str]

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.operator_env['COSTGOV_METRICS_PORT']}/metrics"

    @property
    def webhook_url(self) -> str:
        return f"https://127.0.0.1:{self.operator_env['COSTGOV_WEBHOOK_PORT']}"


class Processes:
    """The processes a sim started, by name, remembered in pids.json."""

    def __init__(self, root: Path) -> None:
        self.root, self.file = root, root / "pids.json"
        self.pids: dict[str, int] = json.loads(self.file.read_text()) if self.file.exists() else {}
        (root / "logs").mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.root / "logs" / f"{name}.log").open("a")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root
        )
        self.add(name, proc.pid)
        return proc

    def add(self, name: str, pid: int) -> None:
        self.pids[name] = pid
        self.file.write_text(json.dumps(self.pids, indent=1))

    def alive(self) -> dict[str, bool]:
        return {name: _alive(pid) for name, pid in self.pids.items()}

    def stop_all(self) -> None:
        """Everything in reverse start order, etcd last (apiservers stopped together with
        etcd were seen to hang); SIGKILL whatever outlives 20 s."""
        last = [n for n in self.pids if n == "etcd"]
        for name in [n for n in reversed(self.pids) if n != "etcd"] + last:
            pid = self.pids[name]
            _signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal(pid, signal.SIGKILL)
        self.file.unlink(missing_ok=True)
        self.pids = {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of this process is not alive
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # each process leads its own session and group


def _wait_http(url: str, what: str, procs: Processes, name: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(procs.pids[name]):
            log = (procs.root / "logs" / f"{name}.log").read_text()[-3000:]
            raise RuntimeError(f"{name} exited:\n{log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} not ready in {timeout:.0f}s at {url}")


def _control_plane(root: Path, procs: Processes) -> ControlPlane:
    bins = binaries()
    _certs(root)
    etcd_port, peer, api_port = _free_port(), _free_port(), _free_port()
    procs.start("etcd", etcd_argv(bins, root, etcd_port, peer))
    api = procs.start("kube-apiserver", apiserver_argv(bins, root, etcd_port, api_port))
    url = f"https://127.0.0.1:{api_port}"
    _wait_ready(url, root / "ca.crt", root / "admin.crt", root / "admin.key", api,
                root / "logs" / "kube-apiserver.log")  # fmt: skip
    kubeconfig = root / "kubeconfig"
    kubeconfig.write_text(json.dumps(admin_kubeconfig(url, root)))
    return ControlPlane(url, kubeconfig, root)


def _qps() -> list[str]:
    """SIM_KUBE_API_QPS raises the scheduler's and controllers' client rate limits (20 and
    50 requests/s by default): the scale benchmark creates 10,000 pods."""
    qps = os.environ.get("SIM_KUBE_API_QPS")
    return [f"--kube-api-qps={qps}", f"--kube-api-burst={2 * int(qps)}"] if qps else []


def _controllers(cp: ControlPlane, procs: Processes, bins: Path) -> None:
    """kube-scheduler, and kube-controller-manager whose controllers act as their own
    ServiceAccounts (system:serviceaccount:kube-system:job-controller, ...), as in a real
    cluster: costgov's webhook tells controllers from people by exactly that."""
    common = [f"--kubeconfig={cp.kubeconfig}", "--leader-elect=false", "--secure-port=0"]
    procs.start("kube-scheduler", [str(bins / "kube-scheduler"), *common, *_qps()])
    procs.start("kube-controller-manager", [
        str(bins / "kube-controller-manager"), *common,
        "--use-service-account-credentials=true", f"--root-ca-file={cp.root / 'ca.crt'}",
        f"--controllers={','.join(CONTROLLERS)}",
        "--node-monitor-grace-period=40s", "--concurrent-job-syncs=10",
        *_qps(),
    ])  # fmt: skip


def _kwok(cp: ControlPlane, procs: Processes, bins: Path) -> int:
    port = _free_port()
    options = {
        "manageNodesWithAnnotationSelector": "kwok.x-k8s.io/node=fake",
        "serverAddress": f"127.0.0.1:{port}",
        "nodeLeaseParallelism": 4,
        "podPlayStageParallelism": 4,
        "nodePlayStageParallelism": 4,
        "podsOnNodeSyncParallelism": 4,
        "nodeLeaseDurationSeconds": 40,
        "cidr": "10.0.0.0/16",  # pod IPs: the default /24 runs out past 254 pods
    }
    docs: list[Any] = [
        {"apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "KwokConfiguration",
         "options": options},
    ]  # fmt: skip
    for stage in KWOK_STAGES:
        docs += [d for d in yaml.safe_load_all((bins / "kwok-stages" / stage).read_text()) if d]
    for doc in docs:  # Job pods run until deleted, unless they ask to complete after a delay
        if doc.get("metadata", {}).get("name") == "pod-complete":
            doc["spec"]["selector"]["matchExpressions"].append(
                {"key": f'.metadata.annotations["{COMPLETE_AFTER}"]', "operator": "Exists"}
            )
    docs += [d for d in yaml.safe_load_all((HERE / "kwok-metrics.yaml").read_text()) if d]
    config = cp.root / "kwok.yaml"
    config.write_text(yaml.safe_dump_all(docs))
    procs.start("kwok", [
        str(bins / "kwok"), f"--kubeconfig={cp.kubeconfig}", f"--config={config}",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        f"--server-address=127.0.0.1:{port}",
    ])  # fmt: skip
    _wait_http(f"http://127.0.0.1:{port}/healthz", "kwok", procs, "kwok")
    return port


def _ksm(cp: ControlPlane, procs: Processes, bins: Path) -> int:
    port, telemetry = _free_port(), _free_port()
    procs.start("kube-state-metrics", [
        str(bins / "kube-state-metrics"), f"--kubeconfig={cp.kubeconfig}",
        "--host=127.0.0.1", f"--port={port}",
        "--telemetry-host=127.0.0.1", f"--telemetry-port={telemetry}",
        "--resources=pods,nodes,jobs,namespaces,deployments,replicasets,statefulsets,cronjobs",
        f"--metric-labels-allowlist=nodes=[{','.join(NODE_LABELS)}]",
    ])  # fmt: skip
    _wait_http(f"http://127.0.0.1:{port}/healthz", "kube-state-metrics", procs,
               "kube-state-metrics")  # fmt: skip
    return port


def _prometheus(root: Path, procs: Processes, ksm: int, kwok: int, costgov: int) -> str:
    """Prometheus scraping kube-state-metrics, kwok's fake exporters and the operator's
    /metrics (as the chart's ServiceMonitor does, honouring costgov's own `namespace`)."""
    port = _free_port()
    config = {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": "5s"},
        "scrape_configs": [
            {"job_name": "kube-state-metrics", "honor_labels": True,
             "static_configs": [{"targets": [f"127.0.0.1:{ksm}"]}]},
            {"job_name": "kwok", "honor_labels": True,
             "http_sd_configs": [{"url": f"http://127.0.0.1:{kwok}/discovery/prometheus",
                                  "refresh_interval": "5s"}]},
            {"job_name": "costgov", "honor_labels": True,
             "static_configs": [{"targets": [f"127.0.0.1:{costgov}"]}]},
        ],
    }  # fmt: skip
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    procs.start("prometheus", [
        "prometheus", f"--config.file={root / 'prometheus.yml'}",
        f"--storage.tsdb.path={root / 'prometheus'}", f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=2d",
    ])  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    _wait_http(f"{url}/-/ready", "Prometheus", procs, "prometheus")
    return url


def _operator(
    cp: ControlPlane, procs: Processes, prometheus: str, launch: Launcher, metrics: int
) -> dict[str, str]:
    cp.kubectl("apply", "--server-side", "-f", str(ROOT / "charts" / "costgov" / "crds"))
    cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    webhook, port, cert, key = install_chart(cp)
    op = Operator(cp, port, cert, key, launch, detach=True, settings={
        "COSTGOV_PROMETHEUS_URL": prometheus,
        "COSTGOV_QUERY_RETRIES": "1",
        "COSTGOV_QUERY_TIMEOUT_SECONDS": os.environ.get("SIM_QUERY_TIMEOUT_SECONDS", "5"),
        "COSTGOV_RECONCILE_INTERVAL_SECONDS": os.environ.get("SIM_RECONCILE_SECONDS", "10"),
        "COSTGOV_SAMPLE_STEP_SECONDS": "15",
        "COSTGOV_METRICS_PORT": str(metrics),
    })  # fmt: skip
    op.start()
    assert op.proc is not None
    procs.add("costgov", op.proc.pid)
    cp.apply(webhook)
    return {k: v for k, v in op.env.items() if k.startswith("COSTGOV_") or k == "KUBECONFIG"}


def up(root: Path = DEFAULT_DIR, launch: Launcher = in_process) -> Sim:
    """Start the whole simulated cluster under `root` (which must not hold a running one);
    `launch` says how the operator starts (this checkout, or the container image)."""
    procs = Processes(root) if root.exists() else None
    if procs is not None and any(procs.alive().values()):
        raise RuntimeError(f"a simulated cluster already runs from {root}: `make sim-down` first")
    bins = sim_binaries()
    subprocess.run(["rm", "-rf", str(root)], check=True)
    root.mkdir(parents=True)
    procs = Processes(root)
    try:
        cp = _control_plane(root, procs)
        _controllers(cp, procs, bins)
        cp.kubectl("apply", "-f", str(HERE / "nodepool.yaml"))
        kwok = _kwok(cp, procs, bins)
        ksm = _ksm(cp, procs, bins)
        metrics = _free_port()  # the operator's /metrics, scraped once it listens
        prometheus = _prometheus(root, procs, ksm, kwok, metrics)
        env = _operator(cp, procs, prometheus, launch, metrics)
    except BaseException:
        procs.stop_all()
        raise
    sim = Sim(root, cp, prometheus, env)
    _write_env(sim)
    return sim


def _write_env(sim: Sim) -> None:
    lines = {
        "KUBECONFIG": str(sim.cp.kubeconfig),
        "KUBE_APISERVER_URL": sim.cp.url,
        "PROMETHEUS_URL": sim.prometheus_url,
        "COSTGOV_METRICS_URL": sim.metrics_url,
        "COSTGOV_WEBHOOK_URL": sim.webhook_url,
    }
    (sim.root / "env").write_text("".join(f"export {k}={v}\n" for k, v in lines.items()))
    (sim.root / "operator-env.json").write_text(json.dumps(sim.operator_env, indent=1))


def load(root: Path = DEFAULT_DIR) -> Sim:
    """The simulated cluster `up` started under `root`."""
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in (root / "env").read_text().splitlines()
    )
    cp = ControlPlane(env["KUBE_APISERVER_URL"], Path(env["KUBECONFIG"]), root)
    operator_env = json.loads((root / "operator-env.json").read_text())
    return Sim(root, cp, env["PROMETHEUS_URL"], operator_env)


def down(root: Path = DEFAULT_DIR) -> None:
    Processes(root).stop_all()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim.cluster")
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    if args.action == "up":
        sim = up(args.dir)
        print(f"simulated GPU cluster up: `source {sim.root / 'env'}`, then kubectl get nodes")
        print((sim.root / "env").read_text(), end="")
    elif args.action == "down":
        down(args.dir)
        print("simulated cluster stopped")
    else:
        for name, alive in Processes(args.dir).alive().items():
            print(f"{name:26} {'running' if alive else 'EXITED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
