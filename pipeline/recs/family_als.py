"""ALS behind the family seam: the existing :class:`~pipeline.recs.model.Model`, wrapped.

Fitting is :func:`pipeline.recs.als.train`, explanations are the vectorised
form of ``implicit``'s ``AlternatingLeastSquares.explain``
(:mod:`pipeline.recs.explain`), persistence is :mod:`pipeline.recs.artefact`.
Nothing here re-implements ALS; it only adapts the model to the seam.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from pipeline.recs.als import train
from pipeline.recs.artefact import load_model, save_model
from pipeline.recs.explain import contributions
from pipeline.recs.itemitem import TrainingInput, ranked
from pipeline.recs.model import DEFAULT_RECENT_DAYS, Model
from pipeline.recs.types import PopularItem, Recommendation, UserRecs
from pipeline.settings import TrainerSettings

__all__ = ["AlsFamily"]


class AlsFamily:
    """Implicit-feedback ALS (``implicit``, CPU) with the trainer's confidence settings."""

    name = "als"

    def __init__(self, settings: TrainerSettings, model: Model | None = None) -> None:
        self.settings = settings
        self._model = model

    @property
    def model(self) -> Model:
        """The fitted :class:`Model` (what the trainer publishes today)."""
        if self._model is None:
            raise RuntimeError("AlsFamily: fit() first")
        return self._model

    def fit(self, data: TrainingInput) -> None:
        self._model = train(data, self.settings)

    def fold_in(self, histories: Mapping[str, Mapping[str, float]]) -> dict[str, int]:
        return self.model.fold_in_confidence(histories)

    def recommend(self, pseudonym: str, n: int = 10, *, explain: bool = True) -> list[Recommendation]:
        return self.model.recommend(pseudonym, n, explain=explain)

    def fold_in_records(self, histories: Mapping[str, Iterable[Mapping[str, Any] | Any]]) -> dict[str, int]:
        return self.model.fold_in_many(histories)

    def recommend_all(
        self, n: int | None = None, *, recent_days: float | None = DEFAULT_RECENT_DAYS, explain: bool = True
    ) -> dict[str, UserRecs]:
        return self.model.recommend_all(n, recent_days=recent_days, explain=explain)

    def popular(self, n: int = 100, *, min_users: int = 1) -> list[PopularItem]:
        return self.model.popular(n, min_users=min_users)

    def meta(self) -> dict[str, Any]:
        return {**self.model.meta(), "family": self.name}

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def metrics(self) -> dict[str, Any]:
        return self.model.metrics

    @property
    def n_users(self) -> int:
        return self.model.n_users

    @property
    def n_items(self) -> int:
        return self.model.n_items

    @property
    def user_ids(self) -> list[str]:
        return self.model.user_ids

    @property
    def item_ids(self) -> list[str]:
        return self.model.item_ids

    @property
    def matrix(self) -> sp.csr_matrix:
        """The users×items confidence matrix the model holds (the audit reads histories from it)."""
        return self.model.matrix

    @property
    def last_seen(self) -> np.ndarray | None:
        return self.model.last_seen

    @property
    def n_interactions(self) -> int:
        return self.model.n_interactions

    def __contains__(self, pseudonym: object) -> bool:
        return pseudonym in self.model

    def recommend_ids(self, pseudonyms: Iterable[str], n: int = 10) -> dict[str, list[str]]:
        return self.model.recommend_ids(pseudonyms, n)

    def explain(self, pseudonym: str, content_id: str, top: int = 3) -> list[tuple[str, float]]:
        m = self.model
        if pseudonym not in m or content_id not in m.item_ids:
            return []
        row = m.user_ids.index(pseudonym)
        lo, hi = m.matrix.indptr[row], m.matrix.indptr[row + 1]
        seen, conf = m.matrix.indices[lo:hi], m.matrix.data[lo:hi]
        if len(seen) == 0:
            return []
        target = np.asarray([m.item_ids.index(content_id)])
        with threadpool_limits(1, "blas"):
            share = contributions(m.item_factors, m._yty, m.settings.regularization, seen, conf, target)[:, 0]
        return ranked(seen, share, m.item_ids, top)

    def remove_users(self, pseudonyms: Iterable[str]) -> int:
        return self.model.remove_users(pseudonyms)

    def save(self, directory: Path) -> Path:
        return save_model(self.model, directory)

    @classmethod
    def load(cls, directory: Path) -> AlsFamily:
        model = load_model(directory)
        return cls(model.settings, model)
