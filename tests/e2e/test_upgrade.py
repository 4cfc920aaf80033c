"""`helm install` and `helm upgrade` of the chart into the real kube-apiserver.

There is no kubelet here, so no pod runs: what is proven is what the apiserver stores. The
webhook's Secret, the caBundle of every webhook and the Deployment's pod-template checksums
are read back after each step, and the stored certificate is put through a TLS handshake
(in memory, Python's ssl) against the stored CA with the Service's DNS name, as the
apiserver would call the webhook: the key matches the certificate, the chain verifies, the
name is covered. Across a renewal the previous serving certificate (what the old pods serve
until they have rolled) is put through the same handshake against the new caBundle.

Each release is uninstalled at the end of its test, so no other test meets its
ValidatingWebhookConfiguration (costgov's own kinds are Fail, and nothing serves them).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from .controlplane import ROOT, ControlPlane, schemaless_crd
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

    secret: dict[str, bytes]  # tls.crt, tls.key, ca.crt, ca.key, ca-bundle.crt (decoded PEM)
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


def _pems(bundle: bytes) -> list[bytes]:
    """The certificates of a PEM bundle, in order, without surrounding whitespace."""
    return re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", bundle, re.S)


def _handshake(cert: bytes, key: bytes, ca: bytes, hostname: str, tmp: Path) -> None:
    """A TLS handshake in memory: a server with `cert`/`key`, a client trusting only `ca`
    (one CA or a bundle of them, as a caBundle) and asking for `hostname`. Raises
    ssl.SSLError when any of that does not hold."""
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
    """Every webhook trusts the bundle the Secret records, whose last CA is the Secret's
    ca.crt; the serving certificate in the Secret is what a client trusting ca.crt alone,
    or the bundle, accepts for the Service's name."""
    bundle = state.secret["ca-bundle.crt"]
    assert state.ca_bundles and all(published == bundle for published in state.ca_bundles)
    assert _pems(bundle)[-1:] == _pems(state.secret["ca.crt"])
    for trusted in (state.secret["ca.crt"], bundle):
        _handshake(state.secret["tls.crt"], state.secret["tls.key"], trusted, state.service, tmp)


def _assert_old_pods_trusted(old: Installed, new: Installed, tmp: Path) -> None:
    """The serving certificate of `old` (what the pods not yet rolled serve) is accepted by
    the caBundle `new` published."""
    _handshake(old.secret["tls.crt"], old.secret["tls.key"], new.ca_bundles[0], new.service, tmp)


def _annotations(cp: ControlPlane, release: str, ns: str) -> dict[str, str]:
    secret = _get(cp, "secret", f"{release}-costgov-webhook-tls", "-n", ns)
    notes: dict[str, str] = secret["metadata"]["annotations"]
    return notes


def _in(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        ["costgov.io/not-after=2000-01-01T00:00:00Z"],
        # made for other DNS names (a chart that changed the certificate's names)
        ["costgov.io/dns-names=costgov.elsewhere.svc"],
        # no expiry recorded: its age is unknown
        ["costgov.io/not-after-"],
    ],
)
def test_renewing_the_serving_certificate_keeps_the_ca_and_the_ca_bundle(
    cp: ControlPlane, helm: Helm, tmp_path: Path, annotate: list[str]
) -> None:
    ns, release = "upgrade-renew", "renew"
    with _release(helm, release, ns):
        installed = _read(cp, release, ns)
        _assert_consistent(installed, tmp_path)
        cp.kubectl(
            "annotate", "--overwrite", "-n", ns, "secret", "renew-costgov-webhook-tls", *annotate
        )
        helm("upgrade", release, str(CHART), "-n", ns)
        renewed = _read(cp, release, ns)
        assert renewed.secret["tls.crt"] != installed.secret["tls.crt"]
        assert renewed.secret["tls.key"] != installed.secret["tls.key"]
        for kept in ("ca.crt", "ca.key", "ca-bundle.crt"):
            assert renewed.secret[kept] == installed.secret[kept]
        assert renewed.ca_bundles == installed.ca_bundles  # byte for byte
        _assert_consistent(renewed, tmp_path)
        _assert_old_pods_trusted(installed, renewed, tmp_path)
        assert (
            renewed.checksums["checksum/webhook-tls"] != installed.checksums["checksum/webhook-tls"]
        )
        assert renewed.checksums["checksum/pricing"] == installed.checksums["checksum/pricing"]
        notes = _annotations(cp, release, ns)
        assert notes["costgov.io/dns-names"].split(",")[0] == renewed.service
        not_after = datetime.fromisoformat(notes["costgov.io/not-after"])
        ca_not_after = datetime.fromisoformat(notes["costgov.io/ca-not-after"])
        # as long as the CA it chains to lasts (ten years from the install), never longer
        assert not_after - datetime.now(UTC) > timedelta(days=3648)
        assert not_after <= ca_not_after
        # and the renewed one is then kept
        helm("upgrade", release, str(CHART), "-n", ns)
        again = _read(cp, release, ns)
        assert again.secret == renewed.secret and again.checksums == renewed.checksums


@pytest.mark.parametrize(
    "previous",
    ["an older chart", "a CA due within a year"],
)
def test_a_new_ca_is_published_next_to_the_old_one_until_the_next_renewal(
    cp: ControlPlane, helm: Helm, tmp_path: Path, previous: str
) -> None:
    ns, release = "upgrade-newca", "newca"
    secret = f"{release}-costgov-webhook-tls"
    with _release(helm, release, ns):
        installed = _read(cp, release, ns)
        if previous == "an older chart":  # the Secret as charts without ca.key wrote it
            cp.kubectl(
                "patch", "-n", ns, "secret", secret, "--type=json", "-p",
                '[{"op": "remove", "path": "/data/ca.key"},'
                ' {"op": "remove", "path": "/data/ca-bundle.crt"}]',
            )  # fmt: skip
            cp.kubectl(
                "annotate", "-n", ns, "secret", secret,
                "costgov.io/not-after-", "costgov.io/dns-names-", "costgov.io/ca-not-after-",
            )  # fmt: skip
        else:  # the serving certificate is due, and its CA has 200 days left
            cp.kubectl(
                "annotate", "--overwrite", "-n", ns, "secret", secret,
                "costgov.io/not-after=2000-01-01T00:00:00Z",
                f"costgov.io/ca-not-after={_in(200)}",
            )  # fmt: skip
        helm("upgrade", release, str(CHART), "-n", ns)
        renewed = _read(cp, release, ns)
        assert renewed.secret["ca.crt"] != installed.secret["ca.crt"]
        assert renewed.secret["ca.key"] != installed.secret["ca.key"]
        # the old CA, then the new one, in every webhook
        assert _pems(renewed.ca_bundles[0]) == [
            *_pems(installed.secret["ca.crt"]),
            *_pems(renewed.secret["ca.crt"]),
        ]
        _assert_consistent(renewed, tmp_path)  # the new pods are trusted
        _assert_old_pods_trusted(installed, renewed, tmp_path)  # and the old ones
        with pytest.raises(ssl.SSLCertVerificationError):  # thanks to the old CA only
            _handshake(
                installed.secret["tls.crt"],
                installed.secret["tls.key"],
                renewed.secret["ca.crt"],
                renewed.service,
                tmp_path,
            )
        assert (
            renewed.checksums["checksum/webhook-tls"] != installed.checksums["checksum/webhook-tls"]
        )
        notes = _annotations(cp, release, ns)
        ca_not_after = datetime.fromisoformat(notes["costgov.io/ca-not-after"])
        assert ca_not_after - datetime.now(UTC) > timedelta(days=3649)  # ten years from now

        # the next upgrade, nothing due: everything stays as published, both CAs included
        helm("upgrade", release, str(CHART), "-n", ns)
        stable = _read(cp, release, ns)
        assert stable.secret == renewed.secret
        assert stable.ca_bundles == renewed.ca_bundles
        assert stable.checksums == renewed.checksums

        # the next renewal of the serving certificate keeps the new CA and drops the old one
        cp.kubectl(
            "annotate", "--overwrite", "-n", ns, "secret", secret,
            "costgov.io/not-after=2000-01-01T00:00:00Z",
        )  # fmt: skip
        helm("upgrade", release, str(CHART), "-n", ns)
        later = _read(cp, release, ns)
        assert later.secret["ca.crt"] == renewed.secret["ca.crt"]
        assert _pems(later.ca_bundles[0]) == _pems(renewed.secret["ca.crt"])
        _assert_consistent(later, tmp_path)
        _assert_old_pods_trusted(renewed, later, tmp_path)


# Stand-ins for cert-manager's CRDs (schema-less: cert-manager is not installed here and
# nothing issues the Certificate), so that `helm install` can create the chart's
# Certificate and Issuer objects and `helm upgrade` can delete them again.
_CERT_MANAGER_KINDS = [("Certificate", "certificates"), ("Issuer", "issuers")]


@contextlib.contextmanager
def _cert_manager_kinds(cp: ControlPlane) -> Iterator[None]:
    names = [f"crd/{plural}.cert-manager.io" for _, plural in _CERT_MANAGER_KINDS]
    for kind, plural in _CERT_MANAGER_KINDS:
        cp.apply(schemaless_crd("cert-manager.io", kind, plural))
    cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    try:
        yield
    finally:
        cp.kubectl("delete", "--wait=true", *names)


def _mounted_secret(cp: ControlPlane, release: str, ns: str) -> str:
    deployment = _get(cp, "deployment", f"{release}-costgov", "-n", ns)
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    name: str = next(v for v in volumes if v["name"] == "certs")["secret"]["secretName"]
    return name


def test_switching_cert_manager_off_and_on(cp: ControlPlane, helm: Helm, tmp_path: Path) -> None:
    ns, release = "upgrade-cm", "cm"
    name = f"{release}-costgov"
    on, off = "webhook.certManager.enabled=true", "webhook.certManager.enabled=false"
    with _cert_manager_kinds(cp), _release(helm, release, ns, "--set", on):
        assert _mounted_secret(cp, release, ns) == f"{name}-webhook-cm-tls"
        _get(cp, "certificate", f"{name}-webhook", "-n", ns)
        # what cert-manager would have written (a CA and a certificate for the Service),
        # and keeps when the Certificate is deleted
        rendered = helm("template", release, str(CHART), "-n", ns)
        issued = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Secret")
        cp.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {"name": f"{name}-webhook-cm-tls", "namespace": ns},
                "data": {k: issued["data"][k] for k in ("tls.crt", "tls.key", "ca.crt")},
            }
        )
        by_cert_manager = Installed(
            secret={k: base64.b64decode(v) for k, v in issued["data"].items()},
            ca_bundles=[],
            checksums={},
            service=f"{name}.{ns}.svc",
        )

        helm("upgrade", release, str(CHART), "-n", ns, "--set", off)  # no name collision
        switched = _read(cp, release, ns)
        assert _mounted_secret(cp, release, ns) == f"{name}-webhook-tls"
        assert not cp.kubectl("get", "certificate", "-n", ns, "-o", "name").stdout.strip()
        _get(cp, "secret", f"{name}-webhook-cm-tls", "-n", ns)  # cert-manager's, left alone
        _assert_consistent(switched, tmp_path)
        # the pods still on cert-manager's certificate are trusted while they roll
        assert _pems(switched.ca_bundles[0])[0] == _pems(by_cert_manager.secret["ca.crt"])[0]
        _assert_old_pods_trusted(by_cert_manager, switched, tmp_path)
        helm("upgrade", release, str(CHART), "-n", ns, "--set", off)
        assert _read(cp, release, ns) == switched

        helm("upgrade", release, str(CHART), "-n", ns, "--set", on)  # and back
        assert _mounted_secret(cp, release, ns) == f"{name}-webhook-cm-tls"
        _get(cp, "certificate", f"{name}-webhook", "-n", ns)
        left = cp.kubectl("get", "secret", "-n", ns, f"{name}-webhook-tls", check=False)
        assert left.returncode != 0 and "NotFound" in left.stderr  # the chart's own, deleted
        _get(cp, "secret", f"{name}-webhook-cm-tls", "-n", ns)  # cert-manager's untouched
        hook = _get(cp, "validatingwebhookconfiguration", name)
        assert hook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
            f"{ns}/{name}-webhook"
        )
