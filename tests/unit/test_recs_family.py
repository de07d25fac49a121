"""One contract for every recommender family (as ``implicit`` tests every model with one mixin).

The fixture is two taste clusters: users ``a*`` watch ``a`` titles, users
``b*`` watch ``b`` titles, with a seeded random subset each, so every family
has something to learn and every expectation can be stated exactly.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.nearest_neighbours import BM25Recommender
from implicit.utils import ParameterWarning

from pipeline.errors import ConfigError
from pipeline.recs.family import FAMILIES, Family, TooManyItems, load_family, make_family
from pipeline.recs.itemitem import ItemItemFamily, training_matrix
from pipeline.recs.matrix import InteractionStore
from pipeline.settings import TrainerSettings

SETTINGS = TrainerSettings(
    factors=8, iterations=15, regularization=1.0, threads=1, seed=3, ease_lambda=5.0, knn_k=100
)
ITEMS = [f"a{i}" for i in range(8)] + [f"b{i}" for i in range(8)]
Data = tuple[sp.csr_matrix, list[str], list[str]]


def clusters(seed: int = 0, per_cluster: int = 20) -> Data:
    """Users ``a0..`` watch 5 of the ``a`` titles, users ``b0..`` 5 of the ``b`` titles (weights 1-3)."""
    rng = np.random.default_rng(seed)
    users, rows, cols, vals = [], [], [], []
    for group, offset in (("a", 0), ("b", 8)):
        for k in range(per_cluster):
            r = len(users)
            users.append(f"{group}{k}")
            for c in rng.choice(8, size=5, replace=False):
                rows.append(r), cols.append(offset + int(c)), vals.append(float(rng.integers(1, 4)))
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(len(users), len(ITEMS)), dtype=np.float32)
    return matrix, users, list(ITEMS)


def seen_by(data: Data, user: str) -> set[str]:
    matrix, users, items = data
    row = matrix[users.index(user)]
    return {items[c] for c in row.indices}


@pytest.fixture(params=sorted(FAMILIES))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def data() -> Data:
    return clusters()


@pytest.fixture
def fitted(name: str, data: Data) -> Family:
    family = make_family(name, SETTINGS)
    family.fit(data)
    return family


class TestFamilyContract:
    """Every family in :data:`FAMILIES` keeps this contract."""

    def test_is_a_family(self, fitted: Family, name: str) -> None:
        assert isinstance(fitted, Family) and fitted.name == name

    def test_recommends_n_unseen_titles(self, fitted: Family, data: Data) -> None:
        for user in data[1]:
            recs = fitted.recommend(user, 3)
            ids = [r.content_id for r in recs]
            assert len(ids) == 3 == len(set(ids))
            assert not set(ids) & seen_by(data, user)
            assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)

    def test_top_recommendation_is_from_the_users_cluster(self, fitted: Family, data: Data) -> None:
        for user in data[1]:
            assert fitted.recommend_ids([user], 1)[user][0][0] == user[0]

    def test_recommend_ids_agrees_with_recommend(self, fitted: Family, data: Data) -> None:
        lists = fitted.recommend_ids([*data[1], "nobody"], 4)
        assert set(lists) == set(data[1])
        for user in data[1]:
            assert lists[user] == [r.content_id for r in fitted.recommend(user, 4, explain=False)]

    def test_never_more_than_the_unseen_titles(self, fitted: Family, data: Data) -> None:
        user = data[1][0]
        assert len(fitted.recommend_ids([user], 100)[user]) == len(ITEMS) - len(seen_by(data, user))

    def test_unknown_user_gets_nothing(self, fitted: Family) -> None:
        assert fitted.recommend("nobody", 5) == [] and fitted.explain("nobody", "a1") == []

    def test_fold_in_a_new_user(self, fitted: Family) -> None:
        assert fitted.fold_in({"new": {"b1": 2.0, "b2": 1.0, "b3": 1.0, "zzz": 4.0}}) == {"new": 3}
        recs = fitted.recommend("new", 3)
        ids = [r.content_id for r in recs]
        assert len(ids) == 3 and not set(ids) & {"b1", "b2", "b3"}
        assert all(c.startswith("b") for c in ids)
        assert all(set(r.because) <= {"b1", "b2", "b3"} and r.because for r in recs)

    def test_fold_in_replaces_a_history(self, fitted: Family, data: Data) -> None:
        user = data[1][0]  # an "a" viewer who now only watched "b" titles
        assert fitted.fold_in({user: {"b0": 3.0, "b1": 3.0, "b2": 3.0}}) == {user: 3}
        ids = fitted.recommend_ids([user], 3)[user]
        assert all(c.startswith("b") for c in ids) and not {"b0", "b1", "b2"} & set(ids)

    def test_fold_in_of_only_unknown_titles_changes_nothing(self, fitted: Family, data: Data) -> None:
        before = fitted.recommend_ids(data[1], 3)
        assert fitted.fold_in({"new": {"zzz": 1.0}}) == {"new": 0}
        assert fitted.recommend("new") == [] and fitted.recommend_ids(data[1], 3) == before

    def test_save_load_round_trip(self, fitted: Family, data: Data, tmp_path: Path) -> None:
        fitted.fold_in({"new": {"a1": 1.0, "a2": 2.0}})
        path = fitted.save(tmp_path / "model")
        loaded = load_family(path)
        assert loaded.name == fitted.name
        for user in [*data[1], "new"]:
            assert loaded.recommend(user, 5) == fitted.recommend(user, 5)
        assert fitted.save(path) == path  # replacing a saved model works too

    def test_explain_orders_history_by_contribution(self, fitted: Family, data: Data) -> None:
        for user in data[1][:6]:
            history = seen_by(data, user)
            for rec in fitted.recommend(user, 3):
                reasons = fitted.explain(user, rec.content_id, top=len(history))
                shares = [s for _, s in reasons]
                assert reasons and {c for c, _ in reasons} <= history
                assert shares == sorted(shares, reverse=True) and all(s > 0 for s in shares)
                assert rec.because == tuple(c for c, _ in reasons[:3])

    def test_different_recommendations_have_different_reasons(self, fitted: Family) -> None:
        """A viewer of both clusters: each recommendation is explained by its own cluster's titles."""
        fitted.fold_in({"both": {"a0": 2.0, "a1": 2.0, "a2": 2.0, "b0": 2.0, "b1": 2.0, "b2": 2.0}})
        recs = fitted.recommend("both", 6)
        tops = {r.content_id[0]: r.because[0] for r in recs if r.because}
        assert set(tops) == {"a", "b"}, recs  # both clusters recommended, each with a reason
        assert all(r.because[0][0] == r.content_id[0] for r in recs if r.because), recs
        assert tops["a"] != tops["b"]

    def test_deterministic_with_a_seed(self, name: str, data: Data, fitted: Family) -> None:
        again = make_family(name, SETTINGS)
        again.fit(data)
        assert again.recommend_ids(data[1], 5) == fitted.recommend_ids(data[1], 5)

    def test_remove_users(self, fitted: Family, data: Data) -> None:
        gone = data[1][:2]
        assert fitted.remove_users([*gone, "nobody"]) == 2
        assert all(fitted.recommend(u) == [] for u in gone)
        assert fitted.recommend(data[1][2], 3)


DAY_MS = 86_400_000


def windows(user: str, titles: list[str], day: int) -> list[dict[str, object]]:
    """``interaction.v1`` windows of ``user`` watching ``titles`` on ``day``."""
    return [
        {
            "user": user, "content_id": c, "window_start": day * DAY_MS,
            "window_end": day * DAY_MS + 3_600_000, "watched_ms": 1_800_000, "plays": 1, "completed": True,
        }
        for c in titles
    ]  # fmt: skip


def store_of(data: Data) -> InteractionStore:
    """The cluster fixture as windows: the first three titles of each user 90 days before the rest."""
    matrix, users, items = data
    store = InteractionStore()
    for r, user in enumerate(users):
        titles = [items[c] for c in matrix[r].indices]
        store.add_many(windows(user, titles[:3], 1) + windows(user, titles[3:], 91))
    return store


class TestPublishingContract:
    """What the trainer publishes through the seam, the same for every family."""

    def test_recommend_all_agrees_with_recommend(self, name: str, data: Data) -> None:
        family = make_family(name, SETTINGS)
        family.fit(store_of(data))
        everything = family.recommend_all(3, recent_days=None)
        assert set(everything) == set(data[1]) and family.n_users == len(data[1])
        for user, recs in everything.items():
            one = family.recommend(user, 3)
            assert [(r.content_id, r.because) for r in recs.full] == [(r.content_id, r.because) for r in one]
            assert [r.score for r in recs.full] == pytest.approx([r.score for r in one], rel=1e-5)
            assert recs.limited == []

    def test_limited_lists_come_from_recent_titles_only(self, name: str, data: Data) -> None:
        family = make_family(name, SETTINGS)
        family.fit(store_of(data))
        matrix, users, items = data
        for user, recs in family.recommend_all(3, recent_days=30).items():
            recent = {items[c] for c in matrix[users.index(user)].indices[3:]}
            assert recs.limited and not {r.content_id for r in recs.limited} & seen_by(data, user)
            assert all(set(r.because) <= recent for r in recs.limited)

    def test_meta_names_the_family_and_survives_a_save(self, name: str, data: Data, tmp_path: Path) -> None:
        family = make_family(name, SETTINGS)
        family.fit(store_of(data))
        family.metrics["ndcg_at_10"] = 0.5
        meta = family.meta()
        assert meta["family"] == name and meta["version"] == family.version and meta["n_items"] == 16
        assert meta["metrics"] == {"ndcg_at_10": 0.5} and meta["n_interactions"] == 200
        loaded = load_family(family.save(tmp_path / family.version))
        assert loaded.version == family.version and loaded.meta()["metrics"] == {"ndcg_at_10": 0.5}

    def test_popular_counts_distinct_viewers(self, fitted: Family, data: Data) -> None:
        counts = np.asarray((data[0] > 0).sum(axis=0)).ravel()
        popular = fitted.popular(4, min_users=1)
        assert [p.score for p in popular] == sorted(counts.tolist(), reverse=True)[:4]
        assert fitted.popular(100, min_users=int(counts.max()) + 1) == []

    def test_fold_in_records_of_a_new_viewer(self, name: str, data: Data) -> None:
        family = make_family(name, SETTINGS)
        family.fit(store_of(data))
        assert family.fold_in_records({"new": windows("new", ["b1", "b2", "b3", "zzz"], 95)}) == {"new": 3}
        assert "new" in family and all(c.startswith("b") for c in family.recommend_ids(["new"], 3)["new"])
        with pytest.raises(ValueError, match="another user"):
            family.fold_in_records({"new": windows("other", ["b1"], 95)})


def test_unknown_family_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"trainer\.families"):
        make_family("svd", SETTINGS)


def test_ease_is_refused_above_its_item_limit(data: Data) -> None:
    ease = make_family("ease", SETTINGS.model_copy(update={"ease_max_items": len(ITEMS) - 1}))
    with pytest.raises(TooManyItems) as caught:
        ease.fit(data)
    assert caught.value.retryable is False


def test_itemknn_ranks_like_implicit(data: Data) -> None:
    ours = make_family("itemknn", SETTINGS)
    ours.fit(data)
    matrix, users, items = training_matrix(data, SETTINGS)
    theirs = BM25Recommender(K=100, num_threads=1)
    with warnings.catch_warnings():  # implicit 0.7 converts its own COO and warns about it
        warnings.simplefilter("ignore", ParameterWarning)
        theirs.fit(matrix, show_progress=False)
    ids, scores = theirs.recommend(np.arange(len(users)), matrix, N=4)
    for r, user in enumerate(users):
        recs = ours.recommend(user, 4, explain=False)
        np.testing.assert_allclose([x.score for x in recs], scores[r], rtol=1e-5)
        positive = scores[r] > 0  # ties at zero are broken differently
        assert {x.content_id for x in recs if x.score > 0} == {items[i] for i in ids[r][positive]}


def test_als_explain_is_implicits_explain(data: Data) -> None:
    """The ALS family's shares are ``implicit``'s ``explain`` contributions, in the same order."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from pipeline.recs.family_als import AlsFamily

    family = AlsFamily(SETTINGS)
    family.fit(data)
    model = family.model
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(factors=8, regularization=SETTINGS.regularization, alpha=1.0)
    als.user_factors, als.item_factors = model.user_factors, model.item_factors
    for user in ("a0", "b3"):
        row = model.matrix[model.user_ids.index(user)]
        for rec in family.recommend(user, 3):
            _, top, _ = als.explain(0, row, model.item_ids.index(rec.content_id), N=5)
            expected = [(model.item_ids[i], s) for i, s in top if s > 0]
            got = family.explain(user, rec.content_id, top=5)
            assert [c for c, _ in got] == [c for c, _ in expected]
            np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-4)


def test_ease_weights_are_the_closed_form() -> None:
    """B = −P / diag(P) with P = (XᵀX + λI)⁻¹ and a zero diagonal (Steck 2019)."""
    from pipeline.recs.itemitem_fits import ease_weights

    x = sp.random(200, 60, density=0.1, random_state=1, format="csr")
    p = np.linalg.inv((x.T @ x).toarray() + 5.0 * np.eye(60))
    expected = p / -np.diag(p)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(ease_weights(x, 5.0), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["ease", "itemknn"])
def test_explanation_terms_are_the_weight_block(name: str, data: Data) -> None:
    """The gathered ``W[rows][:, cols]`` (explanations of every published list) equals plain slicing."""
    family = make_family(name, SETTINGS)
    family.fit(data)
    assert isinstance(family, ItemItemFamily)
    w = family.weights
    dense = w.toarray() if sp.issparse(w) else np.asarray(w)
    rng = np.random.default_rng(1)
    for _ in range(20):
        rows = np.sort(rng.choice(16, size=int(rng.integers(1, 8)), replace=False))
        cols = rng.choice(16, size=int(rng.integers(1, 10)), replace=False)
        assert np.array_equal(family._terms(rows, cols), dense[np.ix_(rows, cols)].astype(np.float64))
