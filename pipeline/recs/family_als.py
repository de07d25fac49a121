"""ALS behind the family seam: the existing :class:`~pipeline.recs.model.Model`, wrapped.

Fitting is :func:`pipeline.recs.als.train`, explanations are the vectorised
form of ``implicit``'s ``AlternatingLeastSquares.explain``
(:mod:`pipeline.recs.explain`), persistence is :mod:`pipeline.recs.artefact`.
Nothing here re-implements ALS; it only adapts the model to the seam.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from pipeline.recs.als import train
from pipeline.recs.artefact import load_model, save_model
from pipeline.recs.explain import contributions
from pipeline.recs.itemitem import TrainingInput, ranked
from pipeline.recs.model import Model
from pipeline.recs.types import Recommendation
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
