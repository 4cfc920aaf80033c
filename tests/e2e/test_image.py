"""The container image, run for real (`make image-test` builds it and sets COSTGOV_IMAGE).

podman runs the image as Kubernetes would under the chart: uid/gid 65532, a read-only root
filesystem with a writable /tmp. The operator itself runs from the image with host
networking against the real kube-apiserver, under the chart ServiceAccount's kubeconfig
mounted read-only: it reconciles a TrainingJobBudget and answers admission through the
apiserver.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .controlplane import ROOT, ControlPlane
from .imaging import CONTAINER, IMAGE, RUN, from_image, podman
from .operating import Operator, running_operator

pytestmark = pytest.mark.skipif(not IMAGE, reason="`make image-test` builds the image first")


def shell(script: str) -> str:
    return podman("run", *RUN, "--entrypoint", "/bin/sh", IMAGE, "-c", script).stdout


def test_runs_as_65532_with_a_named_group() -> None:
    assert shell("id -u; id -g; id -un; id -gn").split() == ["65532", "65532", "costgov", "costgov"]


def test_nothing_to_build_or_install_with_inside() -> None:
    found = shell(
        "for t in gcc cc c++ make pip pip3 apt apt-get; do command -v $t; done;"
        " python3 -c 'import pip' 2>/dev/null && echo pip-module;"
        " python3 -c 'import setuptools' 2>/dev/null && echo setuptools-module;"
        " python3 -c 'import ensurepip' 2>/dev/null && echo ensurepip-module;"
        " ls /opt/costgov/lib/python3*/site-packages | grep -iE '^(pip|setuptools|wheel)' ;"
        " true"
    )
    assert found.split() == []


def test_the_root_filesystem_is_not_written() -> None:
    # --read-only: writes outside /tmp fail; the CLI needs none.
    out = shell("touch /opt/costgov/x 2>&1 || echo refused; touch /tmp/x && echo tmp-ok")
    assert "refused" in out and "tmp-ok" in out


def test_the_cli_works_from_the_image() -> None:
    assert "estimate" in podman("run", *RUN, IMAGE, "--help").stdout
    assert "--prometheus-url" in podman("run", *RUN, IMAGE, "run", "--help").stdout
    done = podman(
        "run", *RUN, "-v", f"{ROOT / 'examples'}:/examples:ro", IMAGE,
        "estimate", "-f", "/examples", "--now", "2026-11-22T12:00:00Z", "-o", "json",
        check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr  # 1: an example is denied, by design
    doc = json.loads(done.stdout)
    # the examples' 72 h Job on a whole p5.48xlarge: 55.04 $/h x 72 h = 3,962.88
    assert "3962.88" in {w["estimate"] for w in doc["workloads"]}


def test_image_labels_say_what_it_is() -> None:
    labels = json.loads(podman("image", "inspect", IMAGE).stdout)[0]["Labels"]
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.version"]
    assert labels["org.opencontainers.image.revision"]


@pytest.fixture(scope="module")
def operator(cp: ControlPlane) -> Iterator[Operator]:
    cp.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "img", "labels": {"img": "y"}},
        }
    )
    cp.apply(
        {
            "apiVersion": "costgov.io/v1alpha1",
            "kind": "CostPolicy",
            "metadata": {"name": "img"},
            "spec": {
                "mode": "enforce",
                "scope": {"namespaceSelector": {"matchLabels": {"img": "y"}}},
                "limits": {"maxGPUsPerWorkload": 8},
            },
        }
    )
    try:
        with running_operator(cp, launch=from_image, **{"webhook.failurePolicy": "Fail"}) as op:
            yield op
    finally:
        podman("rm", "-f", CONTAINER, check=False)


def _job(name: str, gpus: int) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "img", "labels": {"costgov.io/budget": "run"}},
        "spec": {
            "suspend": True,
            "activeDeadlineSeconds": 36000,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
                    "containers": [
                        {
                            "name": "c",
                            "image": "x",
                            "resources": {"limits": {"nvidia.com/gpu": gpus}},
                        }
                    ],
                }
            },
        },
    }


def test_the_operator_from_the_image_reconciles_and_admits(
    cp: ControlPlane, operator: Operator
) -> None:
    cp.apply(
        {
            "apiVersion": "costgov.io/v1alpha1",
            "kind": "TrainingJobBudget",
            "metadata": {"name": "run", "namespace": "img"},
            "spec": {"amount": 1000, "selector": {"matchLabels": {"costgov.io/budget": "run"}}},
        }
    )
    cp.apply(_job("fits", 8))
    # one whole p5.48xlarge for 10 h: 55.04 x 10 = 550.40 committed of 1,000.00

    def status() -> dict[str, Any]:
        got = json.loads(cp.kubectl("get", "tjb", "run", "-n", "img", "-o", "json").stdout)
        return dict(got.get("status") or {})

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and status().get("estimated") != "550.40":
        time.sleep(1)
    assert status().get("estimated") == "550.40", (status(), operator.log()[-3000:])
    # admission through the apiserver, answered by the operator in the image
    done = cp.kubectl("apply", "-f", "-", stdin=json.dumps(_job("too-big", 16)), check=False)
    assert done.returncode != 0 and "limits.maxGPUsPerWorkload" in done.stderr, done.stderr
