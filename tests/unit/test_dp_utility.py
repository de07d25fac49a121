"""Utility of the DP release at ε = 1: overlap of the released top 20 with the exact top 20.

Figures (README: Trending (differential privacy)) come from these runs.
"""

from __future__ import annotations

import pytest

from pipeline.dp.utility import utility
from pipeline.sources import dataset_path, dataset_root, read_ratings, synthetic_ratings


def _plays(ratings):  # type: ignore[no-untyped-def]
    return [(r.user_id, r.content_id, r.timestamp_s) for r in ratings]


def test_utility_floor_at_a_scale_where_dp_can_work() -> None:
    """20k viewers over a week (the demo's generator): the weekly top 20 is recovered."""
    plays = _plays(synthetic_ratings(users=20_000, items=1000, events_target=400_000, seed=7, days=7))
    week = utility(plays, window="week")
    assert week["windows"] >= 1 and week["overlap_at_n"] >= 0.8, week
    day = utility(plays, window="day")
    assert 0.0 <= day["overlap_at_n"] <= week["overlap_at_n"], day


def test_demo_data_releases_nothing_rare() -> None:
    """The demo's 2k viewers are far too few for τ = 155 at ε = 1: nothing passes (honest figure)."""
    plays = _plays(synthetic_ratings(users=2000, items=1000, events_target=50_000, seed=7))
    week = utility(plays, window="week")
    assert week["windows"] >= 4
    assert week["titles_released_mean"] <= 1.0 and week["overlap_at_n"] <= 0.1, week


@pytest.mark.parametrize("name", ["movielens-100k", "movielens-latest-small"])
def test_movielens_weekly(name: str) -> None:
    path = dataset_path(name)
    if not path.exists():
        pytest.skip(f"{name} not found under {dataset_root()} (set PRIVREC_DATASETS); it is never vendored")
    week = utility(_plays(read_ratings(path, "movielens")), window="week")
    # a few hundred raters spread over weeks: no title reaches ~155 bounded raters in a week
    assert week["windows"] >= 20 and 0.0 <= week["overlap_at_n"] <= 1.0, week
