"""Fit ``implicit``'s ALS on the interaction store (CPU) and wrap the result as a :class:`Model`.

The confidence matrix comes from :func:`pipeline.recs.confidence.confidence`,
so ``implicit``'s own ``alpha`` stays 1. BLAS is limited to one thread during
the fit: ``implicit`` parallelises over users itself and a multi-threaded
OpenBLAS underneath slows it down severalfold.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from implicit.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from pipeline.errors import PrivrecError
from pipeline.recs.confidence import bm25_item_norm, confidence
from pipeline.recs.matrix import InteractionStore
from pipeline.recs.model import Model
from pipeline.settings import TrainerSettings

__all__ = ["TrainingError", "fit_factors", "train"]

TrainingInput = InteractionStore | tuple[sp.csr_matrix, list[str], list[str]]
"""A store, or ``(users×items confidence csr, user_ids, item_ids)``."""


class TrainingError(PrivrecError):
    """There is nothing to train on (no interactions); retry once some have arrived."""

    retryable = True


def fit_factors(matrix: sp.csr_matrix, settings: TrainerSettings) -> tuple[np.ndarray, np.ndarray]:
    """``(user_factors, item_factors)`` of ALS fitted on a users×items confidence matrix."""
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(
            factors=settings.factors,
            regularization=settings.regularization,
            alpha=1.0,
            iterations=settings.iterations,
            num_threads=settings.threads,
            random_state=settings.seed,
            use_gpu=False,
        )
        als.fit(matrix, show_progress=False)
    return np.asarray(als.user_factors), np.asarray(als.item_factors)


def train(data: TrainingInput, settings: TrainerSettings) -> Model:
    """Fit a model on every interaction in ``data``.

    From a store, the model also keeps each entry's last-seen time (for the
    ``limited`` list) and counts distinct windows as ``n_interactions``.

    Raises:
        TrainingError: ``data`` holds no interactions.
    """
    if isinstance(data, InteractionStore):
        pairs = data.pairs()
        bm25_norm = bm25_item_norm(pairs, settings) if settings.weighting == "bm25" else None
        matrix = pairs.to_csr(confidence(pairs, settings, item_norm=bm25_norm))  # the norm once, not twice
        user_ids, item_ids = pairs.user_ids, pairs.item_ids
        last_seen: np.ndarray | None = pairs.last_seen
        n_interactions = pairs.n_windows
    else:
        raw, user_ids, item_ids = data
        matrix = sp.csr_matrix(raw, dtype=np.float32)
        matrix.sum_duplicates()
        last_seen, n_interactions, bm25_norm = None, matrix.nnz, None
    if matrix.nnz == 0:
        raise TrainingError("no interactions to train on")
    trained_at = int(time.time() * 1000)
    user_factors, item_factors = fit_factors(matrix, settings)
    return Model(
        user_factors=user_factors,
        item_factors=item_factors,
        user_ids=user_ids,
        item_ids=item_ids,
        matrix=matrix,
        last_seen=last_seen,
        settings=settings,
        trained_at=trained_at,
        n_interactions=n_interactions,
        bm25_norm=bm25_norm,
    )
