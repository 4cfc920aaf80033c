"""The ledger admission judges budgets with: a Job admitted counts until a reconcile has
found it, however the admission and the reconcile interleave.

Found by review: a budget's reconcile replaced every pending admission with the
commitments it derived from the watch cache, so a Job admitted while that reconcile waited
on Prometheus (or not in the cache yet) stopped counting until the next cycle, and the next
admission could spend the same dollars again.

Figures by hand: a 72 h Job on a p5.48xlarge (55.04 $/h) is 72 x 55.04 = $3,962.88; one
that has run 24 h of its 72 still costs 48 x 55.04 = $2,641.92.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costgov.services.ledgers import PENDING_FOR, Ledger

KEY = ("ml-research", "run-a")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RUN = Decimal("3962.88")


def _committed(ledger: Ledger) -> dict[str, Decimal]:
    return dict(ledger.spend().commitments.get(KEY, {}))


def test_a_job_admitted_while_a_reconcile_ran_still_counts() -> None:
    ledger = Ledger()
    ledger.record_budget(KEY, Decimal(0), {"old": Decimal("2641.92")}, {"old"}, T0)
    ledger.admitted(KEY, "new", RUN, T0 + timedelta(seconds=1))
    # the reconcile that started before "new" was admitted ends after: it has not seen it
    later = T0 + timedelta(seconds=2)
    ledger.record_budget(KEY, Decimal(10), {"old": Decimal("2641.92")}, {"old"}, later)
    assert _committed(ledger) == {"old": Decimal("2641.92"), "new": RUN}  # 6,604.80 in all


def test_a_reconcile_that_finds_the_job_takes_over_its_figure() -> None:
    ledger = Ledger()
    ledger.admitted(KEY, "new", RUN, T0)
    day = T0 + timedelta(hours=24)
    ledger.record_budget(KEY, Decimal(0), {"new": Decimal("2641.92")}, {"new"}, day)
    assert _committed(ledger) == {"new": Decimal("2641.92")}
    assert KEY not in ledger.pending
    # a Job that finished commits nothing more; seen finished, it is not pending either
    ledger.record_budget(KEY, Decimal(3000), {}, {"new"}, T0 + timedelta(hours=30))
    assert _committed(ledger) == {}


def test_a_job_admitted_but_never_created_stops_counting_after_a_while() -> None:
    ledger = Ledger()
    ledger.admitted(KEY, "refused-elsewhere", RUN, T0)
    ledger.record_budget(KEY, Decimal(0), {}, set(), T0 + PENDING_FOR - timedelta(seconds=1))
    assert _committed(ledger) == {"refused-elsewhere": RUN}
    ledger.record_budget(KEY, Decimal(0), {}, set(), T0 + PENDING_FOR)
    assert _committed(ledger) == {}
