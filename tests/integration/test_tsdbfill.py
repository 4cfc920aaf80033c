"""hack/tsdbfill, which writes the 30-day catch-up benchmark's history as TSDB blocks, against
promtool's backfill of the same samples written as OpenMetrics text (tests/integration/prom).

The benchmark's figures are only as good as its history: these read both back through a real
Prometheus, raw sample by raw sample, and check the blocks themselves (meta.json).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
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
PODS = 250  # more than the 200 series tsdbfill commits at a time


def _pod(p: int) -> dict[str, str]:
    return {"namespace": "team-a", "pod": f"train-{p}", "uid": f"uid-{p}"}


SERIES = [
    *(("kube_pod_status_phase", {**_pod(p), "phase": "Running"}, 1.0) for p in range(PODS)),
    ("kube_pod_status_phase", {**_pod(0), "phase": "Pending"}, 0.0),
    (
        "kube_pod_container_resource_requests",
        {**_pod(0), "container": "main", "node": "gpu-1", "resource": "nvidia_com_gpu"},
        8.0,
    ),
    ("DCGM_FI_DEV_GPU_UTIL", {**_pod(0), "gpu": "0", "UUID": "GPU-1"}, 37.5),
]
VARYING = ("DCGM_FI_DEV_GPU_UTIL", {**_pod(0), "gpu": "1", "UUID": "GPU-2"})


@pytest.fixture(scope="module")
def tsdbfill() -> str:
    built = subprocess.run(
        ["bash", str(ROOT / "hack/build-tsdbfill.sh")], capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return built.stdout.strip()


def _line(metric: str, labels: dict[str, str], value: str) -> str:
    return "\t".join([value, f"__name__={metric}", *(f"{k}={v}" for k, v in labels.items())])


def _fill(
    binary: str, out: Path, lines: list[str], *flags: str
) -> subprocess.CompletedProcess[str]:
    command = [binary, f"-out={out}", f"-start={START}", f"-end={END}", "-block=1h", *flags]
    data = "\n".join(lines) + "\n"
    return subprocess.run(command, input=data, text=True, capture_output=True)


def _samples(url: str, selector: str) -> dict[str, list[tuple[float, str]]]:
    """Every raw sample of `selector` in the 4 hours up to END, by series."""
    query = urllib.parse.urlencode({"query": f"{selector}[4h]", "time": END})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=30) as response:
        result = json.load(response)["data"]["result"]
    return {
        json.dumps(r["metric"], sort_keys=True): [(t, v) for t, v in r["values"]] for r in result
    }


@pytest.fixture(scope="module")
def filled(tsdbfill: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("tsdbfill")
    lines = [_line(m, labels, f"{v:g}") for m, labels, v in SERIES]
    lines.append(_line(*VARYING, "50~10"))
    done = _fill(tsdbfill, root / "tsdb", lines)
    assert done.returncode == 0, done.stderr
    return root / "tsdb"


def test_the_same_raw_samples_as_promtool_backfills(filled: Path) -> None:
    history = History()
    for metric, labels, value in SERIES:
        history.span(metric, labels, value, START, END + 1)
    with running_prometheus(history) as promtool, serving(filled) as ours:
        for metric in {m for m, _, _ in SERIES}:
            selector = metric if metric != "DCGM_FI_DEV_GPU_UTIL" else f'{metric}{{gpu="0"}}'
            assert _samples(ours, selector) == _samples(promtool, selector), metric
        assert len(_samples(ours, 'kube_pod_status_phase{phase="Running"}')) == 250
        (points,) = _samples(ours, "kube_pod_container_resource_requests").values()
    assert len(points) == POINTS == 188  # 3 h 7 min of minutes, both ends: 187 + 1
    assert points[0][0] == START and points[-1][0] == END
    assert sum(float(v) for _, v in points) == 188 * 8


def test_blocks_neither_overlap_nor_lose_or_repeat_a_sample(filled: Path) -> None:
    metas = sorted(
        (json.loads(m.read_text()) for m in filled.glob("*/meta.json")), key=lambda m: m["minTime"]
    )
    spans = [(m["minTime"], m["maxTime"]) for m in metas]
    hour = 3_600_000
    first = START * 1000
    # [min, max) in ms, max one past the block's last sample: 0:00..0:59, 1:00..1:59,
    # 2:00..2:59, then the 8 samples of 3:00..3:07
    last = 59 * 60_000 + 1
    assert spans == [
        (first, first + last),
        (first + hour, first + hour + last),
        (first + 2 * hour, first + 2 * hour + last),
        (first + 3 * hour, END * 1000 + 1),
    ]
    series = len(SERIES) + 1  # 253
    assert sum(m["stats"]["numSamples"] for m in metas) == series * 188
    assert [m["stats"]["numSamples"] for m in metas] == [series * 60] * 3 + [series * 8]


def test_a_varying_series_stays_in_its_range_and_is_the_same_every_run(
    filled: Path, tsdbfill: str, tmp_path: Path
) -> None:
    with serving(filled) as url:
        first = _samples(url, 'DCGM_FI_DEV_GPU_UTIL{gpu="1"}')
    (points,) = first.values()
    values = [float(v) for _, v in points]
    assert len(values) == 188
    assert all(40 <= v <= 60 and v == int(v) for v in values)  # 50 +/- 10, whole percents
    assert len(set(values)) > 10  # it varies (21 values are possible)
    again = _fill(tsdbfill, tmp_path / "tsdb", [_line(*VARYING, "50~10")])
    assert again.returncode == 0, again.stderr
    with serving(tmp_path / "tsdb") as url:
        assert _samples(url, "DCGM_FI_DEV_GPU_UTIL") == first


UP = "1\t__name__=up\tjob=a"


@pytest.mark.parametrize(
    ("lines", "flags", "says"),
    [
        (["1"], (), "line 1: want value<TAB>name=value"),
        (["x\t__name__=up"], (), "line 1: value"),
        (["1~-2\t__name__=up"], (), "whole numbers, spread >= 0"),
        (["1.5~2\t__name__=up"], (), "whole numbers"),
        (["1\t__name__"], (), "line 1: want name=value"),
        (["1\t__name__=up\tjob=a\tjob=b"], (), "line 1: label job given twice"),
        (["1\tjob=a"], (), "line 1: want __name__="),
        (["1\t__name__=9up"], (), "line 1: want __name__="),
        ([UP, "2\t__name__=up\tjob=a"], (), "line 2: the same series as line 1"),
        (["1\t__name__=up\tjob=" + "x" * (1 << 20)], (), "line 1: bufio.Scanner: token too long"),
        ([UP], ("-workers=0",), "-workers must be at least 1"),
        ([UP], ("-step=500ms",), "-step must be a whole number of seconds"),
        ([UP], ("-block=90s",), "-block must be a multiple of -step"),
        ([UP], ("-start=0",), "0 < S <= E"),
    ],
)
def test_bad_input_says_what_is_wrong_and_writes_nothing(
    tsdbfill: str, tmp_path: Path, lines: list[str], flags: tuple[str, ...], says: str
) -> None:
    done = _fill(tsdbfill, tmp_path / "tsdb", lines, *flags)
    assert done.returncode == 1
    assert says in done.stderr
    assert not (tmp_path / "tsdb").exists()


def test_an_existing_directory_is_refused(tsdbfill: str, tmp_path: Path) -> None:
    (tmp_path / "tsdb").mkdir()
    done = _fill(tsdbfill, tmp_path / "tsdb", [UP])
    assert done.returncode == 1
    assert "must not exist yet" in done.stderr


def test_stopped_mid_way_it_leaves_neither_blocks_nor_head_directories(
    tsdbfill: str, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    out = tmp_path / "tsdb"
    lines = "\n".join(_line("up", {"job": f"j{i}"}, "1") for i in range(20_000)) + "\n"
    end = START + 3 * 86400  # 20,000 series x 4,321 points: several seconds of work
    proc = subprocess.Popen(
        [tsdbfill, f"-out={out}", f"-start={START}", f"-end={end}", "-block=2h"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert proc.stdin is not None
    proc.stdin.write(lines)
    proc.stdin.close()
    deadline = time.monotonic() + 30
    while not any(scratch.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)  # until a block is under way
    assert proc.poll() is None, "tsdbfill finished before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 1
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert "context canceled" in err
    assert not out.exists()
    assert list(scratch.iterdir()) == []
