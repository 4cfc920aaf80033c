"""`make sim-demo` on the tier's cluster: the story it tells holds (the README offers it as
the way to see the operator at work, so it must not rot unseen)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from . import demo
from .cluster import Sim
from .kube import get, money, running_pods


def test_the_demo_suspends_the_overrunning_job_and_caps_the_model_server(
    sim: Sim, capsys: pytest.CaptureFixture[str]
) -> None:
    # as `make sim-demo` does: a demo namespace left by an earlier run (COSTGOV_SIM_DIR) goes
    sim.cp.kubectl("delete", "namespace", demo.NS, "--ignore-not-found", "--wait=true")
    try:
        demo.training(sim)
        told = capsys.readouterr().out
        # 55.04 $/h on a whole p5.48xlarge: $0.23 every 15 s; the $1.00 budget is spent
        spent = [Decimal(s) for s in re.findall(r"llama-finetune\s+1\.00\s+(\d+\.\d\d)", told)]
        assert len(spent) >= 3 and spent == sorted(spent) and spent[-1] >= 1, told
        assert get(sim, "job", "llama-finetune", demo.NS)["spec"]["suspend"] is True
        assert not running_pods(sim, demo.NS, "job-name=llama-finetune")
        assert "Job suspended by policy demo-platform" in told

        demo.serving(sim)
        told = capsys.readouterr().out
        status = get(sim, "inferencedeployments", "llama-8b-chat", demo.NS)["status"]
        # g6.xlarge spot 0.40 $/h x 730 h = $292 a replica; $600 affords floor(600/292) = 2
        assert status["cappedReplicas"] == 2
        assert money(status["projectedMonthlyCost"]) == Decimal("584.00")  # 2 x 292
        assert money(status["costPerMillionTokens"]) > 0
        assert '"cappedReplicas": 2' in told
    finally:
        sim.cp.kubectl("delete", "namespace", demo.NS, "--wait=true", "--timeout=120s", check=False)
        sim.cp.kubectl("delete", "costpolicy", "demo-platform", "--ignore-not-found", check=False)
