"""`costgov rules`: the catch-up's recording rules as a rule file, and its bad flags."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from costgov.adapters import promql_rules
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


RECORDED_BY = {"1": "e892883c2c99d98b47d4ec811f7a4cfbef8416ccf27af10a2d01c4ba0789f2f0"}
"""Each rules version's digest: its records, expressions and labels but the version."""


def test_a_change_to_what_the_rules_record_comes_with_a_new_version() -> None:
    """An operator reads only records of its own version: rules whose expressions changed
    under the same version would have it read the old records as the new ones'."""
    (group,) = yaml.safe_load(CHART.read_text())["groups"]
    rules = [
        [r["record"], r["expr"], {k: v for k, v in r["labels"].items() if k != "costgov_rules"}]
        for r in group["rules"]
    ]
    digest = hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()
    assert {r["labels"]["costgov_rules"] for r in group["rules"]} == {promql_rules.VERSION}
    assert RECORDED_BY.get(promql_rules.VERSION) == digest, (
        "what the recording rules record changed: raise promql_rules.VERSION, regenerate "
        "(make manifests) and add the new version's digest to RECORDED_BY"
    )
