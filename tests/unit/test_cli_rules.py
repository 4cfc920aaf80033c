"""`costgov rules`: the catch-up's recording rules as a rule file, and its bad flags."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from costgov.cli import main

CHART = Path(__file__).parents[2] / "charts" / "costgov" / "files" / "catchup-rules.yaml"


def test_the_default_is_the_charts_file_and_check_says_when_it_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules"]) == 0
    assert capsys.readouterr().out == CHART.read_text()
    assert main(["rules", "--output", str(CHART), "--check"]) == 0
    stale = tmp_path / "rules.yaml"
    stale.write_text(CHART.read_text().replace("3600s", "1800s"))
    assert main(["rules", "--output", str(stale), "--check"]) == 1
    assert "differs from `costgov rules`" in capsys.readouterr().err


def test_another_step_gets_rules_of_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--step", "30", "--interval", "1800"]) == 0
    (group,) = yaml.safe_load(capsys.readouterr().out)["groups"]
    assert group["name"] == "costgov.catchup.v1.30s.1800s" and group["interval"] == "1800s"
    assert {r["labels"]["step"] for r in group["rules"]} == {"30"}
    assert {r["labels"]["costgov_rules"] for r in group["rules"]} == {"1"}  # the version
    sampled = [r["expr"] for r in group["rules"] if r["record"].startswith("costgov:gpu_")]
    assert len(sampled) == 2 and all("[1799999ms:30s]" in e for e in sampled)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--check"], "--check compares --output FILE"),
        (["--step", "0"], "--step 0: expected seconds, more than 0"),
        (["--step", "-60"], "--step -60: expected seconds, more than 0"),
        (["--interval", "90"], "--interval 90: expected a multiple of the sample step (60s)"),
        (["--interval", "30"], "--interval 30: expected a multiple"),
        (["--interval", "172800"], "at most 1440 steps (86400s)"),
        (["--output", "/nonexistent/dir/rules.yaml"], "--output /nonexistent/dir/rules.yaml: No"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and not captured.out
