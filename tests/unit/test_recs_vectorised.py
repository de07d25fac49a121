"""The store's vectorised paths (hashed id interning, packed-key sorts) against plain references."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipeline.recs import InteractionStore, _factorise, _order, train
from pipeline.recs import matrix as matrix_module
from pipeline.recs.evaluate import temporal_split
from pipeline.settings import TrainerSettings

HOUR = 3_600_000
FIELDS = ("user", "content_id", "window_start", "window_end", "watched_ms", "plays", "completed")
COLUMNS = ("users", "content_ids", "window_start", "window_end", "watched_ms", "plays", "completed")

Record = dict[str, Any]


def random_strings(rng: np.random.Generator, n: int, dtype: str, alphabet: str = "ab\x00c") -> np.ndarray:
    pool = ["".join(rng.choice(list(alphabet), int(rng.integers(0, 6)))) for _ in range(max(1, n // 3))]
    return np.asarray(pool, dtype=dtype)[rng.integers(0, len(pool), n)]


@pytest.mark.parametrize("dtype", ["U1", "U2", "U3", "U5", "U8", "U13"])
@pytest.mark.parametrize("n", [1, 2, 7, 300, 70_000])
def test_factorise_matches_np_unique(dtype: str, n: int) -> None:
    values = random_strings(np.random.default_rng(n), n, dtype)
    assert _factorise._groups(values) is not None  # the hashed path, not the fallback
    uniques, inverse = _factorise.factorise(values)
    expected_uniques, expected_inverse = np.unique(values, return_inverse=True)
    assert uniques.dtype == expected_uniques.dtype
    assert uniques.tolist() == expected_uniques.tolist()
    assert inverse.tolist() == expected_inverse.tolist()


def test_factorise_of_strided_input() -> None:
    values = random_strings(np.random.default_rng(1), 1000, "U6")[::3]
    uniques, inverse = _factorise.factorise(values)
    assert (uniques[inverse] == values).all()
    assert uniques.tolist() == sorted(set(values.tolist()))


def test_hash_collisions_fall_back_to_np_unique(monkeypatch: pytest.MonkeyPatch) -> None:
    values = random_strings(np.random.default_rng(2), 500, "U4")
    monkeypatch.setattr(_factorise, "_hash_rows", lambda words: np.zeros(len(words), np.uint64))
    assert _factorise._groups(values) is None
    uniques, inverse = _factorise.factorise(values)
    assert (uniques[inverse] == values).all()
    assert uniques.tolist() == sorted(set(values.tolist()))
    codes = _factorise.intern_codes(values, lambda ids: np.arange(100, 100 + len(ids), dtype=np.int32))
    assert codes.tolist() == (inverse + 100).tolist()


def test_intern_codes_numbers_distinct_ids_in_sorted_order() -> None:
    seen: list[list[str]] = []

    def intern(ids: list[str]) -> np.ndarray:
        seen.append(ids)
        return np.arange(10, 10 + len(ids), dtype=np.int32)

    codes = _factorise.intern_codes(np.asarray(["b", "a", "c", "a", "b"]), intern)
    assert seen == [["a", "b", "c"]]
    assert codes.dtype == np.int32 and codes.tolist() == [11, 10, 12, 10, 11]


def key_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    """Keys hitting each path: one packed sort, stepped keys, two passes, and the lexsort fallback."""
    rng = np.random.default_rng(3)
    cases = []
    for n in (0, 1, 2, 3, 50, 5000):
        cases += [
            (rng.integers(-5, 5, n), rng.integers(-3, 3, n)),  # one pass
            (rng.integers(0, 40, n), 1_700_000_000_000 + rng.integers(0, 720, n) * HOUR),  # stepped
            (rng.integers(0, 2**40, n), rng.integers(0, 2**40, n)),  # two passes
            (rng.integers(-(2**62), 2**62, n), rng.integers(0, 3, n)),  # too wide: lexsort
            (rng.integers(-(2**20), 2**20, n) * (3 * 2**41), rng.integers(0, 3, n)),  # span over 2**63
            (np.full(n, 7), np.full(n, -2)),  # constant
            (rng.integers(0, 4, n).astype(np.int32), rng.integers(0, 2**62, n)),
        ]
    return cases


@pytest.mark.parametrize(("primary", "secondary"), key_cases())
def test_lex_order_matches_lexsort(primary: np.ndarray, secondary: np.ndarray) -> None:
    assert _order.lex_order(primary, secondary).tolist() == np.lexsort((secondary, primary)).tolist()


@pytest.mark.parametrize(("primary", "secondary"), key_cases())
def test_latest_of_each_key_keeps_the_last_copy(primary: np.ndarray, secondary: np.ndarray) -> None:
    latest: dict[tuple[int, int], int] = {}
    for row, key in enumerate(zip(primary.tolist(), secondary.tolist(), strict=True)):
        latest[key] = row
    expected = sorted(latest.items())
    kept = _order.latest_of_each_key(primary, secondary)
    assert kept.rows.tolist() == [row for _, row in expected]
    assert kept.primary.tolist() == [p for (p, _), _ in expected]
    assert kept.secondary.tolist() == [s for (_, s), _ in expected]
    assert kept.primary.dtype == kept.secondary.dtype == np.int64


def replayed_records(seed: int, n: int = 3000) -> list[Record]:
    """Random windows where about a third re-emit an earlier key with new values."""
    rng = np.random.default_rng(seed)
    rows: list[Record] = []
    for k in range(n):
        if rows and rng.random() < 0.35:
            old = rows[int(rng.integers(0, len(rows)))]
            user, content, hour = old["user"], old["content_id"], old["window_start"] // HOUR
        else:
            user, content, hour = (
                f"p{rng.integers(0, 60)}",
                f"t{rng.integers(0, 40)}",
                int(rng.integers(0, 500)),
            )
        rows.append(
            {
                "user": user,
                "content_id": content,
                "window_start": hour * HOUR,
                "window_end": (hour + 1) * HOUR,
                "watched_ms": int(rng.integers(0, HOUR)),
                "plays": int(rng.integers(0, 3)),
                "completed": bool(rng.random() < 0.3),
                "events": k,
            }
        )
    return rows


def reference(rows: list[Record]) -> dict[tuple[str, str, int], Record]:
    """The latest record of each (user, content, window_start) key."""
    latest: dict[tuple[str, str, int], Record] = {}
    for r in rows:
        latest[(r["user"], r["content_id"], r["window_start"])] = {f: r[f] for f in FIELDS}
    return latest


def reference_pairs(latest: dict[tuple[str, str, int], Record]) -> dict[tuple[str, str], tuple[int, ...]]:
    out: dict[tuple[str, str], list[int]] = {}
    for (user, content, _), r in latest.items():
        agg = out.setdefault((user, content), [0, 0, 0, 0, 0])
        agg[0] += r["watched_ms"]
        agg[1] += r["plays"]
        agg[2] |= r["completed"]
        agg[3] += 1
        agg[4] = max(agg[4], r["window_end"])
    return {k: tuple(v) for k, v in out.items()}


def store_pairs(store: InteractionStore) -> dict[tuple[str, str], tuple[int, ...]]:
    p = store.pairs()
    assert all(np.diff(p.user.astype(np.int64) * len(p.item_ids) + p.item) > 0)  # sorted, one per pair
    return {
        (p.user_ids[u], p.item_ids[i]): (w, pl, int(c), n, s)
        for u, i, w, pl, c, n, s in zip(
            p.user.tolist(),
            p.item.tolist(),
            p.watched_ms.tolist(),
            p.plays.tolist(),
            p.completed.tolist(),
            p.windows.tolist(),
            p.last_seen.tolist(),
            strict=True,
        )
    }


def store_records(store: InteractionStore) -> dict[tuple[str, str, int], Record]:
    out = {}
    for user in store.users():
        records = store.records(user)
        keys = [(r["content_id"], r["window_start"]) for r in records]
        assert len(set(keys)) == len(keys)  # one row per window
        out.update({(r["user"], r["content_id"], r["window_start"]): r for r in records})
    return out


def as_columns(rows: list[Record]) -> dict[str, np.ndarray]:
    return {col: np.asarray([r[f] for r in rows]) for col, f in zip(COLUMNS, FIELDS, strict=True)}


def fill(rows: list[Record], how: str) -> InteractionStore:
    store = InteractionStore()
    if how == "add":
        for r in rows:
            store.add(r)
    elif how == "add_many":
        store.add_many(rows)
    elif how == "batches":
        for lo in range(0, len(rows), 700):
            store.add_arrays(**as_columns(rows[lo : lo + 700]))
            len(store)  # compact between some batches
    else:
        store.add_arrays(**as_columns(rows))
    return store


@pytest.mark.parametrize("how", ["add", "add_many", "batches", "bulk", "bulk_direct"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_store_matches_latest_wins_reference(how: str, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "bulk_direct":  # a bulk load into an empty store that compacts at once, without staging
        monkeypatch.setattr(matrix_module, "_AUTO_COMPACT_MIN", 100)
    rows = replayed_records(seed)
    latest = reference(rows)
    store = fill(rows, how)
    assert len(store) == len(latest) < len(rows)
    assert store_records(store) == latest
    assert store_pairs(store) == reference_pairs(latest)


def test_add_arrays_numbers_new_ids_in_sorted_order_after_known_ones() -> None:
    store = InteractionStore()
    store.add(dict(replayed_records(0, 1)[0], user="p9"))
    rows = [dict(replayed_records(1, 1)[0], user=u) for u in ("p5", "p9", "p1", "p5")]
    store.add_arrays(**as_columns(rows))
    assert store.users() == ["p9", "p1", "p5"]


def test_bulk_load_is_independent_of_the_callers_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matrix_module, "_AUTO_COMPACT_MIN", 100)
    rows = replayed_records(4)
    columns = as_columns(rows)
    store = InteractionStore()
    store.add_arrays(**columns)
    before = store_records(store)
    for values in columns.values():
        values[:] = values[::-1]
    assert store_records(store) == before


@pytest.mark.parametrize("bulk_direct", [False, True])
def test_remove_user_and_split_after_a_bulk_load(bulk_direct: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if bulk_direct:
        monkeypatch.setattr(matrix_module, "_AUTO_COMPACT_MIN", 100)
    rows = replayed_records(5)
    store = fill(rows, "bulk")
    assert store.remove_user("p3") and "p3" not in store
    latest = {k: v for k, v in reference(rows).items() if k[0] != "p3"}
    assert store_records(store) == latest
    assert store_pairs(store) == reference_pairs(latest)

    train_part, heldout = store.temporal_split(0.25)
    expected = temporal_split([r for u in store.users() for r in store.records(u)], 0.25)  # store order
    assert heldout == expected.heldout and heldout
    got = store_records(train_part)
    assert set(got) == {(r["user"], r["content_id"], r["window_start"]) for r in expected.train}


def test_a_batch_with_an_empty_id_is_rejected() -> None:
    store = InteractionStore()
    rows = [dict(r) for r in replayed_records(6, 10)]
    rows[4]["user"] = ""
    with pytest.raises(ValueError, match="user"):
        store.add_arrays(**as_columns(rows))
    with pytest.raises(ValueError, match="user"):
        store.add_many(rows)


def test_pairs_helpers_match_np_unique() -> None:
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 50, 1000).astype(np.int32)
    for got, expected in (
        (matrix_module._dense(codes, 50), np.unique(codes, return_inverse=True)),
        (matrix_module._dense_sorted(np.sort(codes)), np.unique(np.sort(codes), return_inverse=True)),
    ):
        assert got[0].tolist() == expected[0].tolist() and got[0].dtype == expected[0].dtype
        assert got[1].tolist() == expected[1].tolist() and got[1].dtype == np.int32


def test_explanations_use_the_item_gram_matrix_computed_on_demand() -> None:
    store = fill(replayed_records(8, 600), "add_many")
    model = train(store, TrainerSettings(factors=4, iterations=3, threads=1, seed=1))
    assert model._yty_cache is None  # not paid for by training
    item = model.item_factors.astype(np.float64)
    np.testing.assert_allclose(model._yty, item.T @ item)
    assert any(r.because for r in model.recommend(store.users()[0], 5))


def test_bench_train_times_both_sides_on_the_same_matrix() -> None:
    from agents.bench.train import bench_train, default_repeats

    assert [default_repeats(n) for n in (100_000, 1_000_000, 10_000_000)] == [5, 5, 1]
    settings = TrainerSettings(factors=4, iterations=2, threads=1)
    (run,) = bench_train([3000], settings=settings, repeats=2)["runs"]
    assert run["repeats"] == 2
    assert len(run["samples"]["privrec_total_s"]) == len(run["samples"]["implicit_fit_s"]) == 2
    assert run["privrec"]["total_s"] == min(run["samples"]["privrec_total_s"])
    assert run["implicit"]["fit_s"] == min(run["samples"]["implicit_fit_s"])
    assert run["windows"] <= 3000 and run["nnz"] <= run["windows"]
    assert run["ratio"] > 0 and run["cpu_ratio"] > 0
