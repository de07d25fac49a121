"""A per-viewer temporal holdout taken straight from a trained model's matrix.

The audit judges the live model's family and setting on data it has not seen,
without re-reading the topics: each viewer's newest ``fraction`` of entries
(by last-seen time; at least one, never all; viewers with one entry stay in
training) is held out, as :meth:`pipeline.recs.InteractionStore.temporal_split`
does with windows. Relevant titles are the held-out ones.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from pipeline.recs._order import newest_per_user

__all__ = ["split_matrix"]


def split_matrix(
    matrix: sp.csr_matrix, last_seen: np.ndarray | None, fraction: float
) -> tuple[sp.csr_matrix, dict[int, set[int]]]:
    """``(train matrix, {row: held-out columns})``; without ``last_seen``, column order stands for time."""
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must be in (0, 1)")
    m = matrix.tocsr()
    counts = np.diff(m.indptr).astype(np.int64)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    when = np.asarray(last_seen, np.int64) if last_seen is not None else np.zeros(m.nnz, np.int64)
    held = newest_per_user(rows, np.lexsort((m.indices, when, rows)), m.shape[0], fraction)
    data = np.where(held, 0, m.data).astype(np.float32)
    train = sp.csr_matrix((data, m.indices.copy(), m.indptr.copy()), shape=m.shape)
    train.eliminate_zeros()
    heldout: dict[int, set[int]] = {}
    for r, c in zip(rows[held].tolist(), m.indices[held].tolist(), strict=True):
        heldout.setdefault(r, set()).add(c)
    return train, heldout
