"""The Helm chart: lint, render, the values schema, kubeconform on the examples with the
CRDs' schemas, and the rendered manifests accepted by the real apiserver (dry run).

kubeconform's schemas for core kinds live on the internet, which this machine cannot reach;
core kinds are therefore validated by the real kube-apiserver (server-side dry run), which
is stricter anyway. Our own kinds are validated by kubeconform with schemas taken from
crds/.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .controlplane import ROOT, ControlPlane, _run
from .operating import _tools

CHART = ROOT / "charts" / "costgov"


def _template(*sets: str, api_versions: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    args = [arg for s in sets for arg in ("--set", s)]
    args += [arg for v in api_versions for arg in ("--api-versions", v)]
    return subprocess.run(
        [str(_tools() / "helm"), "template", "costgov", str(CHART), "-n", "costgov-system", *args],
        capture_output=True,
        text=True,
    )


def _docs(*sets: str, api_versions: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    done = _template(*sets, api_versions=api_versions)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_helm_lint() -> None:
    out = _run(str(_tools() / "helm"), "lint", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in out


def test_webhook_configuration_is_scoped_and_bounded() -> None:
    (hook,) = [d for d in _docs() if d["kind"] == "ValidatingWebhookConfiguration"]
    names = {w["name"] for w in hook["webhooks"]}
    assert names == {
        f"{r}.costgov.io"
        for r in (
            "jobs",
            "cronjobs",
            "pods",
            "deployments",
            "statefulsets",
            "replicasets",
            "deployments-scale",
            "statefulsets-scale",
            "replicasets-scale",
            "costpolicies",
            "trainingjobbudgets",
            "inferencedeployments",
            "costapprovals",
        )
    }
    own = ("costpolicies", "trainingjob", "inference", "costapprovals")
    for w in hook["webhooks"]:
        assert w["timeoutSeconds"] <= 5
        # GPU work: Ignore by default (Fail is a value away); costgov's own resources carry
        # approvals and are never written unchecked.
        assert w["failurePolicy"] == ("Fail" if w["name"].startswith(own) else "Ignore")
        assert w["sideEffects"] == "NoneOnDryRun"
        excluded = w["namespaceSelector"]["matchExpressions"][0]
        assert excluded["operator"] == "NotIn"
        assert set(excluded["values"]) == {"kube-system", "costgov-system"}
        assert set(w["rules"][0]["operations"]) == {"CREATE", "UPDATE"}
        if not w["name"].startswith(own) and "scale" not in w["name"]:
            expression = w["matchConditions"][0]["expression"]
            assert "'nvidia.com/gpu'" in expression and "'amd.com/gpu'" in expression
            assert "'nvidia.com/mig-'" in expression
    fail = next(
        d
        for d in _docs("webhook.failurePolicy=Fail")
        if d["kind"] == "ValidatingWebhookConfiguration"
    )
    assert {w["failurePolicy"] for w in fail["webhooks"]} == {"Fail"}


CRD_KINDS = {
    "kubeflow.org/v1/PyTorchJob": "pytorchjobs",
    "kubeflow.org/v1/TFJob": "tfjobs",
    "kubeflow.org/v2beta1/MPIJob": "mpijobs",
    "kubeflow.org/v1/XGBoostJob": "xgboostjobs",
    "kubeflow.org/v1/PaddleJob": "paddlejobs",
    "kubeflow.org/v1/JAXJob": "jaxjobs",
    "jobset.x-k8s.io/v1alpha2/JobSet": "jobsets",
    "leaderworkerset.x-k8s.io/v1/LeaderWorkerSet": "leaderworkersets",
    "ray.io/v1/RayJob": "rayjobs",
    "ray.io/v1/RayCluster": "rayclusters",
}


@pytest.mark.parametrize(("gvk", "plural"), sorted(CRD_KINDS.items()))
def test_other_projects_kinds_are_judged_only_where_their_crds_exist(gvk: str, plural: str) -> None:
    without = {d["kind"]: d for d in _docs()}
    assert f"{plural}.costgov.io" not in {
        w["name"] for w in without["ValidatingWebhookConfiguration"]["webhooks"]
    }
    # read access either way: the operator watches the kind as soon as its CRD appears, also
    # when it is installed after costgov (a forbidden watch would fail its every retry)
    [rule] = [r for r in without["ClusterRole"]["rules"] if plural in r["resources"]]
    assert rule["verbs"] == ["get", "list", "watch"]
    docs = {d["kind"]: d for d in _docs(api_versions=(gvk,))}
    [hook] = [
        w
        for w in docs["ValidatingWebhookConfiguration"]["webhooks"]
        if w["name"] == f"{plural}.costgov.io"
    ]
    group = gvk.split("/")[0]
    assert hook["rules"][0]["apiGroups"] == [group] and hook["rules"][0]["resources"] == [plural]
    assert hook["clientConfig"]["service"]["path"] == f"/{plural}"
    [rule] = [r for r in docs["ClusterRole"]["rules"] if plural in r["resources"]]
    assert rule["verbs"] == ["get", "list", "watch"]


def test_rbac_has_no_delete_and_no_secrets() -> None:
    (role,) = [d for d in _docs() if d["kind"] == "ClusterRole"]
    for rule in role["rules"]:
        assert "delete" not in rule["verbs"] and "*" not in rule["verbs"]
        assert "secrets" not in rule["resources"]


def test_deployment_is_hardened() -> None:
    (dep,) = [d for d in _docs() if d["kind"] == "Deployment"]
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"] and container["readinessProbe"]
    assert container["resources"]["limits"]
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


def test_pods_roll_with_the_certificate_and_prices_the_chart_ships() -> None:
    """The Deployment's checksums are over what this same render ships: the Secret's data
    (generated once per render, shared by the Secret, every caBundle and the checksum) and
    the pricing catalog. test_upgrade.py proves they hold still across `helm upgrade`."""
    docs = {d["kind"]: d for d in _docs("pricing.catalog=version: x")}
    secret = docs["Secret"]["data"]
    notes = docs["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    shipped = json.dumps(secret, sort_keys=True, separators=(",", ":"))
    assert notes["checksum/webhook-tls"] == hashlib.sha256(shipped.encode()).hexdigest()
    assert notes["checksum/pricing"] == hashlib.sha256(b"version: x").hexdigest()
    hooks = docs["ValidatingWebhookConfiguration"]["webhooks"]
    # at install (no Secret to look up) the caBundle is the one new CA
    assert {w["clientConfig"]["caBundle"] for w in hooks} == {secret["ca-bundle.crt"]}
    assert secret["ca-bundle.crt"] == secret["ca.crt"]
    assert set(secret) == {"tls.crt", "tls.key", "ca.crt", "ca.key", "ca-bundle.crt"}
    # cert-manager renews its own Secret: no checksum Helm could keep current
    docs = {d["kind"]: d for d in _docs("webhook.certManager.enabled=true")}
    notes = docs["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/webhook-tls" not in notes


def test_without_the_webhook_nothing_mounts_its_certificate() -> None:
    # webhook.enabled=false renders no TLS Secret: a pod mounting it would never start
    docs = _docs("webhook.enabled=false")
    assert not [d for d in docs if d["kind"] in ("Secret", "ValidatingWebhookConfiguration")]
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    env = {e["name"] for e in pod["containers"][0]["env"]}
    assert "COSTGOV_WEBHOOK_CERT_FILE" not in env and "COSTGOV_WEBHOOK_KEY_FILE" not in env


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("webhook.timeoutSeconds=10", "timeoutSeconds"),
        ("webhook.failurePolicy=Maybe", "failurePolicy"),
        ("prometheus.url=not-a-url", "url"),
        ("replicaz=2", "replicaz"),
    ],
)
def test_values_schema_rejects_bad_values(value: str, message: str) -> None:
    done = _template(value)
    assert done.returncode != 0 and message in done.stderr


def test_optional_features_render() -> None:
    kinds = {
        d["kind"]
        for d in _docs(
            "webhook.certManager.enabled=true",
            "metrics.serviceMonitor.enabled=true",
            "pricing.catalog=version: x",
        )
    }
    assert {"Certificate", "Issuer", "ServiceMonitor", "ConfigMap"} <= kinds
    assert "Secret" not in kinds


def test_cert_manager_serving_certificate_chains_to_a_lasting_ca() -> None:
    # the caBundle cainjector writes is the CA of the serving certificate's Secret: a CA
    # Issuer's root, which survives renewals of the serving certificate (a self-signed
    # serving certificate would change the caBundle with every renewal)
    docs = _docs("webhook.certManager.enabled=true")
    certs = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "Certificate"}
    issuers = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "Issuer"}
    serving, root = certs["costgov-costgov-webhook"], certs["costgov-costgov-webhook-ca"]
    assert root["isCA"] is True and issuers[root["issuerRef"]["name"]] == {"selfSigned": {}}
    assert issuers[serving["issuerRef"]["name"]] == {"ca": {"secretName": root["secretName"]}}
    assert serving["dnsNames"] == ["costgov-costgov.costgov-system.svc"]
    # a Secret of its own, which the pods mount: cert-manager keeps it when the Certificate
    # goes, so it must not be the name the chart renders its own Secret under when
    # webhook.certManager.enabled is switched off (test_upgrade.py switches it)
    assert serving["secretName"] == "costgov-costgov-webhook-cm-tls"
    assert "costgov-costgov-webhook-tls" not in {c["secretName"] for c in certs.values()}
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    mounted = {v["name"]: v for v in pod["volumes"]}["certs"]["secret"]["secretName"]
    assert mounted == serving["secretName"]
    hook = next(d for d in docs if d["kind"] == "ValidatingWebhookConfiguration")
    inject = hook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert inject == "costgov-system/costgov-costgov-webhook"


def test_rendered_chart_is_accepted_by_the_apiserver(cp: ControlPlane, tmp_path: Path) -> None:
    docs = [d for d in _docs() if d["kind"] not in ("Certificate", "Issuer", "ServiceMonitor")]
    cp.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "costgov-system"}})
    path = tmp_path / "chart.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    done = cp.kubectl("apply", "--dry-run=server", "-f", str(path))
    assert "validatingwebhookconfiguration.admissionregistration.k8s.io/costgov-costgov" in (
        done.stdout
    )


def test_kubeconform_validates_the_examples_with_our_crd_schemas(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    for crd in (ROOT / "crds").glob("*.yaml"):
        doc = yaml.safe_load(crd.read_text())
        kind = doc["spec"]["names"]["kind"].lower()
        version = doc["spec"]["versions"][0]
        schema = version["schema"]["openAPIV3Schema"]
        (schemas / f"{kind}_{version['name']}.json").write_text(json.dumps(schema))
    examples = [str(p) for p in (ROOT / "examples").glob("*.yaml")]
    done = subprocess.run(
        [
            str(_tools() / "kubeconform"),
            "-strict",
            "-summary",
            "-ignore-missing-schemas",
            "-schema-location",
            str(schemas / "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"),
            *examples,
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Invalid: 0, Errors: 0" in done.stdout
