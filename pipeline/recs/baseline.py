"""The yardstick for ``privrec eval``: ``implicit`` ALS fitted straight on the raw ratings.

No privacy pipeline, no sessions, no windows: the confidence of a (user,
title) pair is the rating value itself, with the textbook hyper-parameters
(64 factors, regularization 0.05, 15 iterations) and the same seed as ours.
Scoring goes through the same :class:`~pipeline.recs.model.Model` top-N code
as our model, so the two are compared on equal terms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import scipy.sparse as sp

from pipeline.recs.als import fit_factors
from pipeline.recs.evaluate import evaluate
from pipeline.recs.model import Model
from pipeline.settings import TrainerSettings
from pipeline.sources.ratings import Rating

__all__ = ["BASELINE_SETTINGS", "baseline_eval", "baseline_model", "ratings_matrix"]

BASELINE_SETTINGS = TrainerSettings(factors=64, regularization=0.05, iterations=15)
"""Fixed hyper-parameters of the baseline; only ``seed`` and ``threads`` follow the caller."""


_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "raw": lambda w: w,
    "log": np.log1p,
    "binary": np.ones_like,
}


def ratings_matrix(
    ratings: Iterable[Rating], confidence: str = "raw"
) -> tuple[sp.csr_matrix, list[str], list[str]]:
    """Users×titles float32 CSR of ``confidence`` (raw, log1p or binary) of summed rating values."""
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    rows, cols, values = [], [], []
    for r in ratings:
        rows.append(users.setdefault(r.user_id, len(users)))
        cols.append(items.setdefault(r.content_id, len(items)))
        values.append(r.weight)
    matrix = sp.csr_matrix(
        (np.asarray(values, np.float64), (rows, cols)), shape=(len(users), len(items)), dtype=np.float64
    )
    matrix.sum_duplicates()
    matrix.data = _TRANSFORMS[confidence](matrix.data)
    matrix.eliminate_zeros()  # a 0-weight rating stays out: binary makes it 1 only if recorded
    return sp.csr_matrix(matrix, dtype=np.float32), list(users), list(items)


def baseline_model(ratings: Iterable[Rating], *, seed: int = 42, threads: int = 0) -> Model:
    """ALS on the users×titles matrix of rating values (duplicate pairs summed)."""
    matrix, users, items = ratings_matrix(ratings)
    settings = BASELINE_SETTINGS.model_copy(update={"seed": seed, "threads": threads})
    user_factors, item_factors = fit_factors(matrix, settings)
    return Model(
        user_factors=user_factors,
        item_factors=item_factors,
        user_ids=users,
        item_ids=items,
        matrix=matrix,
        last_seen=None,
        settings=settings,
    )


def baseline_eval(
    train: Iterable[Rating], heldout: Mapping[str, set[str]], *, seed: int = 42, k: int = 10
) -> dict[str, float | int]:
    """:func:`~pipeline.recs.evaluate.evaluate` of :func:`baseline_model` fitted on ``train``."""
    return evaluate(baseline_model(train, seed=seed), heldout, k)
