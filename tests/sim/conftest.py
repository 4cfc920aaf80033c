"""One simulated GPU cluster for the whole sim tier (tests/sim/cluster.py), stopped at the end.

With COSTGOV_SIM_FROM_IMAGE set (and COSTGOV_IMAGE), the operator runs from the container
image (podman, host networking, read-only root) instead of this checkout.
With COSTGOV_SIM_DIR naming a cluster `make sim-up` started, the tier uses it instead (and
leaves it running): handy while writing a scenario.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.e2e.imaging import CONTAINER, from_image, podman
from tests.e2e.operating import in_process

from .cluster import Sim, down, load, up
from .kube import namespace


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    reuse = os.environ.get("COSTGOV_SIM_DIR")
    if reuse:
        yield load(Path(reuse))
        return
    root = tmp_path_factory.mktemp("sim")
    # `make image-test` runs scenarios with the operator from the container image
    launch = from_image if os.environ.get("COSTGOV_SIM_FROM_IMAGE") else in_process
    try:
        yield up(root, launch)
    finally:
        down(root)
        if launch is from_image:
            podman("rm", "-f", CONTAINER, check=False)


@pytest.fixture
def namespaces(sim: Sim) -> Iterator[Callable[..., str]]:
    """Make namespaces for one test (with labels); at the end they are deleted and waited
    for, so no test's pods hold the next test's GPUs."""
    made: list[str] = []

    def make(name: str, **labels: str) -> str:
        namespace(sim, name, **labels)
        made.append(name)
        return name

    yield make
    for name in made:
        sim.cp.kubectl("delete", "namespace", name, "--wait=true", "--timeout=120s", check=False)
