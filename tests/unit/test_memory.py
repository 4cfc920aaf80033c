"""What the operator asks of glibc's allocator (adapters/memory.py): at most two malloc
arenas, unless the environment already says how many (measured at scale, per-thread arenas
kept 33 MiB); and the memory a cycle freed given back to the system after every cycle and
every chunk of catch-up (measured at scale: most of the operator's RSS was memory Python had
freed and glibc kept)."""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from costgov.adapters import memory

CALL = "from costgov.adapters.memory import limit_malloc_arenas; print(limit_malloc_arenas())"

FRAGMENTED = """
from costgov.adapters.memory import give_back_memory
def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
blocks = [bytearray(70_000) for _ in range(1500)]  # 105 MB of heap blocks (below mmap's 128 KiB)
kept = blocks[::40]  # one in 40 stays: the heap cannot shrink from its top
del blocks
before = rss_kib()
print(give_back_memory(), before - rss_kib())
"""


GLIBC = platform.libc_ver()[0] == "glibc" and "LD_PRELOAD" not in os.environ
"""glibc's own malloc (a preloaded jemalloc or tcmalloc has other rules)."""


def _run(code: str, **env: str) -> str:
    """`code` in a fresh interpreter, with glibc's malloc at its defaults (no MALLOC_*
    variable or tunable from the caller's environment) unless `env` sets one."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"
    }
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_glibc_is_asked_for_two_arenas() -> None:
    # this machine's Python runs on glibc (Debian), where mallopt answers 1 on success
    assert _run(CALL) == "True"


def test_an_arena_count_set_in_the_environment_wins() -> None:
    assert _run(CALL, MALLOC_ARENA_MAX="4") == "False"


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc_trim")
def test_memory_freed_inside_the_heap_goes_back_to_the_system() -> None:
    # 1,500 blocks of 70,000 bytes, 39 of every 40 freed: about 102 MB free between the
    # kept ones, which glibc keeps resident until it is asked to give it back
    gave, dropped_kib = _run(FRAGMENTED).split()
    assert gave == "True"
    assert int(dropped_kib) > 50 * 1024  # at least half of it, measured in the process


def test_without_malloc_trim_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_malloc_trim", None)  # musl, macOS
    assert memory.give_back_memory() is False


def test_a_snapshot_gives_memory_back_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from costgov.adapters.prometheus import PrometheusSource
    from costgov.catalog import load_catalog
    from costgov.services import runtime as runtime_module
    from costgov.services.accounting import Snapshot
    from costgov.services.inventory import Inventory
    from costgov.settings import Settings

    now = datetime(2026, 11, 14, tzinfo=UTC)
    calls: list[threading.Thread] = []

    async def collect(*_: Any, **__: Any) -> Snapshot:
        assert not calls  # given back after the snapshot, not before
        return Snapshot(now, {}, (), {}, {}, {}, {}, 300, {}, 4, accounted_to=now)

    async def with_api(snap: Snapshot, *_: Any, **__: Any) -> Snapshot:
        return snap

    monkeypatch.setattr(runtime_module, "collect", collect)
    monkeypatch.setattr(runtime_module, "with_api", with_api)
    monkeypatch.setattr(runtime_module, "give_back_memory",
                        lambda: calls.append(threading.current_thread()) or True)  # fmt: skip
    settings = Settings()
    runtime = runtime_module.Runtime(settings=settings, catalog=load_catalog(None),
                                     source=PrometheusSource(settings), kube=None)  # fmt: skip

    async def cycle() -> None:
        await runtime.snapshot(Inventory(), now=now)
        runtime.catchup.close()

    asyncio.run(cycle())
    assert len(calls) == 1 and calls[0] is not threading.main_thread()
