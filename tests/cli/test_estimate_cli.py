"""`costgov estimate` and `costgov crds` end to end in-process: exit codes, JSON, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from costgov.cli import main

ROOT = Path(__file__).resolve().parents[2]
NOW = ["--now", "2026-11-22T12:00:00+00:00"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, *docs: Any) -> Path:
    path = tmp_path / name
    path.write_text(
        yaml.safe_dump_all(docs) if docs and not isinstance(docs[0], str) else "".join(docs)
    )
    return path


def test_examples_show_the_72h_h100_job_its_spot_alternative_and_verdicts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "estimate", "-f", str(ROOT / "examples"), *NOW)
    assert code == 0
    row = next(line for line in out.splitlines() if "llama-finetune-run1" in line)
    # 72 h x 55.04 = 3,962.88 on demand; spot 72 x 21.70 x 1.10 = 1,718.64, 56.6 % less
    assert "$55.04" in row
    assert "$3,962.88" in row
    assert "$1,718.64 (-56.6%)" in row
    assert "ALLOW" in row
    assert "saving $2,244.24 (56.6%)" in out
    assert "Result: OK" in out


def test_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "estimate", "-f", str(ROOT / "examples"), "-o", "json", *NOW)
    doc = json.loads(out)
    assert code == 0
    assert doc["schema"] == "costgov.io/estimate/v1"
    assert set(doc) == {
        "schema",
        "generatedAt",
        "catalogVersion",
        "workloads",
        "trainingJobBudgets",
        "policies",
        "skippedKinds",
        "unreadable",
        "summary",
    }
    job = next(w for w in doc["workloads"] if w["name"] == "llama-finetune-run1")
    assert job["estimate"] == "3962.88"
    assert job["hourly"] == "55.04"
    assert job["hours"] == "72"
    assert job["pricedAs"] == "p5.48xlarge on-demand"
    assert job["gpus"] == 8
    assert job["spot"]["saving"] == "2244.24"
    assert job["spot"]["savingPercent"] == "56.6"
    assert job["trainingJobBudget"] == "llama-finetune"
    assert job["verdicts"][0] == {
        "policy": "ml-platform",
        "mode": "enforce",
        "action": "allow",
        "violations": [],
        "spotRecommended": True,
    }
    idep = next(w for w in doc["workloads"] if w["kind"] == "InferenceDeployment")
    # 4 replicas x g6.xlarge spot 0.40 = 1.60 $/h; x 730 h = 1,168.00; budget 1,000 -> 3
    assert idep["hourly"] == "1.60"
    assert idep["estimate"] == "1168.00"
    assert idep["affordableReplicas"] == 3
    (budget,) = doc["trainingJobBudgets"]
    # 8,000 - 3,962.88 = 4,037.12
    assert budget["estimated"] == "3962.88"
    assert budget["remaining"] == "4037.12"
    assert doc["summary"]["exitCode"] == 0
    assert doc["summary"]["denied"] == 0


def test_enforce_violation_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = write(
        tmp_path,
        "job.yaml",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "big", "namespace": "ml"},
            "spec": {
                "template": {
                    "spec": {
                        "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
                        "containers": [
                            {
                                "name": "c",
                                "image": "x",
                                "resources": {"limits": {"nvidia.com/gpu": 8}},
                            }
                        ],
                    }
                }
            },
        },
    )
    pol = write(
        tmp_path,
        "policy.yaml",
        {
            "apiVersion": "costgov.io/v1alpha1",
            "kind": "CostPolicy",
            "metadata": {"name": "strict"},
            "spec": {"mode": "enforce", "limits": {"requireMaxRuntime": True}},
        },
    )
    code, out, _ = run(capsys, "estimate", "-f", str(jobs), "--policy", str(pol), *NOW)
    assert code == 1
    assert "error limits.requireMaxRuntime" in out
    assert "Result: DENIED: 1" in out
    # the same in warn mode is admitted with a warning: exit 0
    pol.write_text(pol.read_text().replace("mode: enforce", "mode: warn"))
    code, out, _ = run(capsys, "estimate", "-f", str(jobs), "--policy", str(pol), *NOW)
    assert code == 0
    assert "WARN" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Job\nmetadata: {name: [unclosed\n", "malformed YAML at line"),
        (
            "apiVersion: costgov.io/v1alpha1\nkind: CostPolcy\nmetadata: {name: x}\n",
            "(document 0): CostPolcy/x: kind: unknown costgov.io kind 'CostPolcy'",
        ),
        (
            "apiVersion: costgov.io/v1alpha1\nkind: TrainingJobBudget\nmetadata: {name: b}\n"
            "spec: {selector: {}}\n",
            "(document 0): TrainingJobBudget/b.spec.amount: required field is missing",
        ),
        ("kind: Job\nmetadata: {name: j}\n", "(document 0): not a Kubernetes object: apiVersion"),
        (
            "---\nkind: x\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n"
            "spec: {template: {spec: {containers: []}}}\n",
            "(document 1): Job/j: spec.template.spec.containers: a pod needs at least one container",
        ),
        ("- just\n- a list\n", "not a Kubernetes object (a mapping with apiVersion"),
    ],
)
def test_bad_input_exits_2_naming_file_document_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = write(tmp_path, "bad.yaml", text)
    code, out, err = run(capsys, "estimate", "-f", str(path), *NOW)
    assert code == 2
    assert out == ""
    assert str(path) in err and message in err, err


def test_missing_path_and_bad_pricing_file_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "estimate", "-f", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "no such file or directory" in err
    pricing = write(tmp_path, "prices.yaml", "version: x\ngpuHourly:\n- gpuModel: Z9000\n")
    code, _, err = run(capsys, "estimate", "-f", str(ROOT / "examples"), "--pricing", str(pricing))
    assert code == 2
    assert f"{pricing}: invalid pricing file" in err
    assert "gpuHourly[0].gpuModel: 'Z9000' is not a GPU model costgov knows" in err
    assert "gpuHourly[0].perGPUHour: required field is missing" in err


def test_on_prem_pricing_file_prices_per_gpu_hour(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "estimate",
        "-f",
        str(ROOT / "examples"),
        "--pricing",
        str(ROOT / "examples/pricing/onprem.yaml"),
        "-o",
        "json",
        *NOW,
    )
    idep = next(w for w in json.loads(out)["workloads"] if w["kind"] == "InferenceDeployment")
    # 4 replicas x 1 L4 x 0.30 $/GPU-h (the example rate card) = 1.20 $/h; x 730 = 876.00
    assert code == 0
    assert idep["hourly"] == "1.20"
    assert idep["estimate"] == "876.00"


def test_crds_command_prints_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "crds")
    docs = list(yaml.safe_load_all(out))
    assert code == 0
    assert [d["spec"]["names"]["kind"] for d in docs] == [
        "CostPolicy",
        "TrainingJobBudget",
        "InferenceDeployment",
        "CostApproval",
    ]
    assert run(capsys, "crds", "--output-dir", str(tmp_path), "--check")[0] == 1
    assert run(capsys, "crds", "--output-dir", str(tmp_path))[0] == 0
    assert run(capsys, "crds", "--output-dir", str(tmp_path), "--check")[0] == 0


def test_two_jobs_under_one_training_budget_count_against_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    examples = yaml.safe_load_all((ROOT / "examples/training-llama-finetune.yaml").read_text())
    budget, job = list(examples)
    budget["spec"]["amount"] = 6000
    budget["spec"].pop("approval")
    second = {**job, "metadata": {**job["metadata"], "name": "llama-finetune-run2"}}
    policy = {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "CostPolicy",
        "metadata": {"name": "p"},
        "spec": {"mode": "enforce"},
    }
    path = write(tmp_path, "two.yaml", budget, job, second, policy)
    code, out, _ = run(capsys, "estimate", "-f", str(path), "-o", "json", *NOW)
    doc = json.loads(out)
    # each Job: 72 h x 55.04 = 3,962.88; together 7,925.76 against 6,000: -1,925.76 left
    assert doc["trainingJobBudgets"][0]["estimated"] == "7925.76"
    assert doc["trainingJobBudgets"][0]["remaining"] == "-1925.76"
    # each Job sees 6,000 - 3,962.88 (the other Job) = 2,037.12 left, less than its 3,962.88
    for w in doc["workloads"]:
        (violation,) = w["verdicts"][0]["violations"]
        assert violation["rule"] == "trainingJobBudget.exceeded"
        assert violation["figures"]["remaining"] == "$2,037.12"
    assert code == 1


UPSTREAM = ROOT / "tests" / "data" / "upstream"
HELM_TEMPLATE = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "app.fullname" . }}
  labels:
    {{- include "app.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
"""


def test_manifests_are_read_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    text = (UPSTREAM / "pytorchjob-4x8-h100.yaml").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
    code, out, err = run(capsys, "estimate", "-f", "-", "-o", "json", *NOW)
    assert code == 0, err
    [line] = json.loads(out)["workloads"]
    # 4 workers x 8/8 of a p5.48xlarge (55.04 $/h) x 48 h = 10,567.68
    assert (line["kind"], line["gpus"], line["estimate"]) == ("PyTorchJob", 32, "10567.68")
    assert line["source"] == "<stdin> (document 0)"


def test_a_helm_template_is_reported_and_skipped_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "templates" / "deployment.yaml").write_text(HELM_TEMPLATE)
    (chart / "values.yaml").write_text("replicaCount: 1\nimage: {repository: nginx}\n")
    (chart / "job.yaml").write_text((UPSTREAM / "cronjob-nightly.yaml").read_text())
    code, out, err = run(capsys, "estimate", "-f", str(chart), *NOW)
    assert code == 0, err
    assert "CronJob/ml/nightly-finetune" in out
    assert f"{chart / 'templates' / 'deployment.yaml'}: malformed YAML at line" in err
    assert f"{chart / 'values.yaml'} (document 0): not a Kubernetes object: apiVersion" in err
    assert "Skipped (not Kubernetes YAML" in out


def test_cpu_only_workloads_are_skipped_not_unpriced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cpu = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ml"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
    }
    path = write(tmp_path, "web.yaml", cpu)
    code, out, err = run(capsys, "estimate", "-f", str(path), *NOW)
    assert code == 0, err
    assert "UNPRICED" not in out
    assert "Skipped (nothing to price): Deployment (no GPUs) x1" in out


def test_every_kind_ml_teams_submit_is_priced_offline(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "estimate", "-f", str(UPSTREAM), "-o", "json", *NOW)
    assert code == 0, err
    doc = json.loads(out)
    kinds = {w["kind"] for w in doc["workloads"]}
    assert kinds == {"PyTorchJob", "LeaderWorkerSet", "RayJob", "JobSet", "CronJob"}
    assert doc["skippedKinds"] == {"PyTorchJob (no GPUs)": 1}
    assert doc["summary"]["unpriced"] == 0


def test_prices_lists_the_catalog_filtered_with_sources(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "prices", "--provider", "aws", "--gpu", "nvidia-h200", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    [entry] = doc["instances"]
    # Karpenter's generated AWS list: p5en.48xlarge 63.296 $/h for 8 H200 -> 7.912 per GPU
    assert (entry["instanceType"], entry["onDemand"], entry["onDemandPerGPU"]) == (
        "p5en.48xlarge",
        "63.296",
        "7.912",
    )
    assert "karpenter-provider-aws" in entry["source"]
    assert doc["onPremGPUHourly"] == []  # --provider aws: no on-prem rates


def test_prices_rejects_an_unknown_gpu_naming_the_closest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "prices", "--gpu", "B20O")
    assert (code, out) == (2, "")
    assert "--gpu: 'B20O' is not a GPU model costgov knows; did you mean B200" in err


def test_prices_filters_ignore_case(capsys: pytest.CaptureFixture[str]) -> None:
    _, lower, _ = run(capsys, "prices", "--provider", "aws", "--region", "us-east-1", "-o", "json")
    code, upper, _ = run(
        capsys, "prices", "--provider", "AWS", "--region", "US-EAST-1", "-o", "json"
    )
    assert code == 0 and json.loads(upper) == json.loads(lower)
    assert json.loads(upper)["instances"]  # p5.48xlarge and the rest, not "nothing matches"
