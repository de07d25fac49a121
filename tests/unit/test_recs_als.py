"""The trained model: top-N, explanations, limited lists, fold-in, erasure, persistence."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from pipeline.recs import InteractionStore, Model, TrainingError, train
from pipeline.recs.artefact import load_model, save_model
from pipeline.settings import TrainerSettings

HOUR = 3_600_000
DAY = 24 * HOUR
SETTINGS = TrainerSettings(factors=8, iterations=15, regularization=5.0, threads=1, seed=3)

Record = dict[str, Any]


def rec(user: str, content: str, hour: int, watched_min: float = 30, completed: bool = False) -> Record:
    return {
        "user": user,
        "content_id": content,
        "window_start": hour * HOUR,
        "window_end": (hour + 1) * HOUR,
        "watched_ms": int(watched_min * 60_000),
        "plays": 1,
        "completed": completed,
        "events": 4,
    }


def clustered(seed: int = 0, users: int = 40, items: int = 12) -> list[Record]:
    """Users ``u0..`` watch 7 of the ``a*`` titles, users from ``users // 2`` on 7 of the ``b*``."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        prefix = "a" if u < users // 2 else "b"
        for i in rng.choice(items, size=7, replace=False).tolist():
            hour = int(rng.integers(0, 10 * 24))
            rows.append(
                rec(f"u{u}", f"{prefix}{i}", hour, float(rng.uniform(10, 60)), bool(rng.random() < 0.3))
            )
    return rows


def build(rows: list[Record], settings: TrainerSettings = SETTINGS) -> Model:
    store = InteractionStore()
    store.add_many(rows)
    return train(store, settings)


@pytest.fixture(scope="module")
def rows() -> list[Record]:
    return clustered()


@pytest.fixture
def model(rows: list[Record]) -> Model:
    return build(rows)


def seen_by(rows: list[Record], user: str) -> set[str]:
    return {r["content_id"] for r in rows if r["user"] == user}


# -- recommendations -------------------------------------------------------


def test_recommend_excludes_seen_and_follows_taste(model: Model, rows: list[Record]) -> None:
    for user, prefix in (("u0", "a"), ("u39", "b")):
        seen = seen_by(rows, user)
        recs = model.recommend(user, 5)
        ids = [r.content_id for r in recs]
        assert len(ids) == 5 and not set(ids) & seen
        assert set(ids) == {f"{prefix}{i}" for i in range(12)} - seen
        assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)


def test_unknown_user_gets_nothing(model: Model) -> None:
    assert model.recommend("nobody", 5) == []


def test_n_larger_than_unseen_catalogue(model: Model, rows: list[Record]) -> None:
    recs = model.recommend("u0", 1000)
    assert len(recs) == model.n_items - len(seen_by(rows, "u0"))


def test_because_only_references_seen_titles(model: Model, rows: list[Record]) -> None:
    recs = model.recommend_all(10)
    assert set(recs) == set(model.user_ids)
    for user, user_recs in recs.items():
        seen = seen_by(rows, user)
        for r in user_recs.full:
            assert 0 < len(r.because) <= 3
            assert set(r.because) <= seen


def test_because_matches_implicit_explain(model: Model) -> None:
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(factors=8, regularization=SETTINGS.regularization, alpha=1.0)
    als.user_factors, als.item_factors = model.user_factors, model.item_factors
    for user in ("u0", "u25"):
        row = model.matrix[model.user_ids.index(user)]
        for r in model.recommend(user, 5):
            _, top, _ = als.explain(0, row, model.item_ids.index(r.content_id), N=3)
            assert r.because == tuple(model.item_ids[i] for i, score in top if score > 0)


def test_limited_list_ignores_old_history(rows: list[Record]) -> None:
    old = [rec("mix", f"a{i}", hour=i, watched_min=60, completed=True) for i in range(6)]
    new = [rec("mix", f"b{i}", hour=100 * 24 + i, watched_min=40) for i in range(3)]
    model = build(rows + old + new)
    user_recs = model.recommend_all(5, recent_days=30)["mix"]
    recent, everything = {"b0", "b1", "b2"}, {r["content_id"] for r in old + new}
    assert user_recs.limited and user_recs.limited != user_recs.full
    assert user_recs.limited[0].content_id.startswith("b")
    for r in user_recs.limited:
        assert r.content_id not in everything
        assert set(r.because) <= recent
    assert any(set(r.because) - recent for r in user_recs.full)


def test_limited_equals_full_when_all_history_is_recent(model: Model) -> None:
    user_recs = model.recommend_all(5, recent_days=365)["u0"]
    assert user_recs.limited == user_recs.full


def test_limited_off(model: Model) -> None:
    assert all(r.limited == [] for r in model.recommend_all(3, recent_days=None).values())


def test_popular_counts_distinct_users(model: Model, rows: list[Record]) -> None:
    counts: dict[str, set[str]] = {}
    for r in rows:
        counts.setdefault(r["content_id"], set()).add(r["user"])
    popular = model.popular(5)
    assert [p.score for p in popular] == sorted((len(v) for v in counts.values()), reverse=True)[:5]
    assert all(p.score == len(counts[p.content_id]) for p in popular)
    assert model.popular(100, min_users=100) == []


# -- updates -----------------------------------------------------------------


def test_fold_in_moves_recs_toward_new_titles(model: Model, rows: list[Record]) -> None:
    before = [r.content_id for r in model.recommend("u0", 5)]
    assert not any(c.startswith("b") for c in before)
    history = [r for r in rows if r["user"] == "u0"]
    history += [rec("u0", f"b{i}", hour=300 + i, watched_min=90, completed=True) for i in range(8)]
    history.append(rec("u0", "brand-new-title", hour=320))
    assert model.fold_in("u0", history) == len(seen_by(history, "u0")) - 1  # unknown title ignored
    after = model.recommend("u0", 5)
    assert sum(r.content_id.startswith("b") for r in after) >= 3
    assert not {r.content_id for r in after} & seen_by(history, "u0")
    assert model.matrix[model.user_ids.index("u0")].nnz == len(seen_by(history, "u0")) - 1


def test_fold_in_adds_a_new_user(model: Model) -> None:
    n = model.n_users
    other = model.recommend("u1", 5)
    assert model.fold_in("newbie", [rec("newbie", f"b{i}", hour=i) for i in range(4)]) == 4
    assert model.n_users == n + 1 and "newbie" in model
    assert all(r.content_id.startswith("b") for r in model.recommend("newbie", 3))
    assert model.recommend("u1", 5) == other


def test_fold_in_rejects_rows_of_another_user(model: Model) -> None:
    with pytest.raises(ValueError, match="another user"):
        model.fold_in("u0", [rec("u1", "a1", hour=1)])


def test_remove_user_leaves_no_trace(model: Model, tmp_path: Path) -> None:
    n_users, nnz = model.n_users, model.matrix.nnz
    row = model.user_ids.index("u3")
    own = model.matrix[row].nnz
    vector_next = model.user_factors[row + 1].copy()
    other = model.recommend("u30", 5)
    assert model.remove_user("u3") is True
    assert model.remove_user("u3") is False
    assert "u3" not in model and "u3" not in model.user_ids
    assert model.user_factors.shape[0] == model.matrix.shape[0] == n_users - 1
    assert model.matrix.nnz == nnz - own
    np.testing.assert_array_equal(model.user_factors[row], vector_next)
    assert model.recommend("u3", 5) == []
    assert "u3" not in model.recommend_all(3)
    assert model.recommend("u30", 5) == other
    save_model(model, tmp_path / "m")
    assert b"u3\x00" not in (tmp_path / "m" / "model.npz").read_bytes().replace(b"\x00\x00\x00", b"\x00")
    assert "u3" not in load_model(tmp_path / "m").user_ids


# -- training and persistence -------------------------------------------------------


def test_metadata(model: Model, rows: list[Record]) -> None:
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", model.version)
    meta = model.meta()
    assert meta["n_users"] == 40 and meta["n_items"] == 24
    assert meta["n_interactions"] == len({(r["user"], r["content_id"], r["window_start"]) for r in rows})
    assert meta["settings"]["factors"] == 8
    assert abs(meta["trained_at"] - time.time() * 1000) < 60_000


def test_training_is_deterministic(rows: list[Record]) -> None:
    a, b = build(rows), build(rows)
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)


def test_train_from_csr_tuple(model: Model) -> None:
    bare = train((model.matrix, model.user_ids, model.item_ids), SETTINGS)
    assert bare.last_seen is None
    assert [r.content_id for r in bare.recommend("u0", 5)] == [r.content_id for r in model.recommend("u0", 5)]
    assert bare.recommend_all(3)["u0"].limited == []


def test_empty_store_is_a_training_error() -> None:
    with pytest.raises(TrainingError):
        train(InteractionStore(), SETTINGS)


def test_save_load_roundtrip(model: Model, tmp_path: Path) -> None:
    model.metrics["ndcg_at_10"] = 0.25
    target = tmp_path / "models" / "current"
    save_model(model, target)
    save_model(model, target)  # replacing an existing artefact
    assert sorted(p.name for p in target.parent.iterdir()) == ["current"]
    loaded = load_model(target)
    assert loaded.version == model.version and loaded.metrics == {"ndcg_at_10": 0.25}
    assert loaded.user_ids == model.user_ids and loaded.item_ids == model.item_ids
    np.testing.assert_array_equal(loaded.user_factors, model.user_factors)
    np.testing.assert_array_equal(loaded.last_seen, model.last_seen)
    assert (loaded.matrix != model.matrix).nnz == 0
    assert loaded.recommend_all(5) == model.recommend_all(5)
    assert loaded.settings == model.settings


@pytest.mark.slow
def test_recommend_all_demo_size_is_quick() -> None:
    rng = np.random.default_rng(1)
    n_users, n_items, per_user = 2000, 1000, 40
    store = InteractionStore()
    items = (rng.zipf(1.3, size=(n_users, per_user)) % n_items).astype(str)
    store.add_arrays(
        np.repeat([f"p{u}" for u in range(n_users)], per_user),
        items.ravel(),
        np.tile(np.arange(per_user) * HOUR, n_users),
        np.tile(np.arange(1, per_user + 1) * HOUR, n_users),
        rng.integers(0, 3_000_000, n_users * per_user),
        np.ones(n_users * per_user, np.int32),
        rng.random(n_users * per_user) < 0.3,
    )
    started = time.perf_counter()
    model = train(store, TrainerSettings(threads=0))
    recs = model.recommend_all(50, recent_days=1)
    assert len(recs) == model.n_users
    assert time.perf_counter() - started < 20  # ~3-5 s on 2 cores; generous for shared CI


@pytest.mark.parametrize(
    ("weighting", "half_life"),
    [("log", None), ("linear", None), ("binary", None), ("bm25", None), ("log", 3.0)],
)
def test_fold_in_of_unchanged_history_keeps_the_row(
    rows: list[Record], weighting: str, half_life: float | None
) -> None:
    update = {"weighting": weighting, "recency_half_life_titles": half_life}
    model = build(rows, SETTINGS.model_copy(update=update))
    row = model.user_ids.index("u5")
    before = model.matrix[row].toarray()
    model.fold_in("u5", [r for r in rows if r["user"] == "u5"])
    np.testing.assert_allclose(model.matrix[model.user_ids.index("u5")].toarray(), before, rtol=1e-6)


def test_bm25_model_roundtrip_keeps_its_norms(rows: list[Record], tmp_path: Path) -> None:
    model = build(rows, SETTINGS.model_copy(update={"weighting": "bm25"}))
    assert model.bm25_norm is not None and len(model.bm25_norm) == model.n_items
    save_model(model, tmp_path / "m")
    np.testing.assert_array_equal(load_model(tmp_path / "m").bm25_norm, model.bm25_norm)


def test_prune_models_keeps_the_named_and_newest(tmp_path):
    import os

    from pipeline.recs.artefact import prune_models

    for i, name in enumerate(["a", "b", "c", "d"]):
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (1_000 + i, 1_000 + i))
    (tmp_path / ".d.tmp").mkdir()  # a save in progress is never touched
    assert prune_models(tmp_path, keep="a", newest=2) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".d.tmp", "a", "c", "d"]
    assert prune_models(tmp_path, keep="d") == ["a", "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".d.tmp", "d"]
    assert prune_models(tmp_path / "missing", keep="x") == []
