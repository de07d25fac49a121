"""Confidence: how sure the model is that a viewer likes a title, from watch time.

Implicit-feedback ALS (Hu, Koren & Volinsky 2008) treats every watched title
as a positive with confidence ``c``; titles never watched have confidence 1.
privrec derives ``c`` from the per user×title aggregates of
:class:`~pipeline.recs.matrix.Pairs`::

    c = 1 + alpha * (f(watched_ms / watched_unit_ms) + completion_bonus * completed)

with ``f`` chosen by ``TrainerSettings.weighting``:

``log``
    ``log1p(x)``: diminishing returns, so binge-rewatching one title does not
    drown the rest of the profile.
``linear``
    ``x``: watch time as is.
``binary``
    ``1`` for any watched title (the completion bonus still applies).
``bm25``
    ``implicit.nearest_neighbours.bm25_weight`` over the items×users matrix of
    ``x`` (``bm25_k1``, ``bm25_b``): damps heavy viewers and very long titles.

The leading ``1 +`` keeps every observed title at least as strong as an
unobserved one, also when nothing was watched (a ``play`` that never started).

Defaults (measured)
-------------------
TABLE
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import bm25_weight

from pipeline.recs.pairs import Pairs
from pipeline.settings import TrainerSettings

__all__ = ["confidence", "weigh"]


def weigh(pairs: Pairs, settings: TrainerSettings) -> np.ndarray:
    """``f(watched_ms / watched_unit_ms)`` per pair, before alpha and the completion bonus."""
    x = pairs.watched_ms.astype(np.float64) / settings.watched_unit_ms
    if settings.weighting == "log":
        return np.log1p(x)
    if settings.weighting == "linear":
        return x
    if settings.weighting == "binary":
        return np.ones_like(x)
    n_users, n_items = pairs.shape
    item_users = sp.coo_matrix((x, (pairs.item, pairs.user)), shape=(n_items, n_users))
    weighted = bm25_weight(item_users, K1=settings.bm25_k1, B=settings.bm25_b)
    if not (np.array_equal(weighted.row, pairs.item) and np.array_equal(weighted.col, pairs.user)):
        raise RuntimeError("bm25_weight reordered the matrix entries")  # pragma: no cover
    return np.maximum(np.asarray(weighted.data, np.float64), 0.0)


def confidence(pairs: Pairs, settings: TrainerSettings) -> np.ndarray:
    """float32 ALS confidence per pair: ``1 + alpha * (f(x) + completion_bonus * completed)``."""
    raw = weigh(pairs, settings) + settings.completion_bonus * pairs.completed
    return (1.0 + settings.alpha * raw).astype(np.float32)
