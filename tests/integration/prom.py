"""A real Prometheus for tests: history written as OpenMetrics, backfilled with promtool.

Prometheus and promtool come from the Debian package that .ci/run installs; a missing binary
fails the test run, it never skips.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tests.ports import free_port


class History:
    """Series of samples, grouped by metric family as OpenMetrics wants them."""

    def __init__(self) -> None:
        self._series: dict[str, dict[tuple[tuple[str, str], ...], list[tuple[float, float]]]] = (
            defaultdict(dict)
        )

    def add(self, metric: str, labels: Mapping[str, str], value: float, ts: float) -> None:
        key = tuple(sorted(labels.items()))
        self._series[metric].setdefault(key, []).append((value, ts))

    def span(
        self,
        metric: str,
        labels: Mapping[str, str],
        value: float,
        start: int,
        end: int,
        step: int = 60,
    ) -> None:
        """The same value every `step` seconds in [start, end)."""
        for ts in range(start, end, step):
            self.add(metric, labels, value, ts)

    def openmetrics(self) -> str:
        lines = []
        for metric, series in self._series.items():
            lines.append(f"# TYPE {metric} gauge")
            for key, points in series.items():
                label_text = ",".join(f'{k}="{v}"' for k, v in key)
                for value, ts in sorted(points, key=lambda p: p[1]):
                    text = "NaN" if value != value else repr(float(value))
                    lines.append(f"{metric}{{{label_text}}} {text} {ts}")
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"{name} is not installed: .ci/run installs it (apt-get install prometheus)"
        )
    return path


@contextlib.contextmanager
def running_prometheus(history: History) -> Iterator[str]:
    """Backfill `history` into a fresh TSDB, start Prometheus on a free port, yield its URL."""
    with tempfile.TemporaryDirectory(prefix="costgov-prom-") as tmp:
        root = Path(tmp)
        _backfill(history, root)
        with serving(root / "tsdb") as url:
            yield url


def _backfill(history: History, root: Path) -> None:
    """`history` as blocks under root/tsdb (promtool's OpenMetrics backfill)."""
    data = root / "data.om"
    data.write_text(history.openmetrics())
    subprocess.run(
        [
            _binary("promtool"),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(data),
            str(root / "tsdb"),
        ],
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def running_prometheus_with_rules(
    history: History, evaluations: Sequence[tuple[Path, int, int]]
) -> Iterator[str]:
    """`running_prometheus`, with each rule file evaluated over its (start, end) (unix
    seconds) by Prometheus itself: `promtool tsdb create-blocks-from rules` asks the
    history's Prometheus, at the times a live Prometheus would evaluate the group (an
    offset hashed from the file's path and the group's name), and the blocks it writes
    are served beside the history's."""
    with tempfile.TemporaryDirectory(prefix="costgov-prom-") as tmp:
        root = Path(tmp)
        _backfill(history, root)
        with serving(root / "tsdb") as url:
            for i, (rules, start, end) in enumerate(evaluations):
                out = root / f"rules-{i}"
                subprocess.run(
                    [_binary("promtool"), "tsdb", "create-blocks-from", "rules",
                     f"--start={start}", f"--end={end}", f"--url={url}",
                     f"--output-dir={out}", str(rules)],
                    check=True, capture_output=True,
                )  # fmt: skip
        for block in sorted(root.glob("rules-*/*/meta.json")):
            shutil.move(block.parent, root / "tsdb" / block.parent.name)
        with serving(root / "tsdb") as url:
            yield url


@contextlib.contextmanager
def serving(tsdb: Path) -> Iterator[str]:
    """Prometheus on the blocks under `tsdb`, on a free port: yield its URL, then stop it."""
    root = tsdb.parent
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            _binary("prometheus"),
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={tsdb}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=400d",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(root / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (root / "prometheus.log").read_text()[-2000:]
                raise RuntimeError(f"Prometheus did not become ready:\n{log}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
