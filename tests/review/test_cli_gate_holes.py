"""Review (attack) findings: `costgov estimate` as a CI gate passing what the cluster would
run (exit 0 on input it did not judge)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from . import kit

POLICY = kit.policy(limits={"maxGPUsPerWorkload": 8})
BIG = kit.job("big", containers=[kit.container(64)])


def test_a_typed_list_of_jobs_is_judged_not_skipped(tmp_path: Path, capsys: Any) -> None:
    """Crafted: the 64-GPU Job wrapped in `kind: JobList` (apiVersion batch/v1, items: [...]),
    which `kubectl apply -f` / `kubectl create -f` take as the Jobs it lists (any *List kind
    with items, as `kubectl get -o yaml` prints them).

    What happens: "Skipped (nothing to price): JobList x1", exit 0: the PR passes.
    Should: the items judged (denied: 64 GPUs > 8, exit 1), as for `kind: List`.
    At fault: adapters/manifests.py `read_documents` (unwraps only `kind: List`)."""
    doc = {"apiVersion": "batch/v1", "kind": "JobList", "items": [BIG]}
    path = kit.write(tmp_path, "w.yaml", kit.NAMESPACE, POLICY, doc)
    code, out, _ = kit.estimate(capsys, "-f", str(path))
    assert code == 1, out


def test_a_broken_manifest_next_to_good_ones_is_not_a_pass(tmp_path: Path, capsys: Any) -> None:
    """Crafted: a PR adds a file with a 64-GPU Job whose YAML is malformed (a mis-indented
    line), next to the policy. Nothing marks it as a Helm template (no `{{`).

    What happens: reported on stderr as "not Kubernetes YAML ... render Helm charts first",
    and exit 0 ("Result: OK"). The gate says nothing was denied about a file it never read.
    Should: exit 2 (bad input, naming the file), as docs/cli.md promises for bad input;
    skip only what is recognisably a template (`{{ ... }}`) or a values file.
    At fault: adapters/manifests.py `read_documents` / cli.py (every parse error is
    treated as a Helm template)."""
    text = yaml.safe_dump(BIG).replace("  containers:", "   containers:", 1)
    kit.write(tmp_path, "pol.yaml", kit.NAMESPACE, POLICY)
    kit.write(tmp_path, "job.yaml", text)
    code, out, err = kit.estimate(capsys, "-f", str(tmp_path))
    assert "malformed YAML" in err  # it is seen ...
    assert code == 2, out  # ... and still passes the gate
