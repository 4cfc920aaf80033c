"""Benchmark: `costgov estimate` over 1,000 generated manifests (parse to verdicts).

Prints figures; asserts nothing about time (see docs/benchmarks.md).
Run: make bench   (or: PYTHONPATH=operator .venv/bin/python tests/bench/bench_estimate.py)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from costgov.adapters.manifests import read_documents
from costgov.catalog import load_catalog
from costgov.services.estimating import estimate_documents

INSTANCE_TYPES = ["p5.48xlarge", "p4d.24xlarge", "g5.xlarge", "g6.xlarge", "a2-highgpu-1g"]
GPUS = {"p5.48xlarge": 8, "p4d.24xlarge": 8, "g5.xlarge": 1, "g6.xlarge": 1, "a2-highgpu-1g": 1}


def manifests(n: int) -> list[dict[str, object]]:
    docs: list[dict[str, object]] = [
        {
            "apiVersion": "costgov.io/v1alpha1",
            "kind": "CostPolicy",
            "metadata": {"name": "p"},
            "spec": {
                "mode": "enforce",
                "budget": {"amount": 500000},
                "approvals": [{"above": 1000, "approvers": {"groups": ["leads"]}}],
                "limits": {"maxGPUsPerWorkload": 64, "requireMaxRuntime": True},
            },
        }
    ]
    for i in range(n):
        it = INSTANCE_TYPES[i % len(INSTANCE_TYPES)]
        kind = "Job" if i % 3 else "Deployment"
        spec: dict[str, object] = {
            "template": {
                "spec": {
                    "nodeSelector": {"node.kubernetes.io/instance-type": it},
                    "containers": [
                        {
                            "name": "c",
                            "image": "x",
                            "resources": {"limits": {"nvidia.com/gpu": GPUS[it]}},
                        }
                    ],
                }
            }
        }
        if kind == "Job":
            spec |= {"parallelism": 1 + i % 4, "activeDeadlineSeconds": 3600 * (1 + i % 72)}
        else:
            spec |= {"replicas": 1 + i % 3}
        docs.append(
            {
                "apiVersion": "batch/v1" if kind == "Job" else "apps/v1",
                "kind": kind,
                "metadata": {
                    "name": f"w{i}",
                    "namespace": f"team-{i % 20}",
                    "labels": {"costgov.io/checkpointing": str(i % 2 == 0).lower()},
                },
                "spec": spec,
            }
        )
    return docs


def main() -> int:
    n, runs = 1000, 15
    catalog = load_catalog()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifests.yaml"
        path.write_text(yaml.safe_dump_all(manifests(n)))
        now = datetime(2026, 11, 22, tzinfo=UTC)
        engine, total = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            docs = read_documents([path])
            t1 = time.perf_counter()
            report = estimate_documents(docs, catalog, now=now)
            t2 = time.perf_counter()
            total.append(t2 - t0)
            engine.append(t2 - t1)
        assert len(report.workloads) == n  # the work really happened
    print(
        f"estimate of {n} manifests, {runs} runs, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"  YAML parse + price + judge: median {statistics.median(total) * 1000:.0f} ms, "
        f"min {min(total) * 1000:.0f} ms, max {max(total) * 1000:.0f} ms"
    )
    print(f"  price + judge only:         median {statistics.median(engine) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
