"""Temporal split and ranking metrics against hand-computed values; the MovieLens comparison."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest

from pipeline.recs.evaluate import evaluate, ndcg_at_k, precision_at_k, temporal_split
from pipeline.sources import Rating, dataset_path, dataset_root, read_ratings


def test_ndcg_hand_computed() -> None:
    # hits at ranks 2 and 4; 3 relevant titles, so the ideal puts hits at ranks 1-3
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(["a", "b", "c", "d"], {"b", "d", "x"}, k=4) == pytest.approx(dcg / idcg)
    assert dcg / idcg == pytest.approx(0.498189, abs=1e-6)  # 1.061606 / 2.130930


def test_ndcg_ideal_uses_min_k_relevant() -> None:
    relevant = {f"r{i}" for i in range(20)}
    assert ndcg_at_k([f"r{i}" for i in range(10)], relevant, k=10) == pytest.approx(1.0)
    # one relevant title found at rank 1 is perfect when it is the only one
    assert ndcg_at_k(["x", "y"], {"x"}, k=10) == pytest.approx(1.0)
    assert ndcg_at_k(["y", "x"], {"x"}, k=10) == pytest.approx(1 / math.log2(3))


def test_ndcg_edge_cases() -> None:
    assert ndcg_at_k(["a", "b"], set(), k=10) == 0.0
    assert ndcg_at_k([], {"a"}, k=10) == 0.0
    assert ndcg_at_k(["b", "a"], {"a"}, k=1) == 0.0  # the hit is beyond k


def test_precision_at_k() -> None:
    assert precision_at_k(["a", "b", "c", "d"], {"b", "d", "x"}, k=4) == 0.5
    assert precision_at_k(["a", "b", "c", "d"], {"b", "d"}, k=10) == pytest.approx(0.2)  # short list
    assert precision_at_k(["b", "d", "a"], {"b", "d"}, k=1) == 1.0


def test_temporal_split_holds_out_the_newest_fifth() -> None:
    ratings = [Rating("u1", f"c{i}", 4.0, 1000 - i) for i in range(10)]  # c9 is the oldest
    ratings += [Rating("solo", "c0", 5.0, 5)]
    split = temporal_split(ratings, 0.2)
    assert split.heldout == {"u1": {"c0", "c1"}}
    assert {r.content_id for r in split.train if r.user_id == "u1"} == {f"c{i}" for i in range(2, 10)}
    assert Rating("solo", "c0", 5.0, 5) in split.train  # fewer than 2: train only


def test_temporal_split_small_users_hold_out_one() -> None:
    ratings = [Rating("u", "a", 1.0, 1), Rating("u", "b", 1.0, 2)]
    split = temporal_split(ratings, 0.2)
    assert split.heldout == {"u": {"b"}} and split.train == [ratings[0]]


def test_temporal_split_on_interactions_drops_rewatched_titles() -> None:
    def rec(content: str, end: int) -> dict[str, object]:
        return {"user": "p", "content_id": content, "window_end": end}

    rows = [rec("a", 1), rec("b", 2), rec("c", 3), rec("a", 9), rec("d", 10)]
    split = temporal_split(rows, 0.4)
    assert [r["content_id"] for r in split.train] == ["a", "b", "c"]
    assert split.heldout == {"p": {"d"}}  # "a" was already watched in the training part


def test_temporal_split_rejects_bad_fraction() -> None:
    with pytest.raises(ValueError):
        temporal_split([], 1.0)


class FixedRecs:
    def __init__(self, recs: dict[str, list[str]]) -> None:
        self.recs = recs

    def recommend_ids(self, pseudonyms: Iterable[str], n: int = 10) -> dict[str, list[str]]:
        return {p: self.recs[p][:n] for p in pseudonyms if p in self.recs}


def test_evaluate_averages_over_known_users() -> None:
    model = FixedRecs({"u1": ["a", "b"], "u2": ["x", "y"]})
    result = evaluate(model, {"u1": {"a"}, "u2": {"y"}, "unknown": {"z"}})
    assert result["users"] == 2
    assert result["ndcg_at_10"] == pytest.approx((1.0 + 1 / math.log2(3)) / 2)
    assert result["precision_at_10"] == pytest.approx(0.1)


@pytest.mark.dataset
@pytest.mark.slow
@pytest.mark.parametrize("name", ["movielens-100k", "movielens-latest-small"])
def test_pipeline_beats_raw_ratings_baseline_on_movielens(name: str) -> None:
    from tests.support.pipeline_eval import simulate_pipeline_eval

    path = dataset_path(name)
    if not path.is_dir():
        pytest.skip(f"{name} not found under {dataset_root()} (set PRIVREC_DATASETS); it is never vendored")
    result = simulate_pipeline_eval(read_ratings(path, "movielens"))
    assert result["late"] == 0 and result["users"] == result["heldout_users"]
    assert result["ratio"] >= 1.0, result
