"""Explanations ("because you watched"): which of a viewer's titles pushed a recommendation up.

This is ``implicit``'s ``AlternatingLeastSquares.explain`` (Hu et al. 2008,
section 5), vectorised over every recommended title of one user: with
``W = (YᵀCᵤY + λI)⁻¹`` the predicted score of title ``i`` splits exactly into
``Σⱼ (yᵢᵀ W yⱼ) cⱼ`` over the titles ``j`` the user watched. One Cholesky
factorisation per user serves all of their recommendations, so explaining a
whole top-N costs about as much as one ``explain`` call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg

__all__ = ["contributions", "top_reasons"]


def contributions(
    item_factors: np.ndarray,
    yty: np.ndarray,
    regularization: float,
    seen: np.ndarray,
    confidence: np.ndarray,
    targets: np.ndarray,
) -> np.ndarray:
    """``len(seen) × len(targets)`` matrix: what watched title ``seen[j]`` adds to ``targets[t]``.

    Columns sum to the targets' scores under the user vector fitted on
    ``(seen, confidence)``; ``yty`` is ``item_factors.T @ item_factors``.
    """
    y_seen = item_factors[seen].astype(np.float64)
    c = confidence.astype(np.float64)
    a = yty.astype(np.float64) + regularization * np.eye(yty.shape[0])
    a += y_seen.T @ (y_seen * (c - 1.0)[:, None])
    factor = scipy.linalg.cho_factor(a, check_finite=False)
    weighted = scipy.linalg.cho_solve(factor, item_factors[targets].T.astype(np.float64), check_finite=False)
    result: np.ndarray = (y_seen @ weighted) * c[:, None]
    return result


def top_reasons(
    contrib: np.ndarray, seen: np.ndarray, item_ids: Sequence[str], top: int = 3
) -> list[tuple[str, ...]]:
    """Per target (column), the ids of up to ``top`` seen titles with the largest positive share."""
    m, n = contrib.shape
    if m == 0:
        return [() for _ in range(n)]
    k = min(top, m)
    best = np.argpartition(-contrib, k - 1, axis=0)[:k] if m > k else np.arange(m)[:, None].repeat(n, 1)
    values = np.take_along_axis(contrib, best, axis=0)
    order = np.argsort(-values, axis=0, kind="stable")
    best, values = np.take_along_axis(best, order, 0), np.take_along_axis(values, order, 0)
    ids = seen[best].T.tolist()
    positive = (values > 0.0).T.tolist()
    return [
        tuple(item_ids[i] for i, ok in zip(row, ok_row, strict=True) if ok)
        for row, ok_row in zip(ids, positive, strict=True)
    ]
