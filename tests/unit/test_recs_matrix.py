"""The interaction store and confidence weighting: dedup, aggregation, erasure, CSR."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from pipeline.recs.confidence import confidence, weigh
from pipeline.recs.evaluate import temporal_split
from pipeline.recs.matrix import InteractionStore
from pipeline.settings import TrainerSettings
from pipeline.windows import Interaction as WindowInteraction
from pipeline.wire.outbound import Interaction as WireInteraction

HOUR = 3_600_000
MINUTE = 60_000

Record = dict[str, Any]
MakeRecord = Callable[..., Record]


@pytest.fixture
def rec() -> MakeRecord:
    """Factory for ``interaction.v1`` dicts; ``hour`` picks the window."""

    def make(
        user: str = "p1",
        content: str = "c1",
        hour: int = 0,
        watched_min: float = 10,
        plays: int = 1,
        completed: bool = False,
    ) -> Record:
        return {
            "user": user,
            "content_id": content,
            "window_start": hour * HOUR,
            "window_end": (hour + 1) * HOUR,
            "watched_ms": int(watched_min * MINUTE),
            "plays": plays,
            "completed": completed,
            "events": 3,
        }

    return make


def test_reemitted_window_replaces_instead_of_double_counting(rec: MakeRecord) -> None:
    store = InteractionStore()
    store.add(rec(watched_min=10))
    store.add(rec(watched_min=25, completed=True))  # same (user, content, window_start)
    assert len(store) == 1
    pairs = store.pairs()
    assert pairs.watched_ms.tolist() == [25 * MINUTE]
    assert pairs.completed.tolist() == [True]
    assert pairs.windows.tolist() == [1]


def test_reemission_after_compaction_still_replaces(rec: MakeRecord) -> None:
    store = InteractionStore()
    store.add_many([rec(hour=0, watched_min=5), rec(hour=1, watched_min=7)])
    assert len(store) == 2  # compacts
    store.add(rec(hour=0, watched_min=1))
    assert len(store) == 2
    assert store.pairs().watched_ms.tolist() == [8 * MINUTE]


def test_last_copy_wins_within_one_batch(rec: MakeRecord) -> None:
    store = InteractionStore()
    store.add_many([rec(watched_min=1), rec(watched_min=2), rec(watched_min=3)])
    assert store.pairs().watched_ms.tolist() == [3 * MINUTE]


def test_pair_aggregates(rec: MakeRecord) -> None:
    store = InteractionStore()
    store.add_many(
        [
            rec(hour=3, watched_min=10, plays=1),
            rec(hour=1, watched_min=5, plays=2, completed=True),
            rec(hour=2, watched_min=1, plays=0),
            rec(content="c2", hour=9, watched_min=4),
            rec(user="p2", content="c2", hour=0, watched_min=30),
        ]
    )
    pairs = store.pairs()
    assert pairs.user_ids == ["p1", "p2"]
    assert pairs.item_ids == ["c1", "c2"]
    got = {
        (pairs.user_ids[u], pairs.item_ids[i]): (w, p, c, n, s)
        for u, i, w, p, c, n, s in zip(
            pairs.user.tolist(),
            pairs.item.tolist(),
            pairs.watched_ms.tolist(),
            pairs.plays.tolist(),
            pairs.completed.tolist(),
            pairs.windows.tolist(),
            pairs.last_seen.tolist(),
            strict=True,
        )
    }
    assert got == {
        ("p1", "c1"): (16 * MINUTE, 3, True, 3, 4 * HOUR),
        ("p1", "c2"): (4 * MINUTE, 1, False, 1, 10 * HOUR),
        ("p2", "c2"): (30 * MINUTE, 1, False, 1, 1 * HOUR),
    }
    assert pairs.n_windows == 5 == len(store)


def test_accepts_wire_structs_and_window_tuples(rec: MakeRecord) -> None:
    store = InteractionStore()
    r = rec()
    store.add(WireInteraction(**r))
    store.add(WindowInteraction(**r))
    store.add(r)
    assert len(store) == 1


def test_add_arrays_matches_add_many(rec: MakeRecord) -> None:
    rows = [rec(user=f"p{k % 3}", content=f"c{k % 4}", hour=k, watched_min=k + 1) for k in range(12)]
    rows.append(rec(user="p0", content="c0", hour=0, watched_min=99))  # re-emission of row 0
    a, b = InteractionStore(), InteractionStore()
    a.add_many(rows)
    b.add_arrays(
        *(np.asarray([r[f] for r in rows]) for f in ("user", "content_id")),
        *(
            np.asarray([r[f] for r in rows])
            for f in ("window_start", "window_end", "watched_ms", "plays", "completed")
        ),
    )
    pa, pb = a.pairs(), b.pairs()
    assert len(a) == len(b) == 12
    assert [pa.user_ids[u] for u in pa.user] == [pb.user_ids[u] for u in pb.user]
    assert [pa.item_ids[i] for i in pa.item] == [pb.item_ids[i] for i in pb.item]
    assert pa.watched_ms.tolist() == pb.watched_ms.tolist()


def test_remove_user_leaves_no_trace(rec: MakeRecord) -> None:
    store = InteractionStore()
    store.add_many([rec("p1", "c1"), rec("p1", "only-p1"), rec("p2", "c1"), rec("p3", "c2")])
    store.add(rec("p1", "c3", hour=5))  # pending (not yet compacted) row too
    assert store.remove_user("p1") is True
    assert store.remove_user("p1") is False
    assert store.remove_user("never-seen") is False
    assert "p1" not in store
    assert store.users() == ["p2", "p3"]
    assert store.records("p1") == []
    matrix, users, items = store.to_csr(TrainerSettings())
    assert users == ["p2", "p3"]
    assert "only-p1" not in items and "c3" not in items
    assert matrix.shape == (2, len(items))
    assert len(store) == 2


def test_readded_user_starts_fresh(rec: MakeRecord) -> None:
    store = InteractionStore()
    store.add(rec("p1", "c1", watched_min=50))
    store.remove_user("p1")
    store.add(rec("p1", "c2", watched_min=5))
    assert [r["content_id"] for r in store.records("p1")] == ["c2"]


def test_records_roundtrip(rec: MakeRecord) -> None:
    store = InteractionStore()
    rows = [rec("p1", "c1", hour=1), rec("p1", "c2", hour=2, completed=True), rec("p2", "c1")]
    store.add_many(rows)
    expected = [{k: v for k, v in r.items() if k != "events"} for r in rows[:2]]
    assert store.records("p1") == expected


def test_to_csr_is_float32_confidence(rec: MakeRecord) -> None:
    store = InteractionStore()
    store.add_many([rec("p1", "c1", watched_min=9, completed=True), rec("p2", "c2", watched_min=0)])
    settings = TrainerSettings(weighting="log", alpha=2.0, watched_unit_ms=MINUTE, completion_bonus=0.5)
    matrix, _, _ = store.to_csr(settings)
    assert matrix.dtype == np.float32
    assert matrix.shape == (2, 2)
    assert matrix[0, 0] == pytest.approx(1 + 2.0 * (np.log1p(9) + 0.5))
    assert matrix[1, 1] == pytest.approx(1.0)  # pressed play, watched nothing: still observed


@pytest.mark.parametrize("weighting", ["log", "linear", "binary", "bm25"])
def test_confidence_is_positive_and_monotone_in_watch_time(rec: MakeRecord, weighting: str) -> None:
    store = InteractionStore()
    store.add_many([rec(f"p{u}", f"c{i}", watched_min=5 + 10 * i) for u in range(4) for i in range(5)])
    store.add_many([rec(f"other{k}", f"x{k}") for k in range(20)])  # bm25: a catalogue wider than p0's 5
    pairs = store.pairs()
    conf = confidence(pairs, TrainerSettings(weighting=weighting, completion_bonus=0))  # type: ignore[arg-type]
    assert conf.dtype == np.float32
    assert np.all(np.isfinite(conf)) and np.all(conf >= 1.0)
    row = conf[pairs.user == 0]
    if weighting == "binary":
        assert np.all(row == row[0])
    else:
        assert np.all(np.diff(row) > 0)


def test_completion_bonus_raises_confidence(rec: MakeRecord) -> None:
    store = InteractionStore()
    store.add_many([rec("p1", "c1"), rec("p1", "c2", completed=True)])
    conf = confidence(store.pairs(), TrainerSettings(completion_bonus=1.0, alpha=1.0))
    assert conf[1] - conf[0] == pytest.approx(1.0)


def test_empty_store() -> None:
    store = InteractionStore()
    assert len(store) == 0
    matrix, users, items = store.to_csr(TrainerSettings())
    assert matrix.shape == (0, 0) and users == [] and items == []


def test_rejects_empty_ids(rec: MakeRecord) -> None:
    with pytest.raises(ValueError, match="user"):
        InteractionStore().add(rec(user=""))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("watched_ms", 2**63),
        ("watched_ms", 2**64),
        ("window_start", -(2**63) - 1),
        ("window_end", 10**30),
        ("plays", 2**31),
        ("plays", -(2**31) - 1),
        ("watched_ms", float("inf")),
        ("plays", None),
    ],
)
def test_numbers_that_do_not_fit_their_column_are_a_value_error(
    rec: MakeRecord, field: str, value: Any
) -> None:
    """Issue 10: ``watched_ms = 2**64`` raised OverflowError later, in the batch's numpy cast."""
    store = InteractionStore()
    store.add(rec("p1", "c1"))
    with pytest.raises(ValueError, match="interaction"):
        store.add(dict(rec("p2", "c2"), **{field: value}))
    assert store.users() == ["p1"]  # the good record is still buffered and usable
    assert len(store) == 1


def test_column_limits_themselves_fit(rec: MakeRecord) -> None:
    store = InteractionStore()
    store.add(dict(rec(), watched_ms=2**63 - 1, plays=2**31 - 1))
    pairs = store.pairs()
    assert int(pairs.watched_ms[0]) == 2**63 - 1


def test_single_adds_are_visible_before_any_flush(rec: MakeRecord) -> None:
    store = InteractionStore()
    store.add(rec("p1", "c1"))
    assert "p1" in store and store.users() == ["p1"]
    assert [r["content_id"] for r in store.records("p1")] == ["c1"]
    store.add(rec("p2", "c1"))
    assert store.remove_user("p2") and store.users() == ["p1"]


def test_store_split_matches_record_split(rec: MakeRecord) -> None:
    rng = np.random.default_rng(4)
    rows = []
    for u in range(30):
        hours = rng.choice(500, size=int(rng.integers(1, 15)), replace=False)
        rows += [rec(f"p{u}", f"c{int(rng.integers(0, 12))}", hour=int(h)) for h in hours]
    store = InteractionStore()
    store.add_many(rows)
    train_store, heldout = store.temporal_split(0.25)
    expected = temporal_split([r for u in store.users() for r in store.records(u)], 0.25)
    assert heldout == expected.heldout and heldout

    def keys(records: list[Record]) -> set[tuple[str, str, int]]:
        return {(r["user"], r["content_id"], r["window_start"]) for r in records}

    got = [r for u in train_store.users() for r in train_store.records(u)]
    assert keys(got) == keys(expected.train)
    assert len(train_store) == len(expected.train)
    assert len(store) == len(rows)  # the original is untouched


def test_bm25_matches_implicit(rec: MakeRecord) -> None:
    from implicit.nearest_neighbours import bm25_weight

    rng = np.random.default_rng(2)
    store = InteractionStore()
    store.add_many(
        rec(f"p{u}", f"c{i}", watched_min=float(rng.uniform(0, 90)))
        for u in range(30)
        for i in rng.choice(40, size=int(rng.integers(1, 12)), replace=False).tolist()
    )
    pairs = store.pairs()
    settings = TrainerSettings(weighting="bm25", bm25_k1=1.2, bm25_b=0.75)
    x = pairs.watched_ms / settings.watched_unit_ms
    item_users = sp.coo_matrix((x, (pairs.item, pairs.user)), shape=pairs.shape[::-1])
    expected = bm25_weight(item_users, K1=1.2, B=0.75).tocsr().T.tocsr()
    got = pairs.to_csr(weigh(pairs, settings))
    np.testing.assert_allclose(got.toarray(), np.maximum(expected.toarray(), 0), rtol=1e-5, atol=1e-6)


def test_the_order_windows_arrived_in_is_the_order_titles_were_started(rec: MakeRecord) -> None:
    """Within an hour the stream emits by first event; the store keeps that order (ids say nothing)."""
    store = InteractionStore()
    store.add_many([rec("p2", "c5"), rec("p2", "c1"), rec("p2", "c9")])  # ids first seen in another order
    store.add_many([rec(content="c9"), rec(content="c1"), rec(content="c5")])
    store.add_many([rec(content="c3", hour=1), rec(content="c1", hour=1)])  # c1 watched on: started at 0
    pairs = store.pairs()
    mine = [
        pairs.item_ids[pairs.item[k]] for k in pairs.start_order() if pairs.user_ids[pairs.user[k]] == "p1"
    ]
    assert mine == ["c9", "c1", "c5", "c3"]
    assert [(r["content_id"], r["window_start"] // HOUR) for r in store.records("p1")] == [
        ("c9", 0),
        ("c1", 0),
        ("c5", 0),
        ("c3", 1),
        ("c1", 1),
    ]  # arrival order, so a fold-in's store orders the viewer's titles as this one does
    again = InteractionStore()
    again.add_many(store.records("p1"))
    assert [again.pairs().item_ids[i] for i in again.pairs().item[again.pairs().start_order()]] == mine
    # the window-level split: newest by window end, then arrival (c5 arrived after c1 in hour 0)
    _, heldout = store.temporal_split(0.6)  # p1's three newest windows: c1 (hour 1), c3, then c5
    assert heldout["p1"] == {"c3", "c5"}  # c1 is in the training part too


def test_a_bulk_load_and_erasure_keep_arrival_order(rec: MakeRecord) -> None:
    store = InteractionStore()
    rows = [rec(f"p{u}", f"c{c}", hour=0) for u in range(3) for c in (7, 2, 9)]
    store.add_arrays(
        [r["user"] for r in rows],
        [r["content_id"] for r in rows],
        np.asarray([r["window_start"] for r in rows]),
        np.asarray([r["window_end"] for r in rows]),
        np.asarray([r["watched_ms"] for r in rows]),
        np.asarray([r["plays"] for r in rows]),
        np.asarray([r["completed"] for r in rows]),
    )
    assert store.remove_user("p1")
    store.add(rec("p2", "c1", hour=0))  # after the bulk load: last
    assert [r["content_id"] for r in store.records("p2")] == ["c7", "c2", "c9", "c1"]
    assert [r["content_id"] for r in store.records("p0")] == ["c7", "c2", "c9"]
