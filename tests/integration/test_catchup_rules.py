"""Catching up from the chart's recording rules (charts/costgov/files/catchup-rules.yaml),
evaluated by Prometheus itself over test_accounting_prometheus's exporter history.

`promtool tsdb create-blocks-from rules` asks a Prometheus holding the history to evaluate the
rule file at the times a live Prometheus would evaluate the group (its hashed offset into the
hour, milliseconds and all), so the recorded series here are Prometheus', not ours. The
background catch-up must then give the dollars the raw history gives (test_catching_up:
WHOLE, by hand from the price list), reading the rules where they cover and raw samples
before the first evaluation, after the last and wherever one is missing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from costgov.services import recorded_health
from costgov.services.accounting import Snapshot
from costgov.services.catching_up import CatchUp
from costgov.settings import Settings

from .prom import running_prometheus_with_rules
from .test_accounting_prometheus import BASE, END, _history
from .test_catching_up import _catchup, _cycle, assert_whole
from .test_steady_points_and_owners import Recorded

RULES = Path(__file__).parents[2] / "charts" / "costgov" / "files" / "catchup-rules.yaml"
START, TO = datetime.fromtimestamp(BASE, UTC), datetime.fromtimestamp(END, UTC)
HOUR = 3600


def _caught_up(url: str) -> tuple[Snapshot, CatchUp, list[str]]:
    async def scenario() -> tuple[Snapshot, CatchUp, list[str]]:
        Recorded.asked, Recorded.failing = [], "nothing"
        catchup = _catchup(Recorded(Settings(prometheus_url=url)))
        catchup.want({"w": START}, TO, {})
        await asyncio.wait_for(catchup.settled(), 60)
        return catchup.report(_cycle(TO), {"w": START}), catchup, Recorded.asked

    return asyncio.run(scenario())


def _evaluations(url: str, match: str = "") -> list[float]:
    """The times Prometheus evaluated the group at (its own API, not costgov's reading)."""
    expr = f'costgov:pod_gpu_samples{{costgov_evaluated="true"{match}}}[5h] @ {END}'
    query = urllib.parse.urlencode({"query": expr, "time": str(END)})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=10) as response:
        body = json.load(response)
    return [float(t) for t, _ in body["data"]["result"][0]["values"]]


@pytest.fixture(scope="module", params=["whole", "gap", "twice"])
def ruled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """The history with the rules evaluated over all of it; with an evaluation or two
    missing (Prometheus down from 1.5 h to 3 h in); or twice, at two offsets (the same file loaded
    from two paths: two releases, or a backfill beside the live rules)."""
    copy = tmp_path_factory.mktemp("rules") / "catchup-rules.yaml"
    copy.write_text(RULES.read_text())
    evaluations: Sequence[tuple[Path, int, int]] = {
        "whole": [(RULES, BASE, END)],
        # promtool evaluates within 2-hour blocks: a start whose first evaluation falls in
        # the next block gets none there (seen with 2.42), so the second start is an hour
        "gap": [(RULES, BASE, BASE + 5400), (RULES, BASE + 3 * HOUR, END)],
        "twice": [(RULES, BASE, END), (copy, BASE, END)],
    }[request.param]
    with running_prometheus_with_rules(_history(), evaluations) as url:
        yield request.param, url


def test_a_month_behind_is_counted_from_the_rules_to_the_same_dollars(
    ruled: tuple[str, str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorded_health, "_FAILING", {})
    case, url = ruled
    evaluated = _evaluations(url)
    gaps = {b - a for a, b in itertools.pairwise(evaluated)}
    if case == "twice":  # two offsets, interleaved: read an hour at a time, never summed
        assert len(evaluated) >= 7 and len(gaps) == 2 and sum(gaps) == HOUR
    else:
        assert all(g % HOUR == 0 for g in gaps) and (max(gaps) > HOUR) == (case == "gap")
    snap, catchup, asked = _caught_up(url)
    assert_whole(snap, catchup)  # the moved pod's sums show two nodes: taken again raw
    window = snap.windows["w"]
    # train-1: 8 GPUs for 120 min = 16 GPU-h on node-a at 55.04 $/h / 8 GPUs = 110.08 $
    train1 = [c for c in window.pods if c.usage.pod == "train-1-abc"]
    assert [(c.usage.node, c.usage.gpu_hours) for c in train1] == [("node-a", 16)]
    # 75 % busy throughout; train-2 50 % (a NaN reading left out, settled from raw samples)
    assert window.utilization[("ml-research", "train-1-abc")] == pytest.approx(75)
    assert window.utilization[("ml-research", "train-2-xyz")] == pytest.approx(50)
    # every second of the four hours counted once, the rules' share from their evaluations:
    # each covers the hour before it, from the first that starts after BASE
    assert catchup.counted["recorded"] + catchup.counted["raw"] == 4 * HOUR
    covered = [t for t in evaluated if t - HOUR >= BASE]
    if case != "twice":
        assert catchup.counted["recorded"] == len(covered) * HOUR  # consecutive, one offset
    else:  # one offset's evaluations, an hour each, read after each other; raw between
        assert catchup.counted["recorded"] >= 2 * HOUR
    assert any("costgov:pod_gpu_samples" in e and "sum_over_time" in e for e in asked)
    # healthy rules (an evaluation missing, or two offsets, included) are not said to fail
    assert "recording rule group" not in caplog.text


def test_rules_made_for_another_step_are_not_read(tmp_path: Path) -> None:
    """An operator sampling every 60 s does not read rules made for 30 s (their points are
    not its points): it counts raw samples, to the same dollars."""
    other = tmp_path / "rules.yaml"
    other.write_text(RULES.read_text().replace("step: '60'", "step: '30'"))
    assert other.read_text().count("step: '30'") == 5
    with running_prometheus_with_rules(_history(), [(other, BASE, END)]) as url:
        snap, catchup, _ = _caught_up(url)
    assert_whole(snap, catchup)
    assert catchup.counted == {"recorded": 0, "raw": 4 * HOUR}


@pytest.mark.parametrize(
    ("version", "lines"),
    [("", 0), ("      costgov_rules: '2'\n", 5)],
    ids=["before-versions", "a-later-version"],
)
def test_rules_of_another_version_are_not_read(
    tmp_path: Path,
    version: str,
    lines: int,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rules whose expressions differ from this operator's (an older release's, which had no
    version label, or a later one's) record what it cannot read as its own: it counts raw
    samples, to the same dollars, even with them evaluated over the whole history, and says
    once that the rules and the operator differ."""
    monkeypatch.setattr(recorded_health, "_TOLD", set())
    other = tmp_path / "rules.yaml"
    other.write_text(RULES.read_text().replace("      costgov_rules: '1'\n", version))
    assert other.read_text().count("costgov_rules") == lines
    with running_prometheus_with_rules(_history(), [(other, BASE, END)]) as url:
        assert len(_evaluations(url, f',costgov_rules="{"2" if lines else ""}"')) >= 4
        snap, catchup, _ = _caught_up(url)
    assert_whole(snap, catchup)
    assert catchup.counted == {"recorded": 0, "raw": 4 * HOUR}
    told = [r.getMessage() for r in caplog.records if "none of version 1" in r.getMessage()]
    assert len(told) == 1 and f"version(s) {'2' if lines else 'none'} " in told[0]


def test_a_recorded_chunk_that_keeps_failing_is_counted_from_raw_samples(
    ruled: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Reading the rules fails (a Prometheus overloaded): the chunk is tried again smaller,
    down to one evaluation, whose hour is then read from raw samples: nothing is stuck."""
    _, url = ruled

    async def scenario() -> tuple[Snapshot, CatchUp]:
        Recorded.asked, Recorded.failing = [], "sum_over_time(costgov:pod_gpu_samples{"
        catchup = _catchup(Recorded(Settings(prometheus_url=url)), retry=0.01)
        catchup.want({"w": START}, TO, {})
        await asyncio.wait_for(catchup.settled(), 60)
        return catchup.report(_cycle(TO), {"w": START}), catchup

    snap, catchup = asyncio.run(scenario())
    assert_whole(snap, catchup)
    assert catchup.counted == {"recorded": 0, "raw": 4 * HOUR}
    assert catchup.recorded_chunk < 2880 * 60  # halved from 2 days
    assert "Prometheus did not answer 'sum_over_time(costgov:pod_gpu_" in caplog.text


def test_rules_that_never_all_record_are_not_read_and_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One of the rules records nothing at any evaluation (here left out of the group; in a
    cluster, a rule that times out or hits a sample limit every hour): no hour is read from
    the others, dollars come from raw samples, and the operator says once which rule never
    recorded, instead of catching up more slowly in silence."""
    monkeypatch.setattr(recorded_health, "_FAILING", {})
    rules = yaml.safe_load(RULES.read_text())
    group = rules["groups"][0]
    group["rules"] = [r for r in group["rules"] if r["record"] != "costgov:gpu_util_sum"]
    assert len(group["rules"]) == 4
    broken = tmp_path / "rules.yaml"
    broken.write_text(yaml.safe_dump(rules))
    with running_prometheus_with_rules(_history(), [(broken, BASE, END)]) as url:
        assert len(_evaluations(url, ',costgov_rules="1"')) >= 4
        snap, catchup, _ = _caught_up(url)
        _caught_up(url)  # a second catch-up in the same process: not said again
    assert_whole(snap, catchup)
    assert catchup.counted == {"recorded": 0, "raw": 4 * HOUR}
    told = [r.getMessage() for r in caplog.records if "recorded all 5 rules" in r.getMessage()]
    assert len(told) == 1, told
    assert told[0].startswith("recording rule group costgov.catchup.v1.60s.3600s: 0 of its ")
    assert "(costgov:gpu_util_sum 0/" in told[0]
