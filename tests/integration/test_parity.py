"""`costgov estimate` and the admission webhook give the same verdict for the same object
and state: over every example, and over generated worlds of workloads, budgets, approvals
and policies (hypothesis).

Both entry points are driven from the outside: the CLI's `main` with `-o json`, and the
operator's webhook over HTTP (dry-run AdmissionReviews, as kube-apiserver sends them) with
the same objects loaded into the API emulator. Spend is unknown on both sides (no
Prometheus answers), the clock is the same, and the request's user signs nothing.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterable
from contextlib import redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costgov.cli import main

from .harness import Cluster, emulator, operator_on
from .prom import free_port

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
RESOURCES = {
    "Namespace": ("v1/namespaces", False),
    "CostPolicy": ("costgov.io/v1alpha1/costpolicies", False),
    "TrainingJobBudget": ("costgov.io/v1alpha1/trainingjobbudgets", True),
    "CostApproval": ("costgov.io/v1alpha1/costapprovals", True),
    "InferenceDeployment": ("costgov.io/v1alpha1/inferencedeployments", True),
    "Job": ("batch/v1/jobs", True),
    "Pod": ("v1/pods", True),
    "Deployment": ("apps/v1/deployments", True),
    "StatefulSet": ("apps/v1/statefulsets", True),
    "CronJob": ("batch/v1/cronjobs", True),
    "PyTorchJob": ("kubeflow.org/v1/pytorchjobs", True),
    "JobSet": ("jobset.x-k8s.io/v1alpha2/jobsets", True),
    "LeaderWorkerSet": ("leaderworkerset.x-k8s.io/v1/leaderworkersets", True),
    "RayJob": ("ray.io/v1/rayjobs", True),
}
WORKLOADS = {"Job", "Pod", "Deployment", "StatefulSet", "InferenceDeployment", *RESOURCES} - {
    "Namespace", "CostPolicy", "TrainingJobBudget", "CostApproval"
}  # fmt: skip
LINE = re.compile(r"\[CostPolicy ([^,]+), (\w+)\] ([\w.]+):")


def _cli(docs: list[dict[str, Any]], tmp: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """What `costgov estimate` says of each workload: {(kind, ns, name): {denied, found}}."""
    path = tmp / "world.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    out = io.StringIO()
    with redirect_stdout(out):
        main(["estimate", "-f", str(path), "-o", "json", "--now", NOW.isoformat()])
    answers = {}
    for w in json.loads(out.getvalue())["workloads"]:
        found = {
            (v["policy"], x["rule"])
            for v in w["verdicts"]
            if v["mode"] in ("enforce", "warn")
            for x in v["violations"]
        }
        answers[(w["kind"], w["namespace"], w["name"])] = {
            "denied": w["action"] == "deny",
            "found": found,
        }
    return answers


def _review(doc: dict[str, Any]) -> dict[str, Any]:
    kind = doc["kind"]
    group, _, version = doc["apiVersion"].rpartition("/")
    plural = RESOURCES[kind][0].rsplit("/", 1)[1]
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": f"uid-{doc['metadata']['name']}",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": plural},
            "namespace": doc["metadata"].get("namespace"),
            "operation": "CREATE",
            "userInfo": {"username": "ci-bot", "groups": ["system:authenticated"]},
            "object": doc,
            "oldObject": None,
            "dryRun": True,
        },
    }


def _found(lines: Iterable[str]) -> set[tuple[str, str]]:
    return {
        (m[1], m[3]) for line in lines for m in LINE.finditer(line) if m[2] in ("enforce", "warn")
    }


async def _webhook(
    docs: list[dict[str, Any]], expected_commitments: dict[tuple[str, str], set[str]]
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """What the webhook says of each workload, with the same objects in the cluster."""
    unreachable = f"http://127.0.0.1:{free_port()}"
    async with emulator() as (k8s, api):
        # Everything exists before the operator starts, as on a cluster it is installed in
        # (kmock delivers no watch events for Namespaces created later).
        async with aiohttp.ClientSession() as session:
            loader = Cluster(k8s, api, "", None, session)  # type: ignore[arg-type]
            for doc in docs:
                await loader.create(RESOURCES[doc["kind"]][0], json.loads(json.dumps(doc)))
        async with operator_on(k8s, api, unreachable, clock=lambda: NOW) as cluster:
            await _settled(cluster, expected_commitments)
            return await _answers(cluster, docs)


async def _answers(
    cluster: Cluster, docs: list[dict[str, Any]]
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """What the webhook says of each workload, over HTTP."""
    answers = {}
    for doc in docs:
        if doc["kind"] not in WORKLOADS:
            continue
        path = RESOURCES[doc["kind"]][0].rsplit("/", 1)[1]
        status, body = await cluster.review(path, _review(doc))
        assert status == 200, body
        response = body["response"]
        lines = [response.get("status", {}).get("message", ""), *response.get("warnings", [])]
        meta = doc["metadata"]
        answers[(doc["kind"], meta.get("namespace", "default"), meta["name"])] = {
            "denied": not response["allowed"],
            "found": _found(lines),
        }
    return answers


async def _settled(cluster: Cluster, expected: dict[tuple[str, str], set[str]]) -> None:
    """Every budget has reconciled with all its covered Jobs in view (their commitments are
    what the CLI counts), and the indexes have had a moment to fill."""
    await cluster.wait_for(
        lambda: all(
            set(cluster.runtime.ledger.commitments.get(key, {"?": 0})) == names
            for key, names in expected.items()
        ),
        timeout=30,
        describe=lambda: f"{cluster.runtime.ledger.commitments} != {expected}",
    )
    await asyncio.sleep(1.0)


def _commitments(docs: list[dict[str, Any]], tmp: Path) -> dict[tuple[str, str], set[str]]:
    """The covered, priced Jobs of each budget, as the CLI prices them."""
    path = tmp / "budgets.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    out = io.StringIO()
    with redirect_stdout(out):
        main(["estimate", "-f", str(path), "-o", "json", "--now", NOW.isoformat()])
    report = json.loads(out.getvalue())
    return {
        (b["namespace"], b["name"]): {j["name"] for j in b["jobs"] if j["estimate"] is not None}
        for b in report["trainingJobBudgets"]
    }


def _check(docs: list[dict[str, Any]], tmp: Path) -> None:
    cli = _cli(docs, tmp)
    webhook = asyncio.run(_webhook(docs, _commitments(docs, tmp)))
    # Workloads without GPUs are skipped by the CLI and admitted untouched by the webhook.
    for key in set(webhook) - set(cli):
        assert webhook.pop(key) == {"denied": False, "found": set()}, key
    assert set(cli) == set(webhook)
    for key, answer in cli.items():
        assert webhook[key] == answer, (key, answer, webhook[key])


def _examples() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_every_example_is_judged_alike(tmp_path: Path) -> None:
    docs = _examples()
    assert {d["kind"] for d in docs} >= {"CostPolicy", "TrainingJobBudget", "Job"}
    _check(docs, tmp_path)


def test_every_kind_of_the_projects_examples_is_judged_alike(tmp_path: Path) -> None:
    docs = []
    for path in sorted((ROOT / "tests" / "data" / "upstream").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            meta = doc["metadata"]
            meta["name"] = meta.get("name") or meta.pop("generateName") + "x"
            meta["namespace"] = "ml"
            docs.append(doc)
    ml = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}}
    policy = {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "CostPolicy",
        "metadata": {"name": "kinds"},
        "spec": {
            "mode": "enforce",
            "limits": {"maxGPUsPerWorkload": 16},
            "approvals": [{"above": 1000, "approvers": {"users": ["alice"]}}],
        },
    }
    _check([ml, policy, *docs], tmp_path)


# ------------------------------------------------------------------------ generated worlds

NAMESPACES = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gov", "labels": {"tier": "gov"}}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "soft", "labels": {"tier": "soft"}}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "free", "labels": {}}},
]  # fmt: skip
POLICIES = [
    {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "CostPolicy",
        "metadata": {"name": "hard"},
        "spec": {
            "mode": "enforce",
            "scope": {"namespaceSelector": {"matchLabels": {"tier": "gov"}}},
            "budget": {"amount": 3000, "period": "daily", "onExceeded": "block-new"},
            "limits": {"maxGPUsPerWorkload": 16, "allowedGPUModels": ["H100", "A10G", "L4"]},
            "approvals": [
                {"above": 1000, "approvers": {"users": ["alice"]}},
                {"above": 20000, "signoffs": [
                    {"name": "manager", "groups": ["managers"]},
                    {"name": "director", "users": ["dan"]}]},
                {"above": 200000, "deny": True},
            ],
        },
    },
    {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "CostPolicy",
        "metadata": {"name": "nlp"},
        "spec": {
            "mode": "enforce",
            "unpriced": "warn",
            "scope": {"workloadSelector": {"matchLabels": {"team": "nlp"}}},
            "limits": {"requireMaxRuntime": True, "maxHourlyCost": 100},
        },
    },
    {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "CostPolicy",
        "metadata": {"name": "soft"},
        "spec": {
            "mode": "warn",
            "scope": {"namespaceSelector": {"matchLabels": {"tier": "soft"}}},
            "budget": {"amount": 10000},
            "approvals": [{"above": 500, "approvers": {"groups": ["leads"]}}],
            "assumeInstanceType": "g5.xlarge",
        },
    },
]  # fmt: skip
BUDGETS = [
    {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "TrainingJobBudget",
        "metadata": {"name": "run-a", "namespace": "gov"},
        "spec": {
            "amount": 9000,
            "requestedBy": "bob",
            "selector": {"matchLabels": {"costgov.io/budget": "run-a"}},
            "hints": {"gpuModel": "H100", "capacityType": "on-demand"},
            "maxDuration": "48h",
            "approval": {"approvedBy": "alice", "amount": 8000, "expires": "2030-01-01T00:00:00Z"},
        },
    },
    {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "TrainingJobBudget",
        "metadata": {"name": "run-b", "namespace": "soft"},
        "spec": {"amount": 2000, "selector": {"matchLabels": {"costgov.io/budget": "run-b"}}},
    },
]
INSTANCES = ["p5.48xlarge", "p4d.24xlarge", "g5.xlarge", "g6.xlarge", "x9.huge", None]


@st.composite
def workload(draw: st.DrawFn, index: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Job", "Job", "Pod", "Deployment", "StatefulSet"]))
    ns = draw(st.sampled_from(["gov", "soft", "free"]))
    instance = draw(st.sampled_from(INSTANCES))
    selector = {"node.kubernetes.io/instance-type": instance} if instance else {}
    if instance and draw(st.booleans()):
        selector["karpenter.sh/capacity-type"] = "spot"
    gpus = draw(st.sampled_from([0, 1, 2, 4, 8, "8", 16]))
    labels = {}
    if draw(st.booleans()):
        labels["team"] = draw(st.sampled_from(["nlp", "vision"]))
    if kind == "Job" and draw(st.booleans()):
        labels["costgov.io/budget"] = {"gov": "run-a", "soft": "run-b"}.get(ns, "none")
    pod: dict[str, Any] = {
        "containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": gpus}}}],
        **({"nodeSelector": selector} if selector else {}),
    }  # fmt: skip
    meta = {"name": f"w{index}", "namespace": ns, "labels": labels}
    deadline = draw(st.sampled_from([None, 3600, 36000, 259200]))
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": {**pod, **({"activeDeadlineSeconds": deadline} if deadline else {})}}  # fmt: skip
    template = {"metadata": {"labels": {"app": f"w{index}"}}, "spec": pod}
    if kind == "Job":
        spec: dict[str, Any] = {"template": template, "parallelism": draw(st.integers(1, 3))}
        if deadline:
            spec["activeDeadlineSeconds"] = deadline
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}
    spec = {
        "replicas": draw(st.integers(0, 3)),
        "selector": {"matchLabels": {"app": f"w{index}"}},
        "template": template,
        **({"serviceName": f"w{index}"} if kind == "StatefulSet" else {}),
    }
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


@st.composite
def world(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(8, 16))
    workloads = [draw(workload(i)) for i in range(count)]
    approvals = []
    for w in workloads:
        if w["kind"] != "Job" and w["metadata"]["namespace"] == "gov" and draw(st.booleans()):
            signer = draw(st.sampled_from(["alice", "eve"]))
            approvals.append(
                {
                    "apiVersion": "costgov.io/v1alpha1",
                    "kind": "CostApproval",
                    "metadata": {"name": f"ok-{w['metadata']['name']}", "namespace": "gov"},
                    "spec": {
                        "requestedBy": "bob",
                        "target": {"kind": w["kind"], "name": w["metadata"]["name"]},
                        "approval": {"approvedBy": signer, "amount": draw(st.sampled_from([2000, 60000])),
                                     "expires": "2030-01-01T00:00:00Z"},
                    },
                }
            )  # fmt: skip
    return [*NAMESPACES, *POLICIES, *BUDGETS, *approvals, *workloads]


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(docs=world())
def test_generated_worlds_are_judged_alike(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    _check(docs, tmp_path)
