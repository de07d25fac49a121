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

Recency (``recency_half_life_titles``, off when None): the bracket is further
multiplied by ``0.5 ** (newer / half_life)``, ``newer`` the number of the
*same viewer's* titles started later (:meth:`Pairs.start_order`). Counted in titles, relative
to the viewer, not in days behind the clock or behind the viewer's newest
title: viewers watch in bursts and pause for weeks, so days fade a whole
burst at once or not at all, while the viewer's own sequence keeps fading
steadily (README, Evaluation, has the measurement). Titles started in the
same hour are ordered by the stream's emission order (their first events).
It needs nothing outside the viewer's own rows, so a fold-in (which sees only
that viewer's windows) weighs exactly as training did.

How the defaults were chosen, with the measured NDCG@10 of each candidate on both
MovieLens sets: README, "Evaluation and model families" (figures live there, not here).
"""

from __future__ import annotations

import numpy as np

from pipeline.recs.pairs import Pairs
from pipeline.settings import TrainerSettings

__all__ = ["bm25_item_norm", "confidence", "recency", "weigh"]


def bm25_item_norm(pairs: Pairs, settings: TrainerSettings) -> np.ndarray:
    """BM25 length norm per title (indexed like ``pairs.item_ids``): long-watched titles weigh less.

    ``(1 - b) + b * total / mean total``, totals of ``watched_ms / watched_unit_ms``
    over all viewers. A model keeps it so that fold-in weighs like training did.
    """
    x = pairs.watched_ms.astype(np.float64) / settings.watched_unit_ms
    totals = np.bincount(pairs.item, weights=x, minlength=pairs.shape[1])
    mean = totals.mean() if len(totals) else 0.0
    b = settings.bm25_b
    norm: np.ndarray = (1.0 - b) + b * (totals / mean if mean > 0 else np.ones_like(totals))
    return norm


def weigh(
    pairs: Pairs,
    settings: TrainerSettings,
    *,
    item_norm: np.ndarray | None = None,
    n_items: int | None = None,
) -> np.ndarray:
    """``f(watched_ms / watched_unit_ms)`` per pair, before alpha and the completion bonus.

    ``bm25`` is ``implicit.nearest_neighbours.bm25_weight`` of the items×users
    matrix (titles as documents, viewers as terms), written out so that a
    fold-in can reuse the training matrix's ``item_norm`` (indexed like
    ``pairs.item``'s ids) and catalogue size ``n_items``; negative weights
    (viewers who watched most of the catalogue) become 0.
    """
    x = pairs.watched_ms.astype(np.float64) / settings.watched_unit_ms
    if settings.weighting == "log":
        return np.log1p(x)
    if settings.weighting == "linear":
        return x
    if settings.weighting == "binary":
        return np.ones_like(x)
    norm = bm25_item_norm(pairs, settings) if item_norm is None else item_norm
    n_items = pairs.shape[1] if n_items is None else n_items
    idf = np.log(max(n_items, 1)) - np.log1p(np.bincount(pairs.user, minlength=pairs.shape[0]))
    k1 = settings.bm25_k1
    denom = k1 * norm[pairs.item] + x
    saturation = x * (k1 + 1.0) / np.where(denom > 0, denom, 1.0)  # x = 0 on an all-zero title: 0
    out: np.ndarray = np.maximum(saturation * idf[pairs.user], 0.0)
    return out


def recency(pairs: Pairs, half_life_titles: float) -> np.ndarray:
    """Per pair ``0.5 ** (newer / half_life_titles)``, ``newer`` the viewer's titles started later.

    1 for each viewer's newest title, in (0, 1] and strictly lower for a title
    started earlier than another of the same viewer (:meth:`Pairs.start_order`).
    """
    n = len(pairs)
    if not n:
        return np.ones(0, np.float64)
    order = pairs.start_order()  # per viewer, oldest first
    user = pairs.user[order]
    counts = np.bincount(user, minlength=pairs.shape[0])
    first = np.cumsum(counts) - counts
    newer = np.empty(n, np.float64)
    newer[order] = (first + counts)[user] - 1 - np.arange(n)
    out: np.ndarray = np.exp2(-newer / half_life_titles)
    return out


def confidence(
    pairs: Pairs,
    settings: TrainerSettings,
    *,
    item_norm: np.ndarray | None = None,
    n_items: int | None = None,
) -> np.ndarray:
    """float32 ALS confidence per pair: ``1 + alpha * r * (f(x) + completion_bonus * completed)``.

    ``r`` is :func:`recency` when ``settings.recency_half_life_titles`` is set, else 1.
    """
    raw = weigh(pairs, settings, item_norm=item_norm, n_items=n_items)
    raw = raw + settings.completion_bonus * pairs.completed
    if settings.recency_half_life_titles is not None:
        raw = raw * recency(pairs, settings.recency_half_life_titles)
    return (1.0 + settings.alpha * raw).astype(np.float32)
