"""Fold-in rows from ``interaction.v1`` windows: what every family's :meth:`fold_in_records` shares.

The trainer folds in a viewer's complete current windows (``store.records``),
weighed by the same confidence transform as training and keeping each entry's
newest window end, so a family's ``limited`` list stays right after a fold-in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from pipeline.recs import _rows
from pipeline.recs.confidence import confidence
from pipeline.recs.matrix import InteractionStore, record_fields
from pipeline.settings import TrainerSettings

__all__ = ["record_rows"]


def record_rows(
    histories: Mapping[str, Iterable[Mapping[str, Any] | Any]],
    item_index: Mapping[str, int],
    user_index: Mapping[str, int],
    n_users: int,
    settings: TrainerSettings,
    bm25_norm: np.ndarray | None = None,
) -> tuple[dict[int, _rows.RowData], dict[str, int], list[str]]:
    """Rows by matrix index (new users after ``n_users``), known titles per user, the new users.

    Raises:
        ValueError: a row belongs to another user than the history it is listed under.
    """
    store = InteractionStore()
    for pseudonym, rows in histories.items():
        for row in rows:
            if record_fields(row)[0] != pseudonym:
                raise ValueError("fold_in: a row belongs to another user")
            store.add(row)
    pairs = store.pairs()
    col_of = np.asarray([item_index.get(c, -1) for c in pairs.item_ids], np.int64)
    norm = None
    if bm25_norm is not None:
        norm = np.where(col_of >= 0, bm25_norm[np.maximum(col_of, 0)], 1.0)
    conf = confidence(pairs, settings, item_norm=norm, n_items=len(item_index))
    cols = col_of[pairs.item] if len(col_of) else np.empty(0, np.int64)
    known = cols >= 0
    user, cols, conf, seen = pairs.user[known], cols[known], conf[known], pairs.last_seen[known]
    bounds = np.searchsorted(user, np.arange(len(pairs.user_ids) + 1))  # pairs are sorted by user
    updates: dict[int, _rows.RowData] = {}
    result = dict.fromkeys(histories, 0)
    new_users: list[str] = []
    for u, pseudonym in enumerate(pairs.user_ids):
        lo, hi = int(bounds[u]), int(bounds[u + 1])
        if lo == hi:
            continue
        row = user_index.get(pseudonym)
        if row is None:
            row = n_users + len(new_users)
            new_users.append(pseudonym)
        updates[row] = (cols[lo:hi].astype(np.int32), conf[lo:hi], seen[lo:hi])
        result[pseudonym] = hi - lo
    return updates, result, new_users
