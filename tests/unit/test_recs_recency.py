"""Recency in the confidence: each viewer's older titles weigh less, relative to their own sequence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.recs.confidence import confidence, recency, weigh
from pipeline.recs.pairs import Pairs
from pipeline.settings import TrainerSettings

HOUR = 3_600_000


def pairs_of(user: list[int], seen_hours: list[int], *, n_items: int | None = None) -> Pairs:
    """Pairs sorted by (user, item) as the store hands them out; item k is the k-th pair of its user.

    Each title is one window, started in its hour; titles arrived in the order listed.
    """
    u = np.asarray(user, np.int32)
    order = np.argsort(u, kind="stable")
    u = u[order]
    seen = np.asarray(seen_hours, np.int64)[order] * HOUR
    item = np.concatenate([np.arange(c) for c in np.bincount(u)]).astype(np.int32) if len(u) else u
    n = len(u)
    rng = np.random.default_rng(0)
    n_items = n_items or (int(item.max()) + 1 if n else 0)
    return Pairs(
        u,
        item,
        rng.integers(0, 5_000_000, n).astype(np.int64),
        np.ones(n, np.int64),
        rng.random(n) < 0.3,
        np.ones(n, np.int32),
        seen + HOUR,
        seen,
        order.astype(np.int64),
        [f"u{i}" for i in range(int(u.max()) + 1 if n else 0)],
        [f"c{i}" for i in range(n_items)],
    )


def test_rank_within_each_viewer_in_start_order() -> None:
    # u0: hours 5, 9, 9, 1 (the two of hour 9 arrived in that order) -> started later: 2, 1, 0, 3; u1: 0
    pairs = pairs_of([0, 0, 0, 0, 1], [5, 9, 9, 1, 2])
    np.testing.assert_allclose(recency(pairs, 1.0), [0.25, 0.5, 1.0, 0.125, 1.0])
    np.testing.assert_allclose(recency(pairs, 2.0), [0.5, 2**-0.5, 1.0, 2**-1.5, 1.0])


def test_an_hour_s_titles_fade_in_the_order_they_arrived_not_by_id() -> None:
    """Within an hour the stream's emission order (first events) is the viewer's order."""
    pairs = pairs_of([0, 0, 0], [4, 4, 4])
    reversed_arrival = dataclasses.replace(pairs, first_seq=np.asarray([2, 1, 0], np.int64))
    np.testing.assert_allclose(recency(pairs, 1.0), [0.25, 0.5, 1.0])
    np.testing.assert_allclose(recency(reversed_arrival, 1.0), [1.0, 0.5, 0.25])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 30)), min_size=1, max_size=60),
    st.floats(0.5, 200.0),
)
def test_recency_is_monotone_in_age_and_in_unit_interval(
    entries: list[tuple[int, int]], half_life: float
) -> None:
    user, hours = zip(*entries, strict=True)
    pairs = pairs_of(list(user), list(hours))
    r = recency(pairs, half_life)
    assert r.shape == (len(pairs),)
    assert np.all((r > 0) & (r <= 1))
    for u in np.unique(pairs.user):
        mine = pairs.user == u
        seen, weight = pairs.first_start[mine], r[mine]
        assert np.isclose(weight, 1.0).sum() == 1 and weight[seen == seen.max()].max() == 1.0  # the newest
        older = seen[:, None] < seen[None, :]
        assert np.all(weight[:, None] < weight[None, :], where=older)  # started earlier: strictly less
        assert len(set(weight.tolist())) == len(weight)  # one rank per title, ties broken by arrival


def test_off_is_the_confidence_of_before() -> None:
    pairs = pairs_of([0, 0, 1, 1, 1, 2], [1, 2, 3, 4, 4, 5])
    s = TrainerSettings(alpha=1.5, completion_bonus=0.7)
    assert s.recency_half_life_titles is None  # off by default
    expected = (1.0 + s.alpha * (weigh(pairs, s) + s.completion_bonus * pairs.completed)).astype(np.float32)
    np.testing.assert_array_equal(confidence(pairs, s), expected)


def test_on_fades_only_the_older_titles_toward_one() -> None:
    pairs = pairs_of([0, 0, 0], [1, 2, 3])
    off = TrainerSettings(weighting="binary", alpha=2.0, completion_bonus=0.0)
    on = off.model_copy(update={"recency_half_life_titles": 1.0})
    assert confidence(pairs, off).tolist() == [3.0, 3.0, 3.0]
    assert confidence(pairs, on).tolist() == pytest.approx([1.5, 2.0, 3.0])  # 1 + 2 * 0.5**newer


def test_empty_pairs() -> None:
    pairs = pairs_of([], [])
    assert recency(pairs, 10.0).shape == (0,)
    assert confidence(pairs, TrainerSettings(recency_half_life_titles=10.0)).shape == (0,)
