"""The trainer's memory: ``interaction.v1`` windows in, per user×title aggregates out.

A window is named by ``(user, content_id, window_start)``. The stream may emit
the same window again (a replay after a crash, a recomputed window); the store
keeps the **latest** copy of each key, so a re-emitted window replaces its
predecessor and is never counted twice.

Rows live in column arrays (numpy) and ids are mapped to ``int32`` once, so a
window takes 45 bytes of columns. Appends are cheap; deduplication is a
vectorised sort done lazily ("compaction") when aggregates are read, or when
pending appends outgrow the compacted rows. After compaction the rows are
sorted by ``(user, title, window_start)``, which makes the per-pair aggregation
and the CSR matrix one pass each.

Each row also gets an arrival number (``seq``). A viewer's windows arrive in
the order the stream closed them, and the stream closes an hour's windows in
the order of their first events, so arrival order is the order the viewer
started titles in, finer than the hour, without any finer timestamp on the
wire. The splits and recency use it (:meth:`Pairs.start_order`). A re-emitted
window (the stream replaying after a crash) takes its new arrival number; the
replay repeats the same relative order, so only its place against windows that
were not replayed can move.

Columnar appends (:meth:`InteractionStore.add_arrays`) map ids through hashes
of the id strings (:mod:`pipeline.recs._factorise`), so only the distinct ids
are ever sorted or looked up in a dict; compaction sorts packed integer keys
(:mod:`pipeline.recs._order`) rather than calling ``np.lexsort``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from pipeline.recs._factorise import intern_codes
from pipeline.recs._order import latest_of_each_key, newest_per_user
from pipeline.recs.pairs import Pairs, empty_pairs

if TYPE_CHECKING:
    from pipeline.settings import TrainerSettings

__all__ = ["InteractionStore", "Pairs", "record_fields"]

_FIELDS = ("user", "content_id", "window_start", "window_end", "watched_ms", "plays", "completed")
_DTYPES = {
    "user": np.int32,
    "item": np.int32,
    "window_start": np.int64,
    "window_end": np.int64,
    "watched_ms": np.int64,
    "plays": np.int32,
    "completed": np.bool_,
    "seq": np.int64,
}
"""Columns of the store; ``seq`` (the arrival number of the row) is assigned by the store itself."""
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
_PENDING_MAX = 65_536
"""Records :meth:`InteractionStore.add` buffers before moving them into the arrays."""
_AUTO_COMPACT_MIN = 1_000_000
"""Pending (not yet deduplicated) rows tolerated before an append compacts."""


def record_fields(record: Mapping[str, Any] | Any) -> tuple[str, str, int, int, int, int, bool]:
    """``(user, content_id, window_start, window_end, watched_ms, plays, completed)`` of a record.

    Accepts ``interaction.v1`` dicts and :class:`pipeline.wire.outbound.Interaction`
    structs (the window engine's closed windows).

    Raises:
        ValueError: an id is not a non-empty string, or a number is not an
            integer that fits its column (int64 times and watch time, int32
            plays). Checked here, per record, so that a bad record is refused
            alone instead of failing the numpy cast of a whole batch later.
    """
    if isinstance(record, Mapping):
        u, c, s, e, w, p, d = (record[name] for name in _FIELDS)
    else:
        u, c, s, e, w, p, d = (getattr(record, name) for name in _FIELDS)
    if type(u) is not str or type(c) is not str or not u or not c:
        raise ValueError("interaction user and content_id must be non-empty strings")
    try:
        s, e, w, p = int(s), int(e), int(w), int(p)
    except (OverflowError, TypeError):  # int(inf), int(None): ValueError like int("x")
        raise ValueError("interaction numbers must be integers") from None
    if not (_I64_MIN <= s <= _I64_MAX and _I64_MIN <= e <= _I64_MAX and _I64_MIN <= w <= _I64_MAX):
        raise ValueError("interaction window or watched_ms does not fit int64")
    if not _I32_MIN <= p <= _I32_MAX:
        raise ValueError("interaction plays does not fit int32")
    return u, c, s, e, w, p, bool(d)


class InteractionStore:
    """Deduplicated ``interaction.v1`` windows, ready to become a training matrix.

    Not thread-safe; one trainer owns one store.

    Examples
    --------
    >>> store = InteractionStore()
    >>> row = {"user": "p1", "content_id": "c1", "window_start": 0, "window_end": 3_600_000,
    ...        "watched_ms": 60_000, "plays": 1, "completed": False, "events": 3}
    >>> store.add(row); store.add(dict(row, watched_ms=90_000))  # re-emitted window
    >>> len(store), int(store.pairs().watched_ms[0])
    (1, 90000)
    """

    def __init__(self) -> None:
        self._user_index: dict[str, int] = {}
        self._user_ids: list[str | None] = []
        self._item_index: dict[str, int] = {}
        self._item_ids: list[str] = []
        self._cols: dict[str, np.ndarray] = {name: np.empty(0, dtype) for name, dtype in _DTYPES.items()}
        self._n = 0
        self._clean = 0
        self._next_seq = 0
        self._pending: list[tuple[str, str, int, int, int, int, bool]] = []

    # -- writes ----------------------------------------------------------

    def add(self, record: Mapping[str, Any] | Any) -> None:
        """Add one window; a window with the same key as an earlier one replaces it.

        Buffered: a consumer may call this per record at little cost.
        """
        self._pending.append(record_fields(record))
        if len(self._pending) >= _PENDING_MAX:
            self._flush()

    def add_many(self, records: Iterable[Mapping[str, Any] | Any]) -> int:
        """Add windows in order (later copies of a key win); returns how many were read."""
        self._flush()
        self._pending = [record_fields(record) for record in records]
        n = len(self._pending)
        self._flush()
        return n

    def _flush(self) -> None:
        """Move buffered :meth:`add` records into the column arrays."""
        if not self._pending:
            return
        users, items, starts, ends, watched, plays, completed = zip(*self._pending, strict=True)
        self._pending = []
        self._append(
            self._intern_users(users),
            self._intern_items(items),
            np.asarray(starts, np.int64),
            np.asarray(ends, np.int64),
            np.asarray(watched, np.int64),
            np.asarray(plays, np.int32),
            np.asarray(completed, np.bool_),
        )

    def add_arrays(
        self,
        users: Sequence[str] | np.ndarray,
        content_ids: Sequence[str] | np.ndarray,
        window_start: np.ndarray,
        window_end: np.ndarray,
        watched_ms: np.ndarray,
        plays: np.ndarray,
        completed: np.ndarray,
    ) -> int:
        """Columnar :meth:`add_many`: equal-length columns, ids mapped once per distinct value."""
        n = len(users)
        if n == 0:
            return 0
        self._flush()
        self._append(
            self._intern_column(users, self._intern_users),
            self._intern_column(content_ids, self._intern_items),
            np.asarray(window_start, np.int64),
            np.asarray(window_end, np.int64),
            np.asarray(watched_ms, np.int64),
            np.asarray(plays, np.int32),
            np.asarray(completed, np.bool_),
        )
        return n

    def remove_user(self, pseudonym: str) -> bool:
        """Erase every window of ``pseudonym`` and forget the id; ``False`` if it was unknown."""
        return self.remove_users((pseudonym,)) == 1

    def remove_users(self, pseudonyms: Iterable[str]) -> int:
        """Erase several users in one pass over the rows; returns how many were known."""
        self._flush()
        gone = [self._user_index.pop(p) for p in set(pseudonyms) if p in self._user_index]
        if not gone:
            return 0
        for index in gone:
            self._user_ids[index] = None
        keep = ~np.isin(self._cols["user"][: self._n], np.asarray(gone, np.int32))
        clean_kept = int(keep[: self._clean].sum())
        for name, col in self._cols.items():
            self._cols[name] = col[: self._n][keep]
        self._n = len(self._cols["user"])
        self._clean = clean_kept
        return len(gone)

    # -- reads -------------------------------------------------------------

    def __len__(self) -> int:
        """Distinct windows held (after deduplication)."""
        self._compact()
        return self._n

    def __contains__(self, pseudonym: object) -> bool:
        self._flush()
        return pseudonym in self._user_index

    def users(self) -> list[str]:
        """Pseudonyms with at least one window, in first-seen order."""
        self._flush()
        return list(self._user_index)

    def records(self, pseudonym: str) -> list[dict[str, Any]]:
        """The user's windows as ``interaction.v1``-shaped dicts (``events`` is not kept), in arrival order.

        Arrival order, so that a store built from them (a fold-in's) orders the
        viewer's titles as this one does.
        """
        self._compact()
        index = self._user_index.get(pseudonym)
        if index is None:
            return []
        c = self._cols
        lo, hi = np.searchsorted(c["user"][: self._n], [index, index + 1])  # sorted by user
        rows = (lo + np.argsort(c["seq"][lo:hi], kind="stable")).tolist()  # in arrival order
        return [
            {
                "user": pseudonym,
                "content_id": self._item_ids[c["item"][r]],
                "window_start": int(c["window_start"][r]),
                "window_end": int(c["window_end"][r]),
                "watched_ms": int(c["watched_ms"][r]),
                "plays": int(c["plays"][r]),
                "completed": bool(c["completed"][r]),
            }
            for r in rows
        ]

    def pairs(self) -> Pairs:
        """Aggregate the windows per user×title (sum watched and plays, any completed, max end)."""
        self._compact()
        n = self._n
        c = {name: col[:n] for name, col in self._cols.items()}
        if n == 0:
            return empty_pairs()
        user, item = c["user"], c["item"]
        change = np.empty(n, np.bool_)
        change[0] = True
        np.not_equal(user[1:], user[:-1], out=change[1:])
        change[1:] |= item[1:] != item[:-1]
        starts = np.flatnonzero(change)
        users_present, rows = _dense_sorted(user[starts])
        items_present, cols = _dense(item[starts], len(self._item_ids))
        return Pairs(
            user=rows,
            item=cols,
            watched_ms=np.add.reduceat(c["watched_ms"], starts),
            plays=np.add.reduceat(c["plays"].astype(np.int64), starts),
            completed=np.logical_or.reduceat(c["completed"], starts),
            windows=np.diff(np.append(starts, n)).astype(np.int32),
            last_seen=np.maximum.reduceat(c["window_end"], starts),
            first_start=c["window_start"][starts],  # rows are sorted by (user, item, window_start)
            first_seq=c["seq"][starts],
            user_ids=[self._user_ids[i] or "" for i in users_present.tolist()],
            item_ids=[self._item_ids[i] for i in items_present.tolist()],
        )

    def temporal_split(self, holdout_fraction: float) -> tuple[InteractionStore, dict[str, set[str]]]:
        """Vectorised :func:`pipeline.recs.evaluate.temporal_split` of the held windows.

        Per user with at least two windows, the newest ``holdout_fraction`` of
        them (at least one, never all; newest by ``window_end``, then
        ``window_start``, then arrival: an hour's windows arrive in the order
        their titles were started) are held out. Returns a new store of the
        training windows and, per user, the held-out titles they did not also
        watch in the training part.
        """
        if not 0.0 < holdout_fraction < 1.0:
            raise ValueError("holdout_fraction must be in (0, 1)")
        self._compact()
        n = self._n
        c = {name: col[:n] for name, col in self._cols.items()}
        order = np.lexsort((c["seq"], c["window_start"], c["window_end"], c["user"]))
        held = newest_per_user(c["user"], order, len(self._user_ids), holdout_fraction)
        n_items = max(len(self._item_ids), 1)
        code = c["user"].astype(np.int64) * n_items + c["item"]
        train_codes, held_codes = np.unique(code[~held]), np.unique(code[held])
        heldout: dict[str, set[str]] = {}
        for pair in held_codes[~np.isin(held_codes, train_codes, assume_unique=True)].tolist():
            u, i = divmod(pair, n_items)
            heldout.setdefault(self._user_ids[u] or "", set()).add(self._item_ids[i])
        return self._subset(~held), heldout

    def to_csr(self, settings: TrainerSettings) -> tuple[sp.csr_matrix, list[str], list[str]]:
        """``(users×items float32 confidence matrix, user_ids, item_ids)`` for training."""
        from pipeline.recs.confidence import confidence

        pairs = self.pairs()
        return pairs.to_csr(confidence(pairs, settings)), pairs.user_ids, pairs.item_ids

    # -- internals ---------------------------------------------------------

    def _intern_users(self, ids: Iterable[str]) -> np.ndarray:
        return _intern(ids, self._user_index, self._user_ids, "user")

    def _intern_items(self, ids: Iterable[str]) -> np.ndarray:
        return _intern(ids, self._item_index, self._item_ids, "content_id")

    @staticmethod
    def _intern_column(values: Sequence[str] | np.ndarray, intern: Any) -> np.ndarray:
        """Codes of a column of ids; new ids are numbered in sorted order of the column's distinct ids."""
        return intern_codes(np.asarray(values, dtype=str).reshape(-1), intern)

    def _append(self, *columns: np.ndarray) -> None:
        n_new = len(columns[0])
        if any(len(col) != n_new for col in columns):
            raise ValueError("columns must have equal lengths")
        columns = (*columns, np.arange(self._next_seq, self._next_seq + n_new, dtype=np.int64))
        self._next_seq += n_new
        if self._n == 0 and n_new > _AUTO_COMPACT_MIN:
            # compaction follows at once and gathers every column anew: no staging copy
            columns_as = zip(_DTYPES.items(), columns, strict=True)
            self._cols = {name: np.asarray(values, dtype) for (name, dtype), values in columns_as}
            self._n, self._clean = n_new, 0
            self._compact()
            return
        need = self._n + n_new
        for name, values in zip(_DTYPES, columns, strict=True):
            col = self._cols[name]
            if need > len(col):
                grown = np.empty(max(need, 2 * len(col), 1024), col.dtype)
                grown[: self._n] = col[: self._n]
                col = self._cols[name] = grown
            col[self._n : need] = values
        self._n = need
        if self._n - self._clean > max(_AUTO_COMPACT_MIN, self._clean):
            self._compact()

    def _subset(self, keep: np.ndarray) -> InteractionStore:
        """A compacted copy holding the rows where ``keep`` is true (ids maps copied)."""
        other = InteractionStore()
        other._user_index, other._user_ids = dict(self._user_index), list(self._user_ids)
        other._item_index, other._item_ids = dict(self._item_index), list(self._item_ids)
        other._cols = {name: col[: self._n][keep] for name, col in self._cols.items()}
        other._n = other._clean = int(keep.sum())
        other._next_seq = self._next_seq
        return other

    def _compact(self) -> None:
        """Keep the latest copy of each window key and sort rows by (user, item, window_start)."""
        self._flush()
        n = self._n
        if self._clean == n:
            return
        c = self._cols
        n_items = max(len(self._item_ids), 1)
        pair = c["user"][:n].astype(np.int64) * n_items + c["item"][:n]
        kept = latest_of_each_key(pair, c["window_start"][:n])  # stable: the last arrival of a key wins
        del pair
        user = kept.primary // n_items
        c["item"] = (kept.primary - user * n_items).astype(np.int32)
        c["user"] = user.astype(np.int32)
        c["window_start"] = kept.secondary
        for name in ("window_end", "watched_ms", "plays", "completed", "seq"):
            c[name] = c[name][kept.rows]
        self._n = self._clean = len(kept.rows)


def _intern(ids: Iterable[str], index: dict[str, int], names: list[Any], field: str) -> np.ndarray:
    """int32 codes of ``ids``; ids not in ``index`` get the next codes, in first-seen order."""
    ids = ids if isinstance(ids, list | tuple) else list(ids)
    codes: list[int | None] = list(map(index.get, ids))
    if None in codes:
        fresh = list(dict.fromkeys(i for i, code in zip(ids, codes, strict=True) if code is None))
        if not all(isinstance(i, str) and i for i in fresh):
            raise ValueError(f"interaction {field} must be a non-empty string")
        index.update(zip(fresh, range(len(names), len(names) + len(fresh)), strict=True))
        names.extend(fresh)
        codes = list(map(index.__getitem__, ids))
    return np.asarray(codes, np.int32)


def _dense_sorted(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(codes, return_inverse=True)`` of non-empty sorted codes, the inverse as int32."""
    new = np.empty(len(codes), np.bool_)
    new[0] = True
    np.not_equal(codes[1:], codes[:-1], out=new[1:])
    dense = np.cumsum(new, dtype=np.int32)
    dense -= 1
    return codes[new], dense


def _dense(codes: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(codes, return_inverse=True)`` of codes in ``[0, bound)``, the inverse as int32."""
    present = np.zeros(bound, np.bool_)
    present[codes] = True
    dense = np.cumsum(present, dtype=np.int32)
    dense -= 1
    return np.flatnonzero(present).astype(codes.dtype), dense[codes]
