"""Row surgery on the model's users×items CSR matrix and its aligned ``last_seen`` array."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

__all__ = ["RowData", "drop_rows", "history_rows", "recent_rows", "replace_rows"]

RowData = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(columns int32, confidence float32, last_seen int64)`` of one row."""

DAY_MS = 86_400_000


def _row_of_entries(matrix: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))


def _csr(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """CSR from entries already sorted by (row, col)."""
    indptr = np.zeros(shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sp.csr_matrix((data.astype(np.float32), cols.astype(np.int32), indptr), shape=shape)


def replace_rows(
    matrix: sp.csr_matrix, last_seen: np.ndarray, new: Mapping[int, RowData], n_rows: int
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Replace (or append, up to ``n_rows``) whole rows; every other row is kept as is."""
    row_of = _row_of_entries(matrix)
    keep = ~np.isin(row_of, np.fromiter(new, np.int64, len(new)))
    rows = [row_of[keep]] + [np.full(len(v[0]), r, np.int64) for r, v in new.items()]
    cols = [matrix.indices[keep]] + [v[0] for v in new.values()]
    data = [matrix.data[keep]] + [v[1] for v in new.values()]
    seen = [last_seen[keep]] + [v[2] for v in new.values()]
    r, c = np.concatenate(rows), np.concatenate(cols).astype(np.int64)
    order = np.lexsort((c, r))
    out = _csr(r[order], c[order], np.concatenate(data)[order], (n_rows, matrix.shape[1]))
    return out, np.concatenate(seen).astype(np.int64)[order]


def drop_rows(
    matrix: sp.csr_matrix, last_seen: np.ndarray, rows: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray]:
    """The matrix without ``rows`` (later rows move up), and ``last_seen`` to match."""
    keep_rows = np.ones(matrix.shape[0], np.bool_)
    keep_rows[rows] = False
    keep = np.repeat(keep_rows, np.diff(matrix.indptr))
    counts = np.diff(matrix.indptr)[keep_rows]
    indptr = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    out = sp.csr_matrix(
        (matrix.data[keep], matrix.indices[keep], indptr), shape=(int(keep_rows.sum()), matrix.shape[1])
    )
    return out, last_seen[keep]


def recent_rows(matrix: sp.csr_matrix, last_seen: np.ndarray, days: float) -> sp.csr_matrix:
    """Each row restricted to entries seen within ``days`` of that row's newest entry."""
    row_of = _row_of_entries(matrix)
    newest = np.zeros(matrix.shape[0], np.int64)
    nonempty = np.flatnonzero(np.diff(matrix.indptr))
    if len(nonempty):
        newest[nonempty] = np.maximum.reduceat(last_seen, matrix.indptr[nonempty])
    keep = last_seen >= newest[row_of] - int(days * DAY_MS)
    return _csr(row_of[keep], matrix.indices[keep], matrix.data[keep], matrix.shape)


def history_rows(
    histories: Mapping[str, Mapping[str, float]],
    item_index: Mapping[str, int],
    user_index: Mapping[str, int],
    n_users: int,
    seen_at: int = 0,
) -> tuple[dict[int, RowData], dict[str, int], list[str]]:
    """Matrix rows for fold-in from ``{pseudonym: {content_id: confidence}}``.

    Titles the model does not know are ignored. Returns the rows by index (new
    users get indices after ``n_users``, in order), the number of known titles
    per pseudonym (0: nothing to fold in), and the new users.
    """
    updates: dict[int, RowData] = {}
    counts = dict.fromkeys(histories, 0)
    new_users: list[str] = []
    for pseudonym, history in histories.items():
        known = sorted((item_index[c], float(v)) for c, v in history.items() if c in item_index)
        if not known:
            continue
        row = user_index.get(pseudonym)
        if row is None:
            row = n_users + len(new_users)
            new_users.append(pseudonym)
        cols = np.asarray([c for c, _ in known], np.int32)
        values = np.asarray([v for _, v in known], np.float32)
        updates[row] = (cols, values, np.full(len(cols), seen_at, np.int64))
        counts[pseudonym] = len(cols)
    return updates, counts, new_users
