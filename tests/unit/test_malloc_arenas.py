"""The operator asks glibc for at most two malloc arenas (handlers/running.py), unless the
environment already says how many: measured at scale, per-thread arenas kept 33 MiB."""

from __future__ import annotations

import os
import subprocess
import sys

CALL = "from costgov.handlers.running import limit_malloc_arenas; print(limit_malloc_arenas())"


def _call(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", CALL], env={**clean, **env},
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def test_glibc_is_asked_for_two_arenas() -> None:
    # this machine's Python runs on glibc (Debian), where mallopt answers 1 on success
    assert _call() == "True"


def test_an_arena_count_set_in_the_environment_wins() -> None:
    assert _call(MALLOC_ARENA_MAX="4") == "False"
