"""`costgov estimate` as a CI gate reads everything it is given, or says it cannot: lists
are unwrapped as kubectl unwraps them, malformed YAML is bad input (exit 2), and only
Helm templates are skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .test_estimate_cli import NOW, run, write


def _job(name: str, gpus: int, *, typed: bool = True) -> dict[str, Any]:
    job: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"activeDeadlineSeconds": 3600, "template": {"spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
            "containers": [{"name": "m", "image": "x",
                            "resources": {"limits": {"nvidia.com/gpu": gpus}}}]}}},
    }  # fmt: skip
    return {"apiVersion": "batch/v1", "kind": "Job", **job} if typed else job


def test_a_typed_list_as_the_apiserver_prints_it_is_read_item_by_item(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The apiserver leaves kind/apiVersion out of a JobList's items: they are Jobs of batch/v1.
    listed = {"apiVersion": "batch/v1", "kind": "JobList", "metadata": {},
              "items": [_job("a", 8, typed=False), _job("b", 4)]}  # fmt: skip
    code, out, err = run(capsys, "estimate", "-f", str(write(tmp_path, "l.yaml", listed)),
                         "-o", "json", *NOW)  # fmt: skip
    assert code == 0, err
    # 1 h each on a p5.48xlarge (8 x H100, 55.04 $/h): 8/8 x 55.04 = 55.04; 4/8 x 55.04 = 27.52
    found = {w["name"]: w["estimate"] for w in json.loads(out)["workloads"]}
    assert found == {"a": "55.04", "b": "27.52"}


def test_malformed_yaml_is_bad_input_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "bad.yaml", "kind: Job\nmetadata:\n  name: x\n   labels: {}\n")
    code, _, err = run(capsys, "estimate", "-f", str(path), *NOW)
    assert code == 2
    assert f"error: {path}: malformed YAML at line 4" in err


def test_a_helm_template_among_manifests_is_still_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "job.yaml", _job("a", 8))
    tpl = write(tmp_path, "tpl.yaml", 'kind: Job\nmetadata:\n  {{- include "x" . | nindent 2 }}\n')
    code, out, err = run(capsys, "estimate", "-f", str(tmp_path), *NOW)
    assert code == 0, err
    assert f"warning: skipped {tpl}: malformed YAML" in err and "Job/ml/a" in out
