"""Offline quality: a per-user temporal split and NDCG@k / precision@k with binary relevance.

The held-out part of a user is the newest ``holdout_fraction`` of their
interactions (by time), so the model is judged on predicting what a viewer
watched *next*, as in production. Relevant titles are the held-out titles the
user had not already watched in the training part (a model never recommends
those). Users with fewer than two interactions stay in training only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

__all__ = ["Split", "evaluate", "ndcg_at_k", "precision_at_k", "temporal_split"]


class Split(NamedTuple):
    """``train`` records, and per user the held-out relevant content ids."""

    train: list[Any]
    heldout: dict[str, set[str]]


class Recommender(Protocol):
    """What :func:`evaluate` needs from a model."""

    def recommend_ids(self, pseudonyms: Iterable[str], n: int = 10) -> dict[str, list[str]]: ...


def _field(record: Any, *names: str) -> Any:
    for name in names:
        if isinstance(record, Mapping):
            if name in record:
                return record[name]
        elif hasattr(record, name):
            return getattr(record, name)
    raise KeyError(f"record has none of {names}")


def _default_user(record: Any) -> str:
    return str(_field(record, "user", "user_id"))


def _default_time(record: Any) -> int:
    return int(_field(record, "window_end", "timestamp_s", "event_time"))


def _default_item(record: Any) -> str:
    return str(_field(record, "content_id"))


def temporal_split(
    records: Iterable[Any],
    holdout_fraction: float = 0.2,
    *,
    user: Callable[[Any], str] = _default_user,
    time: Callable[[Any], int] = _default_time,
    item: Callable[[Any], str] = _default_item,
) -> Split:
    """Hold out each user's newest ``holdout_fraction`` of records (at least one, never all).

    Works on ``interaction.v1`` records (``user``, ``window_end``) and on
    :class:`pipeline.sources.Rating` (``user_id``, ``timestamp_s``); equal times
    keep input order. Train records keep their input order.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError("holdout_fraction must be in (0, 1)")
    records = list(records)
    by_user: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        by_user.setdefault(user(record), []).append(index)
    held: set[int] = set()
    heldout: dict[str, set[str]] = {}
    for uid, indices in by_user.items():
        if len(indices) < 2:
            continue
        ordered = sorted(indices, key=lambda i: time(records[i]))
        n_hold = min(len(indices) - 1, max(1, int(len(indices) * holdout_fraction)))
        tail = ordered[-n_hold:]
        held.update(tail)
        seen = {item(records[i]) for i in ordered[:-n_hold]}
        relevant = {item(records[i]) for i in tail} - seen
        if relevant:
            heldout[uid] = relevant
    train = [r for i, r in enumerate(records) if i not in held]
    return Split(train, heldout)


def ndcg_at_k(recommended: Sequence[str], relevant: set[str] | frozenset[str], k: int = 10) -> float:
    """``DCG@k / IDCG@k`` with gain 1 per relevant title and discount ``1 / log2(rank + 1)``.

    The ideal DCG places ``min(k, |relevant|)`` hits first; no relevant titles gives 0.
    """
    if not relevant or k <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 2) for rank, c in enumerate(recommended[:k]) if c in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return dcg / ideal


def precision_at_k(recommended: Sequence[str], relevant: set[str] | frozenset[str], k: int = 10) -> float:
    """Relevant titles among the first ``k`` recommended, divided by ``k``."""
    if k <= 0:
        return 0.0
    return sum(1 for c in recommended[:k] if c in relevant) / k


def evaluate(model: Recommender, heldout: Mapping[str, set[str]], k: int = 10) -> dict[str, float | int]:
    """Mean NDCG@k and precision@k over held-out users the model knows.

    Returns ``{"ndcg_at_10", "precision_at_10", "users"}`` (the key names carry ``k``).
    """
    recs = model.recommend_ids(heldout, k)
    ndcg = [ndcg_at_k(recs[u], heldout[u], k) for u in recs]
    precision = [precision_at_k(recs[u], heldout[u], k) for u in recs]
    n = len(recs)
    return {
        f"ndcg_at_{k}": sum(ndcg) / n if n else 0.0,
        f"precision_at_{k}": sum(precision) / n if n else 0.0,
        "users": n,
    }
