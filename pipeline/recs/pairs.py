"""Per user×title aggregates: what the store hands to confidence weighting and training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["Pairs", "empty_pairs"]


@dataclass(frozen=True, slots=True, eq=False)
class Pairs:
    """Per user×title aggregates, one entry per pair, sorted by ``(user, item)``.

    ``user[k]`` indexes :attr:`user_ids` and ``item[k]`` indexes
    :attr:`item_ids`; both id lists hold only ids that have at least one pair.
    """

    user: np.ndarray
    """int32 row of each pair."""
    item: np.ndarray
    """int32 column of each pair."""
    watched_ms: np.ndarray
    """int64 sum of watched time over the pair's windows."""
    plays: np.ndarray
    """int64 sum of ``play`` events."""
    completed: np.ndarray
    """bool: any window ended in ``complete``."""
    windows: np.ndarray
    """int32 number of distinct windows."""
    last_seen: np.ndarray
    """int64 newest ``window_end`` (epoch ms)."""
    first_start: np.ndarray
    """int64 ``window_start`` of the pair's first window: the hour the viewer started the title."""
    first_seq: np.ndarray
    """int64 arrival number of that first window in the store. A user's windows arrive in the order
    the stream closed them (an hour's windows by their first event), so within an hour this is the
    order the viewer started titles in, without any finer timestamp leaving the stream."""
    user_ids: list[str]
    item_ids: list[str]

    def __len__(self) -> int:
        return len(self.user)

    @property
    def shape(self) -> tuple[int, int]:
        """``(users, items)`` of the matrix these pairs fill."""
        return len(self.user_ids), len(self.item_ids)

    def start_order(self) -> np.ndarray:
        """Pair positions grouped by user (rows ascending), each user's titles in the order they were started.

        By the first window's start, then its arrival: the order ``privrec eval``'s holdout
        and the tuner's validation split both cut, and the one recency counts in.
        """
        order: np.ndarray = np.lexsort((self.first_seq, self.first_start, self.user))
        return order

    @property
    def n_windows(self) -> int:
        """Distinct windows folded into these pairs."""
        return int(self.windows.sum())

    def subset(
        self, keep: np.ndarray, *, user: np.ndarray | None = None, user_ids: list[str] | None = None
    ) -> Pairs:
        """The pairs where ``keep`` holds; ``user``/``user_ids`` replace the rows when users were renumbered
        (``user`` is then the new row of every kept pair). Item columns are kept as they are."""
        return Pairs(
            self.user[keep] if user is None else user,
            self.item[keep],
            self.watched_ms[keep],
            self.plays[keep],
            self.completed[keep],
            self.windows[keep],
            self.last_seen[keep],
            self.first_start[keep],
            self.first_seq[keep],
            list(self.user_ids) if user_ids is None else user_ids,
            list(self.item_ids),
        )

    def to_csr(self, data: np.ndarray) -> sp.csr_matrix:
        """A users×items CSR matrix with ``data[k]`` at pair ``k`` (entry order kept)."""
        n_users, n_items = self.shape
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.user, minlength=n_users), out=indptr[1:])
        return sp.csr_matrix(
            (np.asarray(data, dtype=np.float32), self.item.astype(np.int32), indptr),
            shape=(n_users, n_items),
        )


def empty_pairs() -> Pairs:
    """Pairs of an empty store."""
    i32, i64 = np.empty(0, np.int32), np.empty(0, np.int64)
    return Pairs(i32, i32, i64, i64, np.empty(0, np.bool_), i32, i64, i64, i64, [], [])
