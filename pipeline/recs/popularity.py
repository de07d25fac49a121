"""Popularity as a model: everyone gets the titles most viewers watched, minus their own.

It is the bar the gate holds every candidate to (:func:`pipeline.recs.gate.publish_gate`)
and what the trainer serves, labelled ``popular``, when no model clears it and
none is live. Scored with the same :func:`pipeline.recs.evaluate.evaluate` as a
family, on the same users, so the two figures compare.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np

from pipeline.recs.matrix import InteractionStore
from pipeline.recs.types import PopularItem

__all__ = ["POPULAR", "PopularityRanker", "is_popular_version", "popular_version"]

POPULAR = "popular"
"""The ``family`` in the metadata of a popularity-only version, and the responses' ``model`` label."""


def popular_version(model_version: str) -> str:
    """The version id of a popularity-only publish: a model version (sortable by time) plus ``-popular``."""
    return f"{model_version}-{POPULAR}"


def is_popular_version(version: str) -> bool:
    """Whether ``version`` was published by :func:`popular_version` (the reader labels it, no extra read)."""
    return version.endswith(f"-{POPULAR}")


class PopularityRanker:
    """Titles by distinct viewers (ties by id), each user's own titles left out."""

    def __init__(self, store: InteractionStore) -> None:
        pairs = store.pairs()
        counts = np.bincount(pairs.item, minlength=len(pairs.item_ids))
        order = np.lexsort((np.asarray(pairs.item_ids, dtype=str), -counts))
        self.counts = {pairs.item_ids[i]: int(counts[i]) for i in order.tolist()}
        self.order = list(self.counts)
        bounds = np.searchsorted(pairs.user, np.arange(len(pairs.user_ids) + 1))
        self.seen = {
            u: {pairs.item_ids[i] for i in pairs.item[bounds[k] : bounds[k + 1]].tolist()}
            for k, u in enumerate(pairs.user_ids)
        }

    def recommend_ids(self, pseudonyms: Iterable[str], n: int = 10) -> dict[str, list[str]]:
        """Top ``n`` unseen titles per known user (the :class:`~pipeline.recs.evaluate.Recommender` shape)."""
        out: dict[str, list[str]] = {}
        for p in pseudonyms:
            seen = self.seen.get(p)
            if seen is not None:
                out[p] = list(itertools.islice((c for c in self.order if c not in seen), n))
        return out

    def popular(self, n: int = 100, *, min_users: int = 1) -> list[PopularItem]:
        """The published popular list: the ``n`` most watched titles with at least ``min_users`` viewers."""
        top = itertools.islice(self.counts.items(), n)
        return [PopularItem(content_id=c, score=float(k)) for c, k in top if k >= max(min_users, 1)]
