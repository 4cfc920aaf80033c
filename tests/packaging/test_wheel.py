"""What the Dockerfile does, without a Docker engine: the wheel built from the repository
installs into a clean virtual environment from the hash-pinned lock file, and the commands
the image runs work from it."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# The clean environment must not see the source tree (an editable install's metadata on
# PYTHONPATH would make pip think costgov is already installed).
CLEAN = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_wheel_installs_from_the_lock_file_and_runs(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "wheels"),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = (tmp_path / "wheels").glob("costgov-*.whl")
    venv.create(tmp_path / "venv", with_pip=True)
    py = tmp_path / "venv" / "bin" / "python"
    subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "-q",
            "--require-hashes",
            "-r",
            str(ROOT / "requirements.lock"),
        ],
        check=True,
    )
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, env=CLEAN
    )
    costgov = tmp_path / "venv" / "bin" / "costgov"
    for args in (["--help"], ["run", "--help"]):
        done = subprocess.run(
            [str(costgov), *args], capture_output=True, text=True, check=True, env=CLEAN
        )
        assert "usage: costgov" in done.stdout
    # the bundled catalog ships inside the wheel: an estimate works from the installed package
    done = subprocess.run(
        [
            str(costgov),
            "estimate",
            "-f",
            str(ROOT / "examples"),
            "-o",
            "json",
            "--now",
            "2026-11-22T00:00:00+00:00",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert '"estimate": "3962.88"' in done.stdout
