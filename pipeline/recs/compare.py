"""Strong simple baselines for ``privrec eval``, all fitted on the same training ratings.

``popularity``
    the most-watched unseen titles, the same for everyone.
``itemknn_bm25``
    the ItemKNN family (``implicit``'s BM25, K=100) on the rating values.
``ease``
    the EASE family on binary interactions, its λ the best of
    :data:`EASE_LAMBDAS` on a validation split (``trainer.ease_lambda`` above
    :data:`EASE_SEARCH_MAX_ITEMS` titles).
``als_textbook``
    :mod:`pipeline.recs.baseline` (what ``ratio`` has always been against).
``als_tuned``
    ALS over :data:`ALS_GRID` (factors × regularization × confidence), the
    setting chosen on a validation split.

The validation split is carved from the *training* part exactly as the
holdout was carved from the whole (each user's newest share), so no choice
ever sees the held-out titles the result is reported on.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipeline.recs.baseline import baseline_model, ratings_matrix
from pipeline.recs.evaluate import Recommender, evaluate, temporal_split
from pipeline.recs.family import make_family
from pipeline.recs.family_als import AlsFamily
from pipeline.recs.itemitem_fits import TooManyItems
from pipeline.settings import TrainerSettings
from pipeline.sources.ratings import Rating

__all__ = [
    "ALS_GRID",
    "BASELINES",
    "EASE_LAMBDAS",
    "EASE_SEARCH_MAX_ITEMS",
    "Popularity",
    "compare_baselines",
]

BASELINES = ("popularity", "itemknn_bm25", "ease", "als_textbook", "als_tuned")
ALS_GRID: dict[str, tuple[Any, ...]] = {
    "factors": (64, 128),
    "regularization": (1.0, 20.0, 100.0),
    "confidence": ("raw", "log", "binary"),
}
"""The tuned ALS's search space (18 settings, 15 iterations each)."""
EASE_LAMBDAS = (50.0, 200.0, 500.0)
EASE_SEARCH_MAX_ITEMS = 5000
"""Above this many titles EASE keeps ``trainer.ease_lambda`` (each try is a cubic-cost inverse)."""


class Popularity:
    """The titles most users watched, minus those a user already watched."""

    def __init__(self, ratings: Iterable[Rating]) -> None:
        counts: dict[str, set[str]] = {}
        self.seen: dict[str, set[str]] = {}
        for r in ratings:
            counts.setdefault(r.content_id, set()).add(r.user_id)
            self.seen.setdefault(r.user_id, set()).add(r.content_id)
        self.order = sorted(counts, key=lambda c: (-len(counts[c]), c))

    def recommend_ids(self, pseudonyms: Iterable[str], n: int = 10) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for p in pseudonyms:
            if p in self.seen:
                seen = self.seen[p]
                out[p] = list(itertools.islice((c for c in self.order if c not in seen), n))
        return out


def compare_baselines(
    train: Sequence[Rating],
    heldout: Mapping[str, set[str]],
    *,
    seed: int = 42,
    holdout: float = 0.2,
    k: int = 10,
    threads: int = 0,
) -> dict[str, dict[str, Any]]:
    """Every baseline of :data:`BASELINES` on ``(train, heldout)``: NDCG@k, precision@k, setting, seconds."""
    valid_train, valid_heldout = temporal_split(train, holdout)
    base = TrainerSettings(seed=seed, threads=threads, iterations=15)
    out: dict[str, dict[str, Any]] = {}

    started = time.monotonic()
    out["popularity"] = _score(Popularity(train), heldout, k, started)

    started = time.monotonic()
    knn = make_family("itemknn", base.model_copy(update={"knn_k": 100}))
    knn.fit(ratings_matrix(train))
    out["itemknn_bm25"] = _score(knn, heldout, k, started, {"k": 100})

    started = time.monotonic()
    out["ease"] = _ease(train, heldout, valid_train, valid_heldout, base, k, started)

    started = time.monotonic()
    out["als_textbook"] = _score(baseline_model(train, seed=seed, threads=threads), heldout, k, started)

    started = time.monotonic()
    best, best_score = None, -math.inf
    for factors, reg, conf in itertools.product(*ALS_GRID.values()):
        setting = {"factors": factors, "regularization": reg, "confidence": conf}
        score = _als_ndcg(valid_train, valid_heldout, base, setting, k)
        if score > best_score:
            best, best_score = setting, score
    assert best is not None
    tuned = _als(train, base, best)
    out["als_tuned"] = _score(tuned, heldout, k, started, {**best, "validation_ndcg": round(best_score, 5)})
    return out


def _ease(
    train: Sequence[Rating],
    heldout: Mapping[str, set[str]],
    valid_train: Sequence[Rating],
    valid_heldout: Mapping[str, set[str]],
    base: TrainerSettings,
    k: int,
    started: float,
) -> dict[str, Any]:
    """EASE with λ chosen on the validation split; ``ndcg_at_10`` ``None`` when the catalogue is too big."""
    try:
        best, best_score = base.ease_lambda, -math.inf
        n_items = len({r.content_id for r in valid_train})
        for lam in EASE_LAMBDAS if n_items <= EASE_SEARCH_MAX_ITEMS else ():
            ease = make_family("ease", base.model_copy(update={"ease_lambda": lam}))
            ease.fit(ratings_matrix(valid_train, "binary"))
            score = float(evaluate(ease, valid_heldout, k)[f"ndcg_at_{k}"])
            if score > best_score:
                best, best_score = lam, score
        ease = make_family("ease", base.model_copy(update={"ease_lambda": best}))
        ease.fit(ratings_matrix(train, "binary"))
    except TooManyItems:
        return {f"ndcg_at_{k}": None, f"precision_at_{k}": None, "skipped": "too many titles"}
    chosen = {"lambda": best, "validation_ndcg": round(best_score, 5) if best_score > -math.inf else None}
    return _score(ease, heldout, k, started, chosen)


def _als(train: Sequence[Rating], base: TrainerSettings, setting: Mapping[str, Any]) -> AlsFamily:
    settings = base.model_copy(
        update={"factors": setting["factors"], "regularization": setting["regularization"]}
    )
    family = AlsFamily(settings)
    family.fit(ratings_matrix(train, setting["confidence"]))
    return family


def _als_ndcg(
    train: Sequence[Rating],
    heldout: Mapping[str, set[str]],
    base: TrainerSettings,
    setting: Mapping[str, Any],
    k: int,
) -> float:
    return float(evaluate(_als(train, base, setting), heldout, k)[f"ndcg_at_{k}"])


def _score(
    model: Recommender,
    heldout: Mapping[str, set[str]],
    k: int,
    started: float,
    setting: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    result = evaluate(model, heldout, k)
    out: dict[str, Any] = {
        f"ndcg_at_{k}": round(float(result[f"ndcg_at_{k}"]), 5),
        f"precision_at_{k}": round(float(result[f"precision_at_{k}"]), 5),
        "users": int(result["users"]),
    }
    if setting:
        out["setting"] = dict(setting)
    out["seconds"] = round(time.monotonic() - started, 2)
    return out
