"""The background catch-up when reading the recording rules fails (services/catching_up.py):
a chunk of one evaluation that fails is counted from raw samples, and so is the day after
it; the rules are read again after that, and a window added later that starts earlier reads
them before the failure. Prometheus is a stand-in here: which stretches are asked for, and
how, is the point (tests/integration/test_catchup_rules.py has the real one)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from costgov.adapters.prometheus import PrometheusSource
from costgov.catalog import load_catalog
from costgov.services import catching_up, recorded, recorded_check
from costgov.services.accounting import WindowSpend
from costgov.services.planning import Plan, chunk_plan
from costgov.services.recorded_check import Check

H, DAY = 3600, 86400
T0 = 1_796_000_400  # a whole hour
OFFSET_MS = 2_102_804  # the group is evaluated 35 min 2.804 s past each hour


class Stand:
    """Evaluations every hour for 10 days; reading them fails from `fail_from` for
    `fail_for` seconds of history; raw samples always answer."""

    def __init__(self, fail_from: int, fail_for: int) -> None:
        self.fail = (fail_from, fail_from + fail_for)
        self.checked: list[int] = []
        self.missing: dict[str, int] = {}
        self.answer: Check | str | None = None
        self.hours = 240
        self.asked: list[tuple[str, int, int, bool]] = []

    async def evaluations(
        self, source: Any, point: int, to: int, step: int
    ) -> tuple[int, list[int], list[int]]:
        times = [(T0 + h * H) * 1000 + OFFSET_MS for h in range(self.hours)]
        return H, times, times

    async def uncovered(self, _: Any, at: int, interval: int, step: int) -> Check | str:
        self.checked.append(at)
        if self.answer is not None:
            return self.answer
        return Check(100, self.missing)  # missing {}: the rules saw every pod

    async def chunk_spend(self, *_: Any, **kw: Any) -> tuple[WindowSpend, dict[Any, Any]] | str:
        start = int(kw["start"].timestamp())
        plan: Plan = kw["recorded"] or chunk_plan(kw["to"], kw["start"], 60, kw["chunk"], "h")
        end = next(iter(plan.ends.values()))
        kind, stop = "raw" if kw["recorded"] is None else "recorded", int(end.timestamp())
        ok = kind == "raw" or stop <= self.fail[0] or start >= self.fail[1]
        self.asked.append((kind, start, stop, ok))
        if not ok:
            return "Prometheus did not answer within 10 s"
        return WindowSpend(kw["start"], end, ()), {}


def _run(stand: Stand, windows: list[Mapping[str, datetime]], to: int) -> catching_up.CatchUp:
    async def scenario() -> catching_up.CatchUp:
        catchup = catching_up.CatchUp(
            cast(PrometheusSource, object()), load_catalog(), step=60, timeout=10,
            most=DAY, retry=0,
        )  # fmt: skip
        for wanted in windows:
            catchup.want(wanted, datetime.fromtimestamp(to, UTC), {})
            await asyncio.wait_for(catchup.settled(), 30)
        return catchup

    return asyncio.run(scenario())


@pytest.fixture
def stand(monkeypatch: pytest.MonkeyPatch) -> Stand:
    made = Stand(T0 + 5 * DAY, 7 * H)  # the rules fail for 7 hours of history, 5 days in
    monkeypatch.setattr(recorded, "evaluations", made.evaluations)
    monkeypatch.setattr(recorded_check, "uncovered", made.uncovered)
    monkeypatch.setattr(catching_up, "chunk_spend", made.chunk_spend)
    return made


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_after_a_one_evaluation_failure_a_day_is_read_raw_then_the_rules_again(
    stand: Stand,
) -> None:
    to = T0 + 9 * DAY
    catchup = _run(stand, [{"w": at(T0)}], to)
    failed = [(start, end) for kind, start, end, ok in stand.asked if not ok]
    # chunks halved after each failure (and grown again after each success: the stretch
    # before the failure is read in smaller and smaller pieces), down to one evaluation
    assert 1 < len(failed) <= 20 and failed[-1][1] - failed[-1][0] == H
    point = failed[-1][0]
    raw = [(start, end) for kind, start, end, _ in stand.asked if kind == "raw" and
           point <= start < point + DAY]  # fmt: skip
    assert raw[0][0] == point and raw[-1][1] == point + DAY  # a day raw from there
    after = [kind for kind, start, _, _ in stand.asked if start >= point + DAY]
    assert after[0] == "recorded"  # then the rules again
    # every second counted once: the chunks that answered tile (T0, to]
    answered = [(start, end) for _, start, end, ok in stand.asked if ok]
    assert answered[0][0] == T0 and answered[-1][1] == to
    assert all(a[1] == b[0] for a, b in itertools.pairwise(answered))
    assert catchup.counted["raw"] >= DAY and catchup.counted["recorded"] >= 7 * DAY
    assert sum(catchup.counted.values()) == to - T0


def test_a_window_added_later_that_starts_earlier_reads_the_rules_before_the_failure(
    stand: Stand,
) -> None:
    late, early = T0 + 5 * DAY, T0
    _run(stand, [{"late": at(late)}, {"late": at(late), "early": at(early)}], T0 + 9 * DAY)
    before = [kind for kind, start, _, _ in stand.asked if early <= start < late - H]
    assert before[0] == "raw" and set(before[1:]) == {"recorded"}  # the head (35 min) raw


def _never_failing(monkeypatch: pytest.MonkeyPatch, days: int) -> Stand:
    stand = Stand(T0 + 100 * DAY, 0)
    stand.hours = days * 24
    monkeypatch.setattr(recorded, "evaluations", stand.evaluations)
    monkeypatch.setattr(recorded_check, "uncovered", stand.uncovered)
    monkeypatch.setattr(catching_up, "chunk_spend", stand.chunk_spend)
    return stand


def _recorded_ends(stand: Stand) -> list[int]:
    return [end for kind, _, end, ok in stand.asked if kind == "recorded" and ok]


def test_complete_rules_are_checked_at_the_far_end_of_each_week_of_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A check costs Prometheus three reads of an hour: while they pass, one vouches for a
    week of history (CHECK_SPACING), made at that week's far end, so every run read has a
    check at or after its last evaluation, at most a week on."""
    stand = _never_failing(monkeypatch, 30)
    catchup = _run(stand, [{"w": at(T0)}], T0 + 30 * DAY)
    ends = _recorded_ends(stand)
    assert len(ends) >= 14 and catchup.counted["recorded"] >= 29 * DAY
    assert 4 <= len(stand.checked) <= 6
    for end in ends:  # the chunk ends at the grid time at or before its run's last evaluation
        last = end * 1000 + OFFSET_MS % 60_000
        assert any(last <= c <= last + 7 * DAY * 1000 for c in stand.checked)


def test_rules_found_missing_pods_are_never_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    stand = _never_failing(monkeypatch, 9)
    stand.missing = {"team-a": 3}
    catchup = _run(stand, [{"w": at(T0)}], T0 + 9 * DAY)
    assert catchup.counted == {"recorded": 0, "raw": 9 * DAY}
    assert catchup.checker.missing == {"team-a": 3} and len(stand.checked) == 1
    catchup.forget()  # a new leader checks again
    assert catchup.checker.missing == {} and catchup.checker.trusted is None


def test_an_hour_with_no_pod_running_vouches_for_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    stand = _never_failing(monkeypatch, 9)
    stand.answer = Check(0, {})
    catchup = _run(stand, [{"w": at(T0)}], T0 + 9 * DAY)
    assert catchup.counted["recorded"] >= 8 * DAY and catchup.checker.trusted is None
    assert len(stand.checked) >= 2 * len(_recorded_ends(stand)) - 1  # far end and own, each run


def test_a_check_prometheus_does_not_answer_is_tried_again_then_its_run_read_raw(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stand = _never_failing(monkeypatch, 3)
    stand.answer = "could not check the recording rules' records: no answer within 10 s"
    catchup = _run(stand, [{"w": at(T0)}], T0 + 3 * DAY)
    assert catchup.counted == {"recorded": 0, "raw": 3 * DAY}
    assert len(stand.checked) % 3 == 0 and len(stand.checked) >= 3  # 3 tries a run
    assert "attempt 3 of 3; read from raw samples" in caplog.text
    assert catchup.recorded_chunk == 2880 * 60  # a check failing is no reason to shrink


def test_memory_is_given_back_after_every_chunk_counted(
    stand: Stand, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a chunk's answers are 10,000 pods' lines at scale: freed once the chunk is added, and
    # given back to the system then (adapters/memory.py), not after a failed chunk
    given: list[int] = []
    monkeypatch.setattr(catching_up, "give_back_memory", lambda: given.append(1) or True)
    _run(stand, [{"w": at(T0)}], T0 + 9 * DAY)
    counted = [ok for _, _, _, ok in stand.asked]
    assert False in counted and len(given) == counted.count(True)
