"""`helm install` and `helm upgrade` of the chart into the real kube-apiserver.

There is no kubelet here, so no pod runs: what is proven is what the apiserver stores. The
webhook's Secret, the caBundle of every webhook and the Deployment's pod-template checksums
are read back after each step, and the stored certificate is put through a TLS handshake
(in memory, Python's ssl) against the stored CA with the Service's DNS name, as the
apiserver would call the webhook: the key matches the certificate, the chain verifies, the
name is covered.

Each release is uninstalled at the end of its test, so no other test meets its
ValidatingWebhookConfiguration (costgov's own kinds are Fail, and nothing serves them).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .controlplane import ROOT, ControlPlane
from .operating import _tools

CHART = ROOT / "charts" / "costgov"
ONPREM = ROOT / "examples" / "pricing" / "onprem.yaml"


@dataclass
class Helm:
    cp: ControlPlane
    home: Path

    def __call__(self, *args: str) -> str:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        done = subprocess.run(
            [str(_tools() / "helm"), f"--kubeconfig={self.cp.kubeconfig}", *args],
            capture_output=True,
            text=True,
            env=env,
        )
        assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stderr}"
        return done.stdout


@dataclass
class Installed:
    """What the apiserver holds for one release after a helm command."""

    secret: dict[str, bytes]  # tls.crt, tls.key, ca.crt (decoded PEM)
    ca_bundles: list[bytes]  # every webhook's clientConfig.caBundle (decoded)
    checksums: dict[str, str]  # the Deployment pod template's checksum/* annotations
    service: str  # <svc>.<ns>.svc


def _get(cp: ControlPlane, *what: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(cp.kubectl("get", *what, "-o", "json").stdout)
    return out


def _read(cp: ControlPlane, release: str, ns: str) -> Installed:
    name = f"{release}-costgov"
    secret = _get(cp, "secret", f"{name}-webhook-tls", "-n", ns)
    hook = _get(cp, "validatingwebhookconfiguration", name)
    deployment = _get(cp, "deployment", name, "-n", ns)
    notes = deployment["spec"]["template"]["metadata"]["annotations"]
    return Installed(
        secret={k: base64.b64decode(v) for k, v in secret["data"].items()},
        ca_bundles=[base64.b64decode(w["clientConfig"]["caBundle"]) for w in hook["webhooks"]],
        checksums={k: v for k, v in notes.items() if k.startswith("checksum/")},
        service=f"{name}.{ns}.svc",
    )


def _handshake(cert: bytes, key: bytes, ca: bytes, hostname: str, tmp: Path) -> None:
    """A TLS handshake in memory: a server with `cert`/`key`, a client trusting only `ca`
    and asking for `hostname`. Raises ssl.SSLError when any of that does not hold."""
    (tmp / "tls.crt").write_bytes(cert)
    (tmp / "tls.key").write_bytes(key)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp / "tls.crt", tmp / "tls.key")  # the key matches the cert
    client_ctx = ssl.create_default_context(cadata=ca.decode())
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    from_server, from_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_ctx.wrap_bio(to_server, from_server, server_side=True)
    client = client_ctx.wrap_bio(to_client, from_client, server_hostname=hostname)
    finished: set[str] = set()
    for _ in range(8):  # TLS 1.3 needs two round trips
        for side, conn, outgoing, peer in (
            ("client", client, from_client, to_server),
            ("server", server, from_server, to_client),
        ):
            with contextlib.suppress(ssl.SSLWantReadError):
                conn.do_handshake()
                finished.add(side)
            peer.write(outgoing.read())
        if finished == {"client", "server"}:
            return
    raise AssertionError(f"TLS handshake unfinished: only {finished or 'nobody'} done")


def _assert_consistent(state: Installed, tmp: Path) -> None:
    """Every webhook trusts the CA in the Secret, and the serving certificate in the Secret
    is what a client trusting that CA accepts for the Service's name."""
    ca = state.secret["ca.crt"]
    assert state.ca_bundles and all(bundle == ca for bundle in state.ca_bundles)
    _handshake(state.secret["tls.crt"], state.secret["tls.key"], ca, state.service, tmp)


@contextlib.contextmanager
def _release(helm: Helm, release: str, ns: str, *values: str) -> Iterator[None]:
    helm("install", release, str(CHART), "-n", ns, "--create-namespace", *values)
    try:
        yield
    finally:
        helm("uninstall", release, "-n", ns)


@pytest.fixture
def helm(cp: ControlPlane, tmp_path: Path) -> Helm:
    return Helm(cp, tmp_path / "helm")


def test_upgrade_keeps_the_certificate_and_rolls_pods_only_for_new_prices(
    cp: ControlPlane, helm: Helm, tmp_path: Path
) -> None:
    ns, release = "upgrade-keep", "keep"
    with _release(helm, release, ns):
        installed = _read(cp, release, ns)
        _assert_consistent(installed, tmp_path)
        assert set(installed.checksums) == {"checksum/pricing", "checksum/webhook-tls"}

        helm("upgrade", release, str(CHART), "-n", ns)
        upgraded = _read(cp, release, ns)
        assert upgraded.secret == installed.secret  # the same CA, certificate and key
        assert upgraded.checksums == installed.checksums  # so the pods do not roll
        _assert_consistent(upgraded, tmp_path)

        catalog = tmp_path / "prices.yaml"
        catalog.write_text(ONPREM.read_text())
        helm("upgrade", release, str(CHART), "-n", ns, "--set-file", f"pricing.catalog={catalog}")
        priced = _read(cp, release, ns)
        cm = _get(cp, "configmap", f"{release}-costgov-pricing", "-n", ns)
        assert cm["data"]["prices.yaml"] == ONPREM.read_text()
        assert priced.checksums["checksum/pricing"] != upgraded.checksums["checksum/pricing"]
        assert (
            priced.checksums["checksum/webhook-tls"] == installed.checksums["checksum/webhook-tls"]
        )
        assert priced.secret == installed.secret
        _assert_consistent(priced, tmp_path)

        # the same catalog again: nothing rolls; a changed rate: the pods roll
        helm("upgrade", release, str(CHART), "-n", ns, "--set-file", f"pricing.catalog={catalog}")
        assert _read(cp, release, ns).checksums == priced.checksums
        catalog.write_text(ONPREM.read_text().replace('perGPUHour: "2.10"', 'perGPUHour: "2.25"'))
        helm("upgrade", release, str(CHART), "-n", ns, "--set-file", f"pricing.catalog={catalog}")
        repriced = _read(cp, release, ns)
        assert repriced.checksums["checksum/pricing"] != priced.checksums["checksum/pricing"]
        assert (
            repriced.checksums["checksum/webhook-tls"] == priced.checksums["checksum/webhook-tls"]
        )
        assert repriced.secret == installed.secret


def test_each_release_gets_its_own_ca(cp: ControlPlane, helm: Helm, tmp_path: Path) -> None:
    with _release(helm, "first", "upgrade-first"), _release(helm, "second", "upgrade-second"):
        first, second = _read(cp, "first", "upgrade-first"), _read(cp, "second", "upgrade-second")
        _assert_consistent(first, tmp_path)
        _assert_consistent(second, tmp_path)
        assert first.secret["ca.crt"] != second.secret["ca.crt"]
        assert first.checksums["checksum/webhook-tls"] != second.checksums["checksum/webhook-tls"]
        # the checks bite: another release's CA, or another name, is refused
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(
                first.secret["tls.crt"],
                first.secret["tls.key"],
                second.secret["ca.crt"],
                first.service,
                tmp_path,
            )
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(
                first.secret["tls.crt"],
                first.secret["tls.key"],
                first.secret["ca.crt"],
                second.service,
                tmp_path,
            )


@pytest.mark.parametrize(
    "annotate",
    [
        # fewer than 90 days left
        "costgov.io/not-after=2000-01-01T00:00:00Z",
        # made for other DNS names (a chart that changed the certificate's names)
        "costgov.io/dns-names=costgov.elsewhere.svc",
        # a Secret written by a chart from before these annotations: its age is unknown
        "costgov.io/not-after-",
    ],
)
def test_upgrade_renews_a_certificate_it_cannot_vouch_for(
    cp: ControlPlane, helm: Helm, tmp_path: Path, annotate: str
) -> None:
    ns, release = "upgrade-renew", "renew"
    with _release(helm, release, ns):
        installed = _read(cp, release, ns)
        cp.kubectl(
            "annotate", "--overwrite", "-n", ns, "secret", "renew-costgov-webhook-tls", annotate
        )
        helm("upgrade", release, str(CHART), "-n", ns)
        renewed = _read(cp, release, ns)
        assert renewed.secret["ca.crt"] != installed.secret["ca.crt"]
        assert renewed.secret["tls.crt"] != installed.secret["tls.crt"]
        assert (
            renewed.checksums["checksum/webhook-tls"] != installed.checksums["checksum/webhook-tls"]
        )
        assert renewed.checksums["checksum/pricing"] == installed.checksums["checksum/pricing"]
        _assert_consistent(renewed, tmp_path)
        secret = _get(cp, "secret", "renew-costgov-webhook-tls", "-n", ns)
        notes = secret["metadata"]["annotations"]
        assert notes["costgov.io/dns-names"].split(",")[0] == renewed.service
        not_after = datetime.fromisoformat(notes["costgov.io/not-after"])
        assert not_after - datetime.now(UTC) > timedelta(days=3649)  # ten years from now
        # and the renewed one is then kept
        helm("upgrade", release, str(CHART), "-n", ns)
        assert _read(cp, release, ns).secret == renewed.secret
