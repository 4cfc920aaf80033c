"""What the operator asks of the C library's allocator (glibc), so that memory a cycle freed
goes back to the system instead of staying in the process.

Measured at scale (docs/benchmarks.md, "Memory given back"): the objects Python kept alive
were a fraction of the operator's RSS; the rest was memory freed after each cycle's
10,000-series answers but kept by glibc in its arenas, and it grew with pods churning.
Everywhere else (musl, macOS) these calls do nothing and say so.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import Any

__all__ = ["ARENAS", "give_back_memory", "limit_malloc_arenas"]

M_ARENA_MAX = -8
"""glibc's mallopt parameter for the most malloc arenas (malloc.h)."""
ARENAS = 2


def _libc_function(name: str) -> Callable[..., Any] | None:
    try:  # CDLL(None): the process' own symbols (TypeError on Windows, which has none)
        return getattr(ctypes.CDLL(None), name)  # type: ignore[no-any-return]
    except (OSError, AttributeError, TypeError):
        return None


def limit_malloc_arenas() -> bool:
    """At most two malloc arenas, as MALLOC_ARENA_MAX=2 gives (unless the environment sets
    it): glibc gives each thread that allocates an arena of its own, up to 8 per core, and
    keeps in each what it freed. The threads that parse Prometheus' 10,000-series answers
    and follow the pods left the operator 12 % larger at scale (291 against 258 MiB,
    docs/benchmarks.md). Call before any thread starts. False where it does not apply (set
    in the environment, or a C library without mallopt, such as musl)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    mallopt = _libc_function("mallopt")
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, ARENAS))


_malloc_trim = _libc_function("malloc_trim")
"""glibc's `int malloc_trim(size_t pad)` (a ctypes call: it runs without holding the GIL)."""
if _malloc_trim is not None:
    _malloc_trim.argtypes, _malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int  # type: ignore[attr-defined]


def give_back_memory() -> bool:
    """Return to the system the free memory glibc holds in every arena, the pages inside
    its heaps included (`malloc_trim(0)`): what a cycle's answers took once they are
    freed. It walks the heaps (milliseconds at a few hundred MB); run it off the event
    loop, after a cycle. True if glibc gave memory back; False if it had none to give, or
    where there is no malloc_trim."""
    if _malloc_trim is None:
        return False
    return bool(_malloc_trim(0))
