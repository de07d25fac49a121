"""The demo's personalisation figures: overlap with the popular list, in-cluster shares."""

from __future__ import annotations

import pytest

from pipeline.recs.personalisation import personalisation

ITEMS = {"a1": 0, "a2": 0, "a3": 0, "b1": 1, "b2": 1, "b3": 1}
POPULAR = ["a1", "b1", "a2", "b2"]


def test_a_list_equal_to_the_popular_list_is_not_personal() -> None:
    p = personalisation({"u": POPULAR, "v": POPULAR}, POPULAR, {"u": 0, "v": 1}, ITEMS)
    assert p.viewers == 2 and p.overlap_with_popular == 1.0
    assert p.in_cluster_share == p.popular_in_cluster_share == 0.5 and p.in_cluster_ratio == 1.0


def test_lists_from_the_viewers_cluster() -> None:
    lists = {"u": ["a3", "a2"], "v": ["b3", "b2"]}
    p = personalisation(lists, POPULAR, {"u": 0, "v": 1}, ITEMS)
    assert p.overlap_with_popular == 0.0  # each list against the popular list's first 2: a1, b1
    assert p.in_cluster_share == 1.0 and p.popular_in_cluster_share == 0.5 and p.in_cluster_ratio == 2.0


def test_viewers_without_a_cluster_or_a_list_are_left_out() -> None:
    p = personalisation({"u": ["a3"], "x": ["a1"], "v": []}, POPULAR, {"u": 0, "v": 1}, ITEMS)
    assert p.viewers == 1 and p.to_dict()["in_cluster_share"] == 1.0


def test_no_viewer_and_no_in_cluster_popular_title() -> None:
    assert personalisation({}, POPULAR, {}, ITEMS).in_cluster_ratio is None
    p = personalisation({"u": ["z"]}, ["y"], {"u": 2}, ITEMS)
    assert p.in_cluster_ratio is None and p.in_cluster_share == 0.0


@pytest.mark.parametrize("k", [1, 3])
def test_shares_stay_between_zero_and_one(k: int) -> None:
    p = personalisation({"u": ["a1", "b1", "a3"][:k]}, POPULAR, {"u": 0}, ITEMS)
    assert 0.0 <= p.overlap_with_popular <= 1.0 and 0.0 <= p.in_cluster_share <= 1.0
