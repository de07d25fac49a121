"""Fit ``implicit``'s ALS on the interaction store and wrap the result as a :class:`Model`.

The fit runs on the CPU or a GPU (:mod:`pipeline.recs.device`).

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
from pipeline.recs.device import Device, resolve_device
from pipeline.recs.matrix import InteractionStore
from pipeline.recs.model import Model
from pipeline.settings import TrainerSettings

__all__ = ["TrainingError", "fit_factors", "train"]

TrainingInput = InteractionStore | tuple[sp.csr_matrix, list[str], list[str]]
"""A store, or ``(users×items confidence csr, user_ids, item_ids)``."""


class TrainingError(PrivrecError):
    """There is nothing to train on (no interactions); retry once some have arrived."""

    retryable = True


def fit_factors(
    matrix: sp.csr_matrix, settings: TrainerSettings, device: Device | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(user_factors, item_factors)`` of ALS fitted on a users×items confidence matrix.

    ``device`` (default: ``settings.device`` resolved) picks the CPU or the GPU
    solver; the factors always come back as host float32 arrays.

    Raises:
        ConfigError: the GPU was asked for and there is none.
    """
    on_gpu = (device or resolve_device(settings.device)) == "gpu"
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(
            factors=settings.factors,
            regularization=settings.regularization,
            alpha=1.0,
            iterations=settings.iterations,
            num_threads=settings.threads,
            random_state=settings.seed,
            use_gpu=on_gpu,
        )
        als.fit(matrix, show_progress=False)
    if on_gpu:
        als = als.to_cpu()
    return np.ascontiguousarray(als.user_factors, np.float32), np.ascontiguousarray(
        als.item_factors, np.float32
    )


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
