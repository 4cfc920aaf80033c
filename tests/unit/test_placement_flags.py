"""Which pods a point-by-point answer cannot place (services/placement.py): lines as
Prometheus returns an instant query of a range vector, written by hand."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from costgov.adapters.prometheus import RangeSeries
from costgov.services.placement import unplaced

T = 1_764_633_600  # a point on the 60 s grid


def line(pod: str, node: str | None, *values: float, start: int = T) -> RangeSeries:
    labels = {"namespace": "ml", "pod": pod} | ({"node": node} if node is not None else {})
    return RangeSeries(labels, tuple((float(start + 60 * i), v) for i, v in enumerate(values)))


def test_one_node_per_pod_is_placed() -> None:
    assert unplaced([line("a", "n1", 8, 8, 8), line("b", "n2", 1, 1)]) == set()


def test_a_pod_on_no_node_holding_gpus_is_not() -> None:
    assert unplaced([line("a", None, 0, 2, 2), line("b", "n1", 1)]) == {("ml", "a")}


def test_a_line_on_no_node_holding_nothing_places_nothing() -> None:
    # Pending at every point: the requests' node is not set yet, and no GPU is held.
    assert unplaced([line("a", None, 0, 0, 0)]) == set()


def test_nan_is_not_taken_for_nothing() -> None:
    assert unplaced([line("a", None, math.nan)]) == {("ml", "a")}


def test_two_nodes_at_one_point_is_not_placed() -> None:
    # the old object on n1 still seen at the second and third points
    old, new = line("a", "n1", 4, 4, 4), line("a", "n2", 4, 4, start=T + 60)
    assert unplaced([old, new]) == {("ml", "a")}


def test_a_pod_that_moved_between_points_is_placed() -> None:
    # n1 at the first point, n2 at the next two: never two nodes at once
    assert unplaced([line("a", "n1", 4), line("a", "n2", 4, 4, start=T + 60)]) == set()


def test_a_point_of_nothing_on_the_other_node_does_not_count() -> None:
    assert unplaced([line("a", "n1", 4, 4), line("a", "n2", 0, 4, start=T)]) == {("ml", "a")}
    assert unplaced([line("a", "n1", 4, 0), line("a", "n2", 0, 4, start=T)]) == set()


def test_the_same_name_in_two_namespaces_is_two_pods() -> None:
    a = RangeSeries({"namespace": "x", "pod": "a", "node": "n1"}, ((T, 1.0),))
    b = RangeSeries({"namespace": "y", "pod": "a", "node": "n2"}, ((T, 1.0),))
    assert unplaced([a, b]) == set()


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.sampled_from([None, "n1", "n2"]),
            st.lists(st.integers(0, 3), min_size=1, max_size=4),
            st.integers(0, 3),
        ),
        max_size=6,
        unique_by=lambda x: (x[0], x[1]),  # Prometheus answers one line per label set
    )
)
def test_flagged_exactly_when_a_point_holds_gpus_on_no_node_or_two(
    lines: list[tuple[str, str | None, list[int], int]],
) -> None:
    series = [line(p, n, *map(float, vs), start=T + 60 * s) for p, n, vs, s in lines]
    expected = set()
    for pod in ("a", "b"):
        held = [(n, T + 60 * (s + i)) for p, n, vs, s in lines if p == pod for i, v in
                enumerate(vs) if v]  # fmt: skip
        times = [t for _, t in held]
        if any(n is None for n, _ in held) or len(times) != len(set(times)):
            expected.add(("ml", pod))
    assert unplaced(series) == expected
