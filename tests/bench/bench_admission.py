"""Benchmark: admission latency and throughput over loopback, next to trivial endpoints.

The webhook (kopf's server with costgov's handlers, fed by the kmock emulator) runs in a
child process pinned to one core; the load generator runs in this process on the other.
Each endpoint gets an open-loop load at a fixed rate (default 200 requests/s for 10 s):
  jobs      - a real Job AdmissionReview judged by costgov (estimate, two policies, a
              budget with an approval)
  noop-job  - the same Job AdmissionReview to a kopf handler that does nothing: what
              kopf's webhook machinery costs on its own for this body (issue #7's
              baseline)
  direct-noop - the same Job AdmissionReview on costgov's own path (its server calls its
              judge without kopf's handler machinery) to a judge that does nothing: what
              judging itself adds is jobs against this one
  noop      - a small ConfigMap AdmissionReview to a handler that does nothing
then a closed loop at 16 concurrent requests measures the most the core sustains. Rounds
alternate so drift in the machine hits every endpoint alike. Prints p50/p99/max latency
and the ratios to the baseline; asserts nothing about time.
Run: make bench-admission (PROFILE=path writes the server's cProfile statistics there)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT))

RATE, SECONDS = int(os.environ.get("RATE", "200")), int(os.environ.get("SECONDS", "10"))


async def serve() -> None:
    os.sched_setaffinity(0, {0})
    import logging
    from datetime import UTC, datetime

    import kopf
    from tests.integration.harness import emulator, operator_on
    from tests.integration.test_operator import POLICY, WARN_POLICY, _budget

    logging.disable(logging.WARNING)

    from costgov.handlers import serving

    # the baselines go through costgov's own webhook server (body limits, review checks,
    # routing) like `jobs` does; only the handler differs
    serving.WEBHOOKS["noop"] = ("", "configmaps", None)
    serving.WEBHOOKS["noop-job"] = ("batch", "jobs", None)
    serving.WEBHOOKS["direct-noop"] = ("batch", "jobs", None)

    async def _nothing(_: Any) -> None:
        return None

    serving.DIRECT["direct-noop"] = _nothing  # costgov's own path, judging nothing

    def noop(registry: kopf.OperatorRegistry) -> None:
        @kopf.on.validate("", "v1", "configmaps", id="noop", registry=registry)
        async def _noop(**_: Any) -> None:
            return None

        @kopf.on.validate("batch", "v1", "jobs", id="noop-job", registry=registry)
        async def _noop_job(**_: Any) -> None:
            return None

    now = datetime(2026, 11, 14, 12, tzinfo=UTC)
    async with (
        emulator() as (k8s, api),
        operator_on(
            k8s, api, "http://127.0.0.1:9", clock=lambda: now, interval=3600, extra=noop
        ) as c,
    ):
        for ns, labels in (
            ("ml-research", {"costgov.io/governed": "true"}),
            ("sandbox", {"team": "sandbox"}),
        ):
            await c.create(
                "v1/namespaces",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns, "labels": labels},
                },
            )
        await c.create("costgov.io/v1alpha1/costpolicies", json.loads(json.dumps(POLICY)))
        await c.create("costgov.io/v1alpha1/costpolicies", json.loads(json.dumps(WARN_POLICY)))
        await c.create(
            "costgov.io/v1alpha1/trainingjobbudgets",
            _budget(
                "approved-run",
                10000,
                {"approvedBy": "alice", "amount": 5000, "expires": "2099-01-01T00:00:00Z"},
            ),
        )
        await asyncio.sleep(2)  # indexes filled
        from costgov.handlers.running import settle_memory

        settle_memory()  # as `costgov run` does once the operator is up
        print(f"READY {c.webhook}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def reviews() -> dict[str, bytes]:
    from tests.integration.test_operator import _job, _review

    job = _job("bench", finished=False, labels={"costgov.io/budget": "approved-run"})
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ml-research"},
        "data": {"a": "b"},
    }
    noop = _review("ConfigMap", "configmaps", "", cm)
    noop["request"]["resource"]["version"] = "v1"
    judged = json.dumps(_review("Job", "jobs", "batch", job)).encode()
    return {
        "jobs": judged,
        "noop-job": judged,
        "direct-noop": judged,
        "noop": json.dumps(noop).encode(),
    }


async def open_loop(url: str, body: bytes) -> tuple[list[float], float, int]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one() -> None:
            nonlocal errors
            t0 = time.perf_counter()
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - t0)

        tasks = []
        start = time.perf_counter()
        for i in range(RATE * SECONDS):
            delay = start + i / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return latencies, len(latencies) / elapsed, errors


async def closed_loop(url: str, body: bytes, concurrency: int = 16, seconds: float = 5) -> float:
    """Requests per second answered with 200 and a response for the request's uid."""
    import aiohttp

    done = 0
    async with aiohttp.ClientSession() as session:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as r:
                    answer = await r.json() if r.status == 200 else {}
                if "uid" not in answer.get("response", {}):
                    raise SystemExit(f"{url}: HTTP {r.status}, not an AdmissionReview answer")
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / seconds


async def judged_as_expected(url: str, body: bytes) -> None:
    """The measured Job really is judged on this path: admitted (on alice's signature), and
    the same Job asking for 32 GPUs denied under the policy's 16-GPU limit (else the figures
    would measure a shortcut or an error)."""
    import aiohttp

    review = json.loads(body)
    containers = review["request"]["object"]["spec"]["template"]["spec"]["containers"]
    containers[0]["resources"]["limits"]["nvidia.com/gpu"] = "32"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body) as r:
            admitted = (await r.json())["response"]
        async with session.post(url, data=json.dumps(review).encode()) as r:
            denied = (await r.json())["response"]
    message = (denied.get("status") or {}).get("message", "")
    print(f"jobs: measured body allowed={admitted['allowed']}; with 32 GPUs: {message[:90]}")
    if not admitted["allowed"] or denied["allowed"] or "ml-platform" not in message:
        raise SystemExit(f"jobs: not the judged admission the benchmark measures: {denied}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


ENDPOINTS = ("noop", "noop-job", "direct-noop", "jobs")
ROUNDS = int(os.environ.get("ROUNDS", "3"))


async def load(base: str) -> None:
    os.sched_setaffinity(0, {1})
    bodies = reviews()
    for name in ENDPOINTS:  # warm up every path
        await closed_loop(f"{base}/{name}", bodies[name], 4, 1)
    await judged_as_expected(f"{base}/jobs", bodies["jobs"])
    print(
        f"open loop: {RATE} requests/s for {SECONDS} s per endpoint, {ROUNDS} rounds; server on 1 core"
    )
    p99: dict[str, list[float]] = {n: [] for n in ENDPOINTS}
    for _ in range(ROUNDS):
        for name in ENDPOINTS:
            lat, rps, errors = await open_loop(f"{base}/{name}", bodies[name])
            p99[name].append(pct(lat, 0.99))
            print(
                f"  {name:8} p50 {pct(lat, 0.50):6.2f} ms  p99 {pct(lat, 0.99):6.2f} ms  "
                f"max {max(lat) * 1000:6.2f} ms  mean {statistics.mean(lat) * 1000:6.2f} ms  "
                f"{rps:6.1f} req/s  errors {errors}"
            )
    rates: dict[str, list[float]] = {n: [] for n in ENDPOINTS}
    for _ in range(ROUNDS):
        for name in ENDPOINTS:
            rates[name].append(await closed_loop(f"{base}/{name}", bodies[name]))
    for name in ENDPOINTS:
        print(
            f"closed loop, 16 concurrent: {name:8} {statistics.median(rates[name]):7.0f} req/s (median of {ROUNDS})"
        )
    base_p99, base_rate = statistics.median(p99["noop-job"]), statistics.median(rates["noop-job"])
    print(
        f"jobs vs noop-job (median of rounds): p99 x{statistics.median(p99['jobs']) / base_p99:.2f}, "
        f"throughput x{statistics.median(rates['jobs']) / base_rate:.2f}"
    )
    bare_p99, bare_rate = (
        statistics.median(p99["direct-noop"]),
        statistics.median(rates["direct-noop"]),
    )
    print(
        f"jobs vs direct-noop (judging alone, median of rounds): "
        f"p99 x{statistics.median(p99['jobs']) / bare_p99:.2f}, "
        f"throughput x{statistics.median(rates['jobs']) / bare_rate:.2f}"
    )


def main() -> int:
    if sys.argv[1:] == ["serve"]:
        asyncio.run(serve())
        return 0
    profile = os.environ.get("PROFILE")  # a path: the server runs under cProfile, writes there
    child = subprocess.Popen(
        [
            sys.executable,
            *(["-m", "cProfile", "-o", profile] if profile else []),
            str(HERE),
            "serve",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.startswith("READY "):
            raise SystemExit(f"the webhook did not start: {line!r}")
        asyncio.run(load(line.split()[1]))
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
