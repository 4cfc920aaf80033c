"""Running the container image with podman, as `make image-test` built it: the settings of
buildah's build directory (vfs storage, runc, ulimits) and a launcher that starts
`costgov run` from the image instead of this checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .controlplane import ROOT

IMAGE = os.environ.get("COSTGOV_IMAGE", "")
BUILD = Path(os.environ.get("IMAGE_BUILD", ROOT / "build" / "image"))
RUN = ["--rm", "--read-only", "--tmpfs", "/tmp", "--network", "host"]
CONTAINER = "costgov-operator"


def podman_env() -> dict[str, str]:
    return {
        **os.environ,
        "CONTAINERS_STORAGE_CONF": str(BUILD / "storage.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(BUILD / "registries.conf"),
        "CONTAINERS_CONF": str(BUILD / "containers.conf"),
    }


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=podman_env(), timeout=120
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def from_image(env: dict[str, str], files: tuple[Path, ...]) -> list[str]:
    """`costgov run` in the image: its settings from the environment, every file it reads
    mounted read-only at the same path (readable by uid 65532), host networking."""
    mounts = []
    readable = BUILD / "mounts"
    readable.mkdir(parents=True, exist_ok=True)
    for path in files:
        copy = readable / path.name
        shutil.copyfile(path, copy)
        copy.chmod(0o644)
        mounts += ["-v", f"{copy}:{path}:ro"]
    settings = [
        arg for k, v in env.items() if k.startswith("COSTGOV_") for arg in ("-e", f"{k}={v}")
    ]
    storage = [f"{k}={v}" for k, v in podman_env().items() if k.startswith("CONTAINERS_")]
    return [
        "env", *storage, "podman", "run", *RUN, "--name", CONTAINER, "--replace",
        "-e", f"KUBECONFIG={env['KUBECONFIG']}", *settings, *mounts, IMAGE, "run",
    ]  # fmt: skip
