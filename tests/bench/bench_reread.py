"""Benchmark: the fresh read admission makes when an answer turns on recent edits.

A denial for want of an approval or budget, or an admission a signature carries, is judged
again against the CostPolicies and the namespace's TrainingJobBudgets and CostApprovals as
kube-apiserver lists them (services/rereading.py: three LISTs in parallel, on its own
threads, parsed there). This measures
that read against a real kube-apiserver and etcd on loopback (the e2e tier's control plane)
holding POLICIES policies and BUDGETS budgets and approvals in the namespace: p50/p90/p99
and max over ROUNDS reads, the first (a new connection) shown apart. Asserts nothing
about time.
Run: make bench-reread
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT / "tests"))

ROUNDS = int(os.environ.get("ROUNDS", "500"))
POLICIES, BUDGETS = int(os.environ.get("POLICIES", "10")), int(os.environ.get("BUDGETS", "20"))


def _policy(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "CostPolicy",
        "metadata": {"name": f"policy-{i}"},
        "spec": {
            "mode": "enforce",
            "scope": {"namespaceSelector": {"matchLabels": {"team": f"t{i}"}}},
            "approvals": [{"above": 1000, "approvers": {"users": ["alice"]}}],
        },
    }


def _budget(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "TrainingJobBudget",
        "metadata": {"name": f"run-{i}", "namespace": "ml"},
        "spec": {
            "amount": 10000,
            "requestedBy": "bob",
            "selector": {"matchLabels": {"costgov.io/budget": f"run-{i}"}},
            "approval": {"approvedBy": "alice", "amount": 5000, "expires": "2099-01-01T00:00:00Z"},
        },
    }


def _approval(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "CostApproval",
        "metadata": {"name": f"approval-{i}", "namespace": "ml"},
        "spec": {"target": {"kind": "Job", "name": f"job-{i}"}, "requestedBy": "bob"},
    }


async def _measure(kube: Any) -> None:
    from costgov.catalog import load_catalog
    from costgov.domain.judging import Situation
    from costgov.services.rereading import Rereads

    reads = Rereads(kube)
    base = Situation(catalog=load_catalog(None), now=datetime.now(UTC))
    times = []
    for _ in range(ROUNDS + 1):
        started = time.perf_counter()
        fresh = await reads.situation(base, "ml")
        times.append((time.perf_counter() - started) * 1000)
        assert fresh is not None, "the read failed (see the log)"
        assert (len(fresh.policies), len(fresh.budgets)) == (POLICIES, BUDGETS), fresh
    first, rest = times[0], sorted(times[1:])
    pick = lambda q: rest[min(len(rest) - 1, int(q * len(rest)))]  # noqa: E731
    print(
        f"fresh read ({POLICIES} policies, {BUDGETS} budgets, {BUDGETS} approvals), "
        f"{ROUNDS} reads: p50 {pick(0.5):.1f} ms, p90 {pick(0.9):.1f} ms, "
        f"p99 {pick(0.99):.1f} ms, max {rest[-1]:.1f} ms; first (new connection) {first:.1f} ms"
    )


def main() -> None:
    from kubernetes import config

    from costgov.adapters.kubernetes import KubeClient
    from e2e.controlplane import control_plane

    with control_plane() as cp:
        cp.kubectl("apply", "-f", str(ROOT / "crds"))
        cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        cp.kubectl("create", "namespace", "ml")
        for i in range(POLICIES):
            cp.apply(_policy(i))
        for i in range(BUDGETS):
            cp.apply(_budget(i))
            cp.apply(_approval(i))
        load = config.load_kube_config
        config.load_kube_config = lambda *a, **k: load(config_file=str(cp.kubeconfig))  # type: ignore[assignment]
        asyncio.run(_measure(KubeClient()))


if __name__ == "__main__":
    main()
