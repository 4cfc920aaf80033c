"""High availability on the simulated cluster: replicas of `costgov run` under the chart's
ServiceAccount, electing a leader with the chart's Lease (tests/sim/ha.py has the Service
and the slow Prometheus this scenario uses).

1. B and C run; B leads. A Job burns through a $1.00 budget at 55.04 $/h (p5.48xlarge).
   Once the 50 % threshold is announced, B is killed with SIGKILL while a query of its
   accounting cycle is in flight; C takes over (the time is printed) and goes on: spend
   to date stays what the node price and the elapsed time say (the tolerance of
   test_training.py), the Job is suspended once, and each threshold is announced once.
2. A rolling update: D starts and joins the Service; C leaves the Service (1 s late, as
   endpoints propagate), serves on for the chart's shutdownDelaySeconds (preStop), then gets
   SIGTERM and releases the Lease. The pre-stop hook's SIGUSR1 makes C close each webhook
   connection after its answer, so the apiserver (which keeps one connection open, pinned
   to one replica) reconnects through the Service to D. Admission requests go through the apiserver to the
   Service all along (dry-run TrainingJobBudgets: failurePolicy Fail): none fails.

The sim's own operator is stopped for the scenario (SIGTERM) and started again after it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from tests.e2e.operating import LEASE, NS, Operator

from .cluster import Sim
from .ha import (
    Service,
    SlowPrometheus,
    events,
    leads,
    replica,
    restart_sim_operator,
    stop_sim_operator,
    webhooks_to,
)
from .kube import (
    Namespaces,
    budget,
    get,
    money,
    overrunning_p5_job,
    running_pods,
    status,
    wait_for,
)

TJB = "trainingjobbudgets.costgov.io"
LAG_SECONDS = 20  # as tests/sim/test_training.py: one 15 s sample step plus one scrape
HOURLY = Decimal("55.04")
SHUTDOWN_DELAY = 5  # the chart's shutdownDelaySeconds


@pytest.fixture
def service(sim: Sim) -> Iterator[Service]:
    """The sim's operator stopped, the webhooks behind a Service; all back as before after."""
    stop_sim_operator(sim)
    svc = Service()
    before = webhooks_to(sim, svc.port)
    try:
        yield svc
    finally:
        webhooks_to(sim, before)
        svc.close()
        restart_sim_operator(sim)


class Admissions:
    """Dry-run TrainingJobBudgets through the apiserver, back to back, in a thread."""

    def __init__(self, sim: Sim, ns: str) -> None:
        self.api = client.CustomObjectsApi(config.new_client_from_config(str(sim.cp.kubeconfig)))
        self.ns, self.sent = ns, 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            body = budget(f"probe-{self.sent}", self.ns, "100")
            try:
                self.api.create_namespaced_custom_object(
                    "costgov.io", "v1alpha1", self.ns, "trainingjobbudgets", body, dry_run="All"
                )
            except ApiException as exc:
                self.failed.append(f"{exc.status}: {str(exc.body)[:300]}")
            self.sent += 1
            time.sleep(0.02)

    def __enter__(self) -> Admissions:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _policy() -> dict[str, object]:
    """Enforce, suspend when a budget is used up (as in test_training.py)."""
    return {
        "apiVersion": "costgov.io/v1alpha1",
        "kind": "CostPolicy",
        "metadata": {"name": "sim-ha"},
        "spec": {
            "mode": "enforce",
            "scope": {"namespaceSelector": {"matchLabels": {"scenario": "ha"}}},
            "budget": {"amount": 1000000, "onExceeded": "suspend"},
        },
    }


def _start(pod: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(pod["status"]["startTime"]))  # type: ignore[index]


def _thresholds(sim: Sim, ns: str) -> list[int]:
    found = events(sim, ns, "TrainingJobBudget", "ha", "BudgetThresholdCrossed")
    return sorted(int(e["message"].split("%")[0].rsplit(" ", 1)[1]) for e in found)


def _holder(sim: Sim) -> str:
    return str(get(sim, "lease", LEASE, NS)["spec"].get("holderIdentity") or "")


def _kill_mid_cycle(b: Operator, slow: SlowPrometheus, sim: Sim) -> float:
    """SIGKILL to the leader while one of its cycle's queries is in flight."""
    wait_for(lambda: slow.in_flight > 0, "a cycle under way", sim, timeout=60, every=0.02)
    assert b.proc is not None
    b.proc.kill()
    killed = time.monotonic()
    b.proc.wait()
    return killed


def test_the_leader_dies_mid_cycle_and_another_carries_on(
    sim: Sim, namespaces: Namespaces, service: Service
) -> None:
    slow = SlowPrometheus(sim.prometheus_url, delay=1.5)
    ns = namespaces("sim-ha", scenario="ha")
    b = replica(sim, slow.url)
    wait_for(lambda: leads(b), "B leads", sim, timeout=60, every=0.2)
    c = replica(sim, slow.url)
    service.add(b.port)
    service.add(c.port)
    try:
        sim.cp.apply(_policy())
        pod = overrunning_p5_job(sim, ns, "ha")
        wait_for(lambda: _thresholds(sim, ns) == [50], "50 % announced", sim, timeout=120)
        assert leads(b) and not leads(c)

        killed_at, wall = _kill_mid_cycle(b, slow, sim), datetime.now(UTC)
        service.remove(b.port)
        time.sleep(1)  # a status patch B sent before it died has landed by now, or never
        left = status(sim, TJB, "ha", ns)["accounting"]  # where B's accounting stands
        wait_for(lambda: leads(c), "C leads", sim, timeout=60, every=0.1)
        failover = time.monotonic() - killed_at
        print(f"\nfailover: C leads {failover:.1f} s after B was killed mid-cycle (15 s lease)")
        assert _holder(sim) == f"costgov-{c.port}"
        assert failover < 60  # generous: the figure above is what counts (target <= 20 s)

        after = wait_for(
            lambda: (s := status(sim, TJB, "ha", ns)).get("figuresAsOf")
            and datetime.fromisoformat(s["figuresAsOf"]) > wall and s,
            "C's first figures", sim, timeout=60, every=0.5,
        )  # fmt: skip
        ran = (datetime.fromisoformat(after["figuresAsOf"]) - _start(pod)).total_seconds()
        expected = HOURLY * Decimal(ran) / 3600
        print(f"spend after failover: {after['spent']} for {ran:.0f} s, expected {expected:.2f}")
        assert abs(money(after["spent"]) - expected) <= HOURLY * LAG_SECONDS / 3600
        # Exactly once across the failover: C resumes from B's cursor, and between the two
        # cursors the pod held its 8 GPUs at every sample point, so the spend added is the
        # node's price for exactly that span: (c1 - c0) s x 55.04 $/h / 3600. One interval
        # lost or counted twice (10 s here: $0.15) would show; the tolerance is rounding.
        took = after["accounting"]
        span = datetime.fromisoformat(took["cursor"]) - datetime.fromisoformat(left["cursor"])
        added = Decimal(took["spent"]) - Decimal(left["spent"])
        exact = HOURLY * Decimal(int(span.total_seconds())) / 3600
        print(
            f"across the failover: {added:.6f} added over {span.total_seconds():.0f} s, "
            f"exactly {exact:.6f}"
        )
        assert span.total_seconds() > 0 and abs(added - exact) < Decimal("0.000001")

        wait_for(lambda: get(sim, "job", "train", ns)["spec"].get("suspend") is True,
                 "Job suspended", sim, timeout=150)  # fmt: skip
        wait_for(lambda: not running_pods(sim, ns, "job-name=train") or None, "pods gone", sim)
        time.sleep(25)  # two more cycles: nothing is suspended or announced again
        suspended = events(sim, ns, "Job", "train", "SuspendedOverBudget")
        assert len(suspended) == 1 and suspended[0].get("count", 1) == 1
        assert get(sim, "job", "train", ns)["metadata"]["generation"] == 2  # one spec change
        assert _thresholds(sim, ns) == [50, 80, 95, 100]
        assert money(status(sim, TJB, "ha", ns)["spent"]) >= Decimal("1.00")

        _rolling_update(sim, service, c, slow, ns)
    finally:
        for op in (b, c):
            op.stop()
        slow.close()
        sim.cp.kubectl("delete", "costpolicy", "sim-ha", "--ignore-not-found", "--wait=false")


def _rolling_update(sim: Sim, service: Service, old: Operator, slow: SlowPrometheus,
                    ns: str) -> None:  # fmt: skip
    with Admissions(sim, ns) as load:
        time.sleep(3)
        new = replica(sim, slow.url)
        try:
            service.add(new.port)  # ready: it listens
            time.sleep(3)
            service.remove(old.port, lag=1.0)  # the pod is deleting: endpoints follow
            assert old.proc is not None
            old.proc.send_signal(signal.SIGUSR1)  # the chart's preStop: drain, then sleep
            time.sleep(SHUTDOWN_DELAY)
            stopped = time.monotonic()
            old.stop()  # SIGTERM: releases the Lease
            wait_for(lambda: leads(new), "the new replica leads", sim, timeout=60, every=0.1)
            handover = time.monotonic() - stopped
            time.sleep(3)
        finally:
            load.__exit__()
            new.stop()
    print(f"rolling update: {load.sent} admission requests, {len(load.failed)} failed; "
          f"by replica {service.served}; the new one led {handover:.1f} s after SIGTERM")  # fmt: skip
    assert load.failed == []
    assert load.sent > 100
    assert service.served.get(old.port) and service.served.get(new.port)
