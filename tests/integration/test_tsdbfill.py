"""hack/tsdbfill, which writes the 30-day catch-up benchmark's history as TSDB blocks, against
promtool's backfill of the same samples written as OpenMetrics text (tests/integration/prom).

The benchmark's figures are only as good as its history: these read both back through a real
Prometheus, raw sample by raw sample.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .prom import History, running_prometheus, serving

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
START = 1_764_547_200  # 2025-12-01T00:00:00Z
END = START + 3 * 3600 + 7 * 60  # 3 h 7 min: four 1-hour blocks, the last one partial
POINTS = (END - START) // 60 + 1  # a sample a minute, both ends included: 188
POD = {"namespace": "team-a", "pod": "train-0", "uid": "uid-0"}
SERIES = [
    ("kube_pod_status_phase", {**POD, "phase": "Running"}, 1.0),
    ("kube_pod_status_phase", {**POD, "phase": "Pending"}, 0.0),
    (
        "kube_pod_container_resource_requests",
        {**POD, "container": "main", "node": "gpu-1", "resource": "nvidia_com_gpu"},
        8.0,
    ),
    ("DCGM_FI_DEV_GPU_UTIL", {**POD, "gpu": "0", "UUID": "GPU-1"}, 37.5),
]


@pytest.fixture(scope="module")
def tsdbfill() -> str:
    built = subprocess.run(
        ["bash", str(ROOT / "hack/build-tsdbfill.sh")], check=True, capture_output=True, text=True
    )
    return built.stdout.strip()


def _fill(
    binary: str, out: Path, lines: list[str], *flags: str
) -> subprocess.CompletedProcess[str]:
    command = [binary, f"-out={out}", f"-start={START}", f"-end={END}", "-block=1h", *flags]
    return subprocess.run(command, input="\n".join(lines) + "\n", text=True, capture_output=True)


def _line(metric: str, labels: dict[str, str], value: str) -> str:
    return "\t".join([value, f"__name__={metric}", *(f"{k}={v}" for k, v in labels.items())])


def _samples(url: str, selector: str) -> dict[str, list[tuple[float, str]]]:
    """Every raw sample of `selector` in the 4 hours up to END, by series."""
    query = urllib.parse.urlencode({"query": f"{selector}[4h]", "time": END})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=30) as response:
        result = json.load(response)["data"]["result"]
    return {
        json.dumps(r["metric"], sort_keys=True): [(t, v) for t, v in r["values"]] for r in result
    }


@pytest.fixture(scope="module")
def filled(tsdbfill: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("tsdbfill")
    lines = [_line(m, labels, f"{v:g}") for m, labels, v in SERIES]
    lines.append(_line("DCGM_FI_DEV_GPU_UTIL", {**POD, "gpu": "1", "UUID": "GPU-2"}, "50~10"))
    done = _fill(tsdbfill, root / "tsdb", lines)
    assert done.returncode == 0, done.stderr
    with serving(root / "tsdb") as url:
        yield url


def test_the_same_raw_samples_as_promtool_backfills(filled: str) -> None:
    history = History()
    for metric, labels, value in SERIES:
        history.span(metric, labels, value, START, END + 1)
    with running_prometheus(history) as promtool:
        for metric in {m for m, _, _ in SERIES}:
            selector = metric if metric != "DCGM_FI_DEV_GPU_UTIL" else f'{metric}{{gpu="0"}}'
            theirs, ours = _samples(promtool, selector), _samples(filled, selector)
            assert ours == theirs, metric
    requests = _samples(filled, "kube_pod_container_resource_requests")
    (points,) = requests.values()
    assert len(points) == POINTS == 188  # 3 h 7 min of minutes, both ends: 187 + 1
    assert points[0][0] == START and points[-1][0] == END  # no sample lost at block edges
    assert sum(float(v) for _, v in points) == 188 * 8


def test_a_varying_series_stays_in_its_range_and_is_the_same_every_run(
    filled: str, tsdbfill: str, tmp_path: Path
) -> None:
    (points,) = _samples(filled, 'DCGM_FI_DEV_GPU_UTIL{gpu="1"}').values()
    values = [float(v) for _, v in points]
    assert len(values) == 188
    assert all(40 <= v <= 60 and v == int(v) for v in values)  # 50 +/- 10, whole percents
    assert len(set(values)) > 10  # it varies (21 values are possible)
    again = _fill(
        tsdbfill,
        tmp_path / "tsdb",
        [_line("DCGM_FI_DEV_GPU_UTIL", {**POD, "gpu": "1", "UUID": "GPU-2"}, "50~10")],
    )
    assert again.returncode == 0, again.stderr
    with serving(tmp_path / "tsdb") as url:
        assert _samples(url, "DCGM_FI_DEV_GPU_UTIL") == _samples(
            filled, 'DCGM_FI_DEV_GPU_UTIL{gpu="1"}'
        )


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("1", "line 1: want value<TAB>name=value"),
        ("x\t__name__=up", "line 1: value"),
        ("1~-2\t__name__=up", "whole spread >= 0"),
        ("1\t__name__", "line 1: want name=value"),
    ],
)
def test_bad_input_names_the_line_and_writes_nothing(
    tsdbfill: str, tmp_path: Path, line: str, says: str
) -> None:
    done = _fill(tsdbfill, tmp_path / "tsdb", [line])
    assert done.returncode == 1
    assert says in done.stderr
    assert not (tmp_path / "tsdb").exists()
