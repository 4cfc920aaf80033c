"""Benchmark: a fresh install catching up on past spend, 10,000 GPU pods, real Prometheus.

Prints figures; asserts nothing about time.
Run: make bench-catchup  (needs prometheus on PATH and Go for hack/tsdbfill; HOURS=3 by
default; HOURS=720 for the 30 days of issue 9: about 4.5 GB of TSDB under $TMPDIR, and
tsdbfill holds a day's block in memory per worker, about 4.5 GB of RAM with its 2);
RULES=1 adds what the chart's recording rules record each hour, written from their
definitions in daily blocks (as a Prometheus that ran them holds it once compacted);
RULES=promtool has Prometheus evaluate the chart's rule file over the history instead
(promtool tsdb create-blocks-from rules: about 24 min for 720 h), and SETTLE=1 then waits
for Prometheus to compact promtool's 2-hour blocks before catching up)

History: bench_cycle's 1,000 nodes and 10,000 pods in the exporters' label sets, HOURS of
1-minute samples, written as daily TSDB blocks by hack/tsdbfill (Prometheus' own tsdb
package, checked against promtool's backfill in tests/integration/test_tsdbfill.py; 30 days
as OpenMetrics text for promtool would be about 735 GB). The operator's accounting as it
runs (the same `collect` and `CatchUp` the Runtime calls, with the chart's 10 s query
timeout): a window from the start of the history (a policy's month to date on a fresh
install) counted in the background, chunk after chunk, while a cycle every 15 s counts a
steady one-minute window and reports how far the background got, its cursor moving there,
until it is current. Then, up to a day of history, the same asked for in one window.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2] / "operator"))
sys.path.insert(0, str(HERE.parents[2]))
sys.path.insert(0, str(HERE.parent))

import bench_cycle  # noqa: E402

if TYPE_CHECKING:
    from costgov.domain.catalogs import PriceCatalog

HOURS = int(os.environ.get("HOURS", "3"))
TIMEOUT = 10.0


WHOLE_UP_TO = 24
"""Hours of history up to which the whole is also asked for in one window (beyond, it
outlasts any query timeout)."""

CYCLE = 15.0
"""Seconds between snapshots: the chart's 30 s reconcile interval, a snapshot per half."""


async def catch_up(url: str, end: int) -> None:
    from costgov.adapters.prometheus import PrometheusSource
    from costgov.catalog import load_catalog
    from costgov.domain.spend import PodCost, totals
    from costgov.services.accounting import collect
    from costgov.services.catching_up import CatchUp
    from costgov.settings import Settings

    settings = Settings(prometheus_url=url, query_timeout_seconds=TIMEOUT, query_retries=0)
    source, catalog = PrometheusSource(settings), load_catalog()
    at = datetime.fromtimestamp(end, UTC)
    cursor = at - timedelta(hours=HOURS)
    catchup = CatchUp(source.aside(2, "catchup"), catalog, step=60, timeout=TIMEOUT, most=86400)
    live = _live_owners()
    cycles, began = 0, time.perf_counter()
    watcher: asyncio.Task[None] | None = None
    spent: list[PodCost] = []
    counted: list[float] = []

    async def watch() -> None:  # when the background has counted everything (to 0.1 s)
        while catchup._next() is not None:  # started: want() was called first
            await asyncio.sleep(0.1)
        counted.append(time.perf_counter() - began)

    while cursor < at:
        t0 = time.perf_counter()
        catchup.want({"behind": cursor}, at, {})  # as Runtime.snapshot: the cursor in status
        watcher = watcher if cycles else asyncio.create_task(watch())
        snap = await collect(
            source, catalog, at=at, interval_seconds=300, step_seconds=60,
            windows={"steady": at - timedelta(minutes=1)}, live_node_labels={}, unit_costs=False,
            live_pod_owners=live,
        )  # fmt: skip
        took = time.perf_counter() - t0
        snap = catchup.report(snap, {"behind": cursor})
        cycles += 1
        window = snap.windows.get("behind")
        steady = "steady" in snap.windows and snap.error is None
        reached = (
            f"to {window.end:%m-%d %H:%M}" if window else f"held ({snap.lagging.get('behind')})"
        )
        print(f"cycle {cycles} at {t0 - began:.0f} s: its own queries {took:.2f} s, steady window "
              f"{'counted' if steady else 'NOT counted'}; past spend counted {reached}, "
              f"chunk now {catchup.chunk // 60} min", flush=True)  # fmt: skip
        if window is not None:
            spent += window.pods
            cursor = window.end
        if cursor < at:
            await asyncio.sleep(max(0.0, CYCLE - (time.perf_counter() - t0)))
    catchup.close()
    if watcher is not None:
        await watcher
    done = counted[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"counted from recording rules {catchup.counted['recorded'] / 3600:.1f} h, from raw "
          f"samples {catchup.counted['raw'] / 3600:.1f} h")  # fmt: skip
    print(f"caught up on {HOURS} h of 10,000 pods in the background: counted in {done:.1f} s "
          f"({done / HOURS:.2f} s per hour of history), reported by cycle {cycles}; "
          f"${totals(spent).cost:,.2f}; the bench's peak RSS {rss:.0f} MiB")  # fmt: skip
    await _whole(url, at, catalog)


async def _whole(url: str, at: datetime, catalog: PriceCatalog) -> None:
    """The same history asked for in one window, for comparison (up to WHOLE_UP_TO hours)."""
    from costgov.adapters.prometheus import PrometheusSource
    from costgov.domain.spend import totals
    from costgov.services.accounting import collect
    from costgov.settings import Settings

    if HOURS > WHOLE_UP_TO:
        print(f"the same {HOURS} h in one window: not asked (over {WHOLE_UP_TO} h it outlasts "
              "any query timeout)")  # fmt: skip
        return
    t0 = time.perf_counter()
    long = Settings(prometheus_url=url, query_timeout_seconds=300, query_retries=0)
    snap = await collect(
        PrometheusSource(long), catalog, at=at, interval_seconds=300, step_seconds=60,
        windows={"all": at - timedelta(hours=HOURS)}, live_node_labels={}, unit_costs=False,
    )  # fmt: skip
    cost = totals(snap.windows["all"].pods).cost
    took = time.perf_counter() - t0
    print(
        f"the same {HOURS} h in one window (no chunks, 300 s timeout): {took:.1f} s, ${cost:,.2f}"
    )


def _live_owners() -> dict[tuple[str, str], str | None]:
    """The pods the API shows, with their Jobs, as the operator's pod watch has them: the
    steady cycle asks Prometheus for the owners of no other pod."""
    return {
        (f"team-{p % 50}", f"pod-{p}"): f"job-{p // bench_cycle.PODS_PER_JOB}"
        for p in range(bench_cycle.N_PODS)
    }


UTIL_SPREAD = 10


def _line(metric: str, labels: dict[str, str], value: float) -> str:
    """A series as tsdbfill reads it: value (or value~spread), then name=value fields."""
    spread = {"DCGM_FI_DEV_GPU_UTIL": f"~{UTIL_SPREAD}", "costgov:gpu_util_sum": "~60"}.get(
        metric, ""
    )
    fields = [f"{value:g}{spread}", f"__name__={metric}"]
    return "\t".join([*fields, *(f"{k}={v}" for k, v in labels.items())])


def _fill(root: Path, end: int) -> None:
    """bench_cycle's series written as daily blocks, each GPU's utilisation within
    UTIL_SPREAD points of its pod's figure, varying from sample to sample (as DCGM's does; a
    constant is cheaper for Prometheus to read)."""
    t0 = time.perf_counter()
    build = subprocess.run(["bash", str(HERE.parents[2] / "hack/build-tsdbfill.sh")],
                           capture_output=True, text=True)  # fmt: skip
    if build.returncode != 0:
        raise SystemExit(f"building hack/tsdbfill failed:\n{build.stderr[-3000:]}")
    lines = (_line(*series) for series in bench_cycle.history_series())
    start = end - HOURS * 3600
    command = [build.stdout.strip(), f"-out={root / 'tsdb'}", f"-start={start}", f"-end={end}"]
    subprocess.run(command, input="\n".join(lines) + "\n", text=True, check=True)
    print(f"history: {HOURS} h written as daily blocks in {time.perf_counter() - t0:.0f} s")
    if RULES == "1":
        t0 = time.perf_counter()
        first = start + RULE_OFFSET + 3600  # the first evaluation reaching no further back
        last = first + (end - first) // 3600 * 3600
        command = [build.stdout.strip(), f"-out={root / 'rules'}", f"-start={first}",
                   f"-end={last}", "-step=1h"]  # fmt: skip
        rules = "\n".join(_line(*series) for series in _recorded())
        subprocess.run(command, input=rules + "\n", text=True, check=True)
        for block in (root / "rules").iterdir():
            if (block / "meta.json").exists():
                block.rename(root / "tsdb" / block.name)
        print(f"recording rules: {HOURS} h of evaluations written in "
              f"{time.perf_counter() - t0:.0f} s")  # fmt: skip


RULES = os.environ.get("RULES", "0")
"""1: the rules' records written with the history; promtool: evaluated by Prometheus."""
RULE_OFFSET = 2102
"""Seconds into the hour the rule group is evaluated at (a Prometheus hashes the group's
name into an offset; 35 min 2.8 s in tests/integration/test_catchup_rules.py's run)."""


def _recorded() -> Iterator[tuple[str, dict[str, str], float]]:
    """What charts/costgov/files/catchup-rules.yaml records each hour for the history (every
    pod Running with its one GPU the whole hour, on one node, one series each: 60 points),
    written from the rules' definitions; tests/integration/test_catchup_rules.py has
    Prometheus evaluate the rules themselves."""
    rule = {"costgov_rules": "1", "step": "60", "interval": "3600"}
    for metric in ("pod_gpu_samples", "gpu_util_sum", "gpu_util_count", "pod_owner", "node_labels"):
        yield f"costgov:{metric}", {**rule, "costgov_evaluated": "true"}, 0
    for metric, labels, value in bench_cycle.history_series():
        named = {k: v for k, v in labels.items() if k in ("namespace", "pod")}
        if metric == "kube_node_labels":
            yield "costgov:node_labels", {**labels, **rule}, 1
        elif metric == "kube_pod_owner":
            owner = {k: labels[k] for k in ("owner_kind", "owner_name")}
            yield "costgov:pod_owner", {**named, **owner, **rule}, 1
        elif metric == "kube_pod_info":
            pod = {**named, "node": labels["node"], "uid": labels["uid"]}
            yield "costgov:pod_gpu_samples", {**pod, **rule}, 60
        elif metric == "DCGM_FI_DEV_GPU_UTIL":
            yield "costgov:gpu_util_sum", {**labels, **rule}, 60 * value
            yield "costgov:gpu_util_count", {**labels, **rule}, 60


def _evaluate_rules(root: Path, flags: list[str], end: int) -> None:
    """The chart's recording rules evaluated by Prometheus over the history (`promtool tsdb
    create-blocks-from rules`, as docs/operator.md tells a user to backfill them), the blocks
    it writes then served beside the history's."""
    prom, port = bench_cycle.serve_prometheus(root, flags)
    t0 = time.perf_counter()
    rules = HERE.parents[2] / "charts/costgov/files/catchup-rules.yaml"
    try:
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "rules", f"--start={end - HOURS * 3600}",
             f"--end={end}", f"--url=http://127.0.0.1:{port}", f"--output-dir={root / 'rules'}",
             "--quiet", str(rules)],
            check=True,
        )  # fmt: skip
    finally:
        prom.terminate()
        prom.wait(timeout=30)
    for meta in (root / "rules").glob("*/meta.json"):
        meta.parent.rename(root / "tsdb" / meta.parent.name)
    print(f"recording rules: {HOURS} h evaluated by Prometheus (promtool) in "
          f"{time.perf_counter() - t0:.0f} s")  # fmt: skip


def _settle(port: int) -> None:
    """Wait until Prometheus has compacted what it will (promtool writes 2-hour blocks, one
    rule after another: Prometheus merges them with the history's, as it would have
    compacted rules it evaluated itself), printing the blocks before and after."""
    import re
    import urllib.request

    def figures() -> tuple[float, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
        found = [
            re.search(rf"^{n} (\S+)$", text, re.M)
            for n in ("prometheus_tsdb_blocks_loaded", "prometheus_tsdb_compactions_total")
        ]
        return tuple(float(m.group(1)) if m else 0.0 for m in found)  # type: ignore[return-value]

    t0, before = time.perf_counter(), figures()
    last, still = before, 0.0
    while still < 120 and time.perf_counter() - t0 < 3600:
        time.sleep(10)
        now = figures()
        still = still + 10 if now == last and now[1] > 0 else 0.0
        last = now
    print(f"compacted: {before[0]:.0f} blocks to {last[0]:.0f} in "
          f"{time.perf_counter() - t0 - 120:.0f} s")  # fmt: skip


def main() -> int:
    end = (int(time.time()) // 3600 - 1) * 3600
    with tempfile.TemporaryDirectory(prefix="costgov-catchup-") as tmp:
        root = Path(tmp)
        _fill(root, end)
        # Daily blocks stay as written (no compaction while the bench runs).
        flags = ["--storage.tsdb.max-block-duration=1d"]
        if RULES == "promtool":
            _evaluate_rules(root, flags, end)
        prom, port = bench_cycle.serve_prometheus(root, flags)
        try:
            if os.environ.get("SETTLE") == "1":
                _settle(port)
            print(f"-- {os.cpu_count()} CPUs")
            asyncio.run(catch_up(f"http://127.0.0.1:{port}", end))
        finally:
            prom.terminate()
            prom.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
