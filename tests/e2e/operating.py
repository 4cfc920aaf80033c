"""The operator running on the real apiserver as the Helm chart installs it, for e2e tests.

- The chart is rendered with helm; its ServiceAccount, ClusterRole and ClusterRoleBinding are
  applied, and `costgov run` runs as a subprocess with that ServiceAccount's token: the
  chart's RBAC is enough (status, events, Job patches) and bounded (`auth can-i`).
- The chart's ValidatingWebhookConfiguration is applied as rendered (rules, scope,
  matchConditions, timeout, failurePolicy), except `clientConfig`: there is no Service
  network here, so it points at the operator's loopback address with a test certificate.
  The apiserver then calls the webhook over TLS and relays answers to kubectl.
- `running_operator` removes the webhook configuration when it stops the operator, so no
  other test meets a webhook nobody serves.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from .controlplane import ROOT, ControlPlane, _free_port, _run

NS = "costgov-system"
SA = "costgov-costgov"
LEASE = SA
"""The chart's leader Lease (named like everything else of the release)."""


def _tools() -> Path:
    out = _run("bash", str(ROOT / "hack" / "build-tools.sh"))
    return Path(out.strip().splitlines()[-1])


def _render(api_versions: tuple[str, ...] = (), **values: str) -> list[dict[str, Any]]:
    """The chart as `helm template` renders it; `api_versions` are the group/version/Kinds
    the cluster serves beyond the built-in ones (what `helm install` would discover)."""
    sets = [arg for k, v in values.items() for arg in ("--set", f"{k}={v}")]
    sets += [arg for v in api_versions for arg in ("--api-versions", v)]
    text = _run(
        str(_tools() / "helm"),
        "template",
        "costgov",
        str(ROOT / "charts" / "costgov"),
        "-n",
        NS,
        *sets,
    )
    return [d for d in yaml.safe_load_all(text) if d]


def _webhook_cert(cp: ControlPlane) -> tuple[Path, Path]:
    d = cp.root
    (d / "webhook.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "webhook.key",
        "-out",
        "webhook.csr",
        "-subj",
        "/CN=costgov-webhook",
        cwd=d,
    )
    _run(
        "openssl",
        "x509",
        "-req",
        "-in",
        "webhook.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "webhook.crt",
        "-days",
        "2",
        "-extfile",
        "webhook.ext",
        cwd=d,
    )
    return d / "webhook.crt", d / "webhook.key"


Launcher = Callable[[dict[str, str], tuple[Path, ...]], list[str]]
"""How to start `costgov run`: from the environment and the files it reads (kubeconfig, CA,
webhook certificate and key), the command line."""


def in_process(env: dict[str, str], files: tuple[Path, ...]) -> list[str]:
    """`costgov run` from this checkout, under this interpreter."""
    return [sys.executable, "-m", "costgov", "run"]


class Operator:
    def __init__(
        self,
        cp: ControlPlane,
        port: int,
        cert: Path,
        key: Path,
        launch: Launcher = in_process,
        settings: dict[str, str] | None = None,
        detach: bool = False,
    ) -> None:
        self.cp, self.port, self.cert, self.key, self.launch = cp, port, cert, key, launch
        self.settings = settings or {}  # COSTGOV_* over the defaults below
        self.detach = detach  # its own session: outlives the process that started it
        self.proc: subprocess.Popen[bytes] | None = None
        self.webhook: dict[str, Any] = {}
        self.log_path = cp.root / f"operator-{port}.log"  # one per operator: no mixed logs

    def start(self) -> None:
        self._start(0)

    def _port_taken(self) -> bool:
        """The operator died binding its metrics or liveness port: `_free_port()` found it
        free, then another process's connection took it (the webhook's is kept)."""
        tail = self.log_path.read_text()[-3000:]
        return "address already in use" in tail and f", {self.port})" not in tail

    def _start(self, retries: int) -> None:
        token = self.cp.kubectl("create", "token", SA, "-n", NS, "--duration=2h").stdout.strip()
        kubeconfig = self.cp.root / "operator.kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "op",
                    "clusters": [
                        {
                            "name": "e2e",
                            "cluster": {
                                "server": self.cp.url,
                                "certificate-authority": str(self.cp.root / "ca.crt"),
                            },
                        }
                    ],
                    "users": [{"name": "sa", "user": {"token": token}}],
                    "contexts": [{"name": "op", "context": {"cluster": "e2e", "user": "sa"}}],
                }
            )
        )
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "COSTGOV_PROMETHEUS_URL": f"http://127.0.0.1:{_free_port()}",
            "COSTGOV_QUERY_RETRIES": "0",
            "COSTGOV_QUERY_TIMEOUT_SECONDS": "1",
            "COSTGOV_RECONCILE_INTERVAL_SECONDS": "2",
            "COSTGOV_WEBHOOK_HOST": "127.0.0.1",
            "COSTGOV_WEBHOOK_PORT": str(self.port),
            "COSTGOV_WEBHOOK_CERT_FILE": str(self.cert),
            "COSTGOV_WEBHOOK_KEY_FILE": str(self.key),
            "COSTGOV_METRICS_PORT": str(_free_port()),
            "COSTGOV_LIVENESS_PORT": str(_free_port()),
            # as the chart runs it: elected with the chart's Lease, named like a pod
            "COSTGOV_LEADER_LEASE": LEASE,
            "COSTGOV_IDENTITY": f"costgov-{self.port}",
            **self.settings,
        }
        self.env = env
        log = self.log_path.open("a")
        files = (kubeconfig, self.cp.root / "ca.crt", self.cert, self.key)
        self.proc = subprocess.Popen(
            self.launch(env, files),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=self.detach,
        )
        for _ in range(150):
            if self.proc.poll() is not None:
                if self._port_taken() and retries < 2:
                    self._start(retries + 1)  # another process took a free port
                    return
                raise RuntimeError(self.log_path.read_text()[-3000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the operator's webhook never listened")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def log(self) -> str:
        return self.log_path.read_text()


PEOPLE = ("alice", "bob", "carol", "dan", "dave", "eve", "frank", "mary", "victor")
"""The people of the tests: requesters, approvers and a developer or two."""
USERS_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "costgov-users"},
    "rules": [
        {
            "apiGroups": ["costgov.io"],
            "resources": ["*"],
            "verbs": ["get", "list", "create", "patch", "update"],
        },
        {
            "apiGroups": ["batch"],
            "resources": ["jobs"],
            "verbs": ["get", "list", "create", "patch", "update"],
        },
        {
            "apiGroups": ["apps"],
            "resources": ["deployments", "statefulsets", "deployments/scale"],
            "verbs": ["get", "list", "create", "patch", "update"],
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "create"]},
        {
            "apiGroups": ["kubeflow.org"],
            "resources": ["pytorchjobs"],
            "verbs": ["get", "list", "create", "patch", "update"],
        },
    ],
}
USERS_BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "costgov-users"},
    "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "costgov-users",
    },
    "subjects": [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name} for name in PEOPLE
    ],
}


def _rbac_in_effect(cp: ControlPlane) -> None:
    """The apiserver's authorizer follows new bindings within moments; start the operator
    once they hold, so a first 403 is never a race but a real gap in the chart's RBAC."""
    who = f"--as=system:serviceaccount:{NS}:{SA}"
    for _ in range(50):
        checks: list[tuple[str, ...]] = [("list", "statefulsets.apps")]
        checks += [("list", "costapprovals.costgov.io")]
        checks += [("update", f"leases.coordination.k8s.io/{LEASE}", "-n", NS)]
        if all(
            cp.kubectl("auth", "can-i", *check, who, check=False).stdout.strip() == "yes"
            for check in checks
        ):
            return
        time.sleep(0.2)
    raise AssertionError("the chart's RBAC never took effect")


def install_chart(
    cp: ControlPlane, api_versions: tuple[str, ...] = (), **values: str
) -> tuple[dict[str, Any], int, Path, Path]:
    """The chart's namespace, ServiceAccount and RBAC applied; its webhook configuration
    pointed at a free loopback port (not applied yet: nobody serves it); the PEOPLE may
    create workloads. Returns the webhook configuration, the port, the certificate and key."""
    docs = _render(api_versions, **values)
    kinds = {d["kind"]: d for d in docs}
    cp.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        cp.apply(kinds[kind])
    cp.apply(USERS_ROLE)
    cp.apply(USERS_BINDING)
    _rbac_in_effect(cp)
    port = _free_port()
    cert, key = _webhook_cert(cp)
    webhook = kinds["ValidatingWebhookConfiguration"]
    ca = base64.b64encode((cp.root / "ca.crt").read_bytes()).decode()
    for hook in webhook["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca}
    return webhook, port, cert, key


@contextlib.contextmanager
def running_operator(
    cp: ControlPlane,
    api_versions: tuple[str, ...] = (),
    launch: Launcher = in_process,
    **values: str,
) -> Iterator[Operator]:
    """The chart's RBAC and webhook configuration (with `values`), and the operator under
    its ServiceAccount; the PEOPLE may create workloads (RBAC is not what
    these tests are about: costgov's admission is)."""
    webhook, port, cert, key = install_chart(cp, api_versions, **values)
    op = Operator(cp, port, cert, key, launch)
    op.webhook = webhook
    op.start()
    cp.apply(webhook)
    try:
        yield op
    finally:
        op.stop()
        cp.kubectl("delete", "validatingwebhookconfiguration", webhook["metadata"]["name"],
                   "--ignore-not-found")  # fmt: skip
