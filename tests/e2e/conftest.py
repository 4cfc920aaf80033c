"""One real control plane for the whole e2e tier, with costgov's CRDs applied."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .controlplane import ROOT, ControlPlane, control_plane


@pytest.fixture(scope="session")
def cp() -> Iterator[ControlPlane]:
    with control_plane() as plane:
        plane.kubectl("apply", "-f", str(ROOT / "crds"))
        plane.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/costpolicies.costgov.io",
            "crd/trainingjobbudgets.costgov.io",
            "crd/inferencedeployments.costgov.io",
            "crd/costapprovals.costgov.io",
        )
        yield plane
