"""Loopback ports for the servers the test tiers start (Prometheus, etcd, kube-apiserver,
kwok, the operator).

A port the kernel hands out for bind(0) comes from the ephemeral range, the range outgoing
connections take their source ports from too. Between choosing it and the server binding
it, another connection may take it: clean-clone CI once saw kube-apiserver exit with
"bind: address already in use" on such a port. Ports are chosen below that range instead,
at random, checked free, and never handed out twice by one process.
"""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

__all__ = ["free_port"]

LOWEST = 10_000
_given: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _bindable(port: int) -> bool:
    with contextlib.closing(socket.socket()) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A free loopback port outside the ephemeral range (inside it only if none is free)."""
    top = _ephemeral_start() - 1
    for _ in range(500):
        port = random.randint(LOWEST, top) if top > LOWEST else 0
        if port and port not in _given and _bindable(port):
            _given.add(port)
            return port
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    _given.add(port)
    return port
