"""The second round's batches of pod names (services/querying.py): 200 names a query, and
one query for every pod past five batches, so a cycle's queries stay few."""

from __future__ import annotations

from costgov.services.planning import name_batches


def test_names_in_batches_of_200() -> None:
    names = [f"pod-{i:04d}" for i in range(401)]
    batches = name_batches(names)
    assert [len(b or []) for b in batches] == [200, 200, 1]
    assert [n for b in batches for n in b or []] == names


def test_five_batches_at_most_then_one_query_for_every_pod() -> None:
    assert len(name_batches([f"p-{i}" for i in range(1000)])) == 5  # 5 x 200
    assert name_batches([f"p-{i}" for i in range(1001)]) == [None]


def test_no_names_no_query() -> None:
    assert name_batches([]) == []
