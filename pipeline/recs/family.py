"""The model seam: one small interface every recommender family implements.

``implicit`` ALS is the product's family and the default; EASE and ItemKNN
(BM25) sit behind the same interface as in-process baselines for ``privrec
eval`` and as opt-in families. Every family takes the same inputs (a store or
a ready users×items confidence matrix; fold-in histories as
``{content_id: confidence}``) and answers with the same records, so the
trainer, publishing and explanations need not know which one they hold.
``tests/unit/test_recs_family.py`` runs one contract over all of them, the
way ``implicit`` tests every model with one mixin.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pipeline.errors import ConfigError
from pipeline.recs.family_als import AlsFamily
from pipeline.recs.itemitem import META, TrainingInput
from pipeline.recs.itemitem_fits import EaseFamily, ItemKnnFamily, TooManyItems
from pipeline.recs.types import PopularItem, Recommendation, UserRecs
from pipeline.settings import TrainerSettings

__all__ = [
    "FAMILIES",
    "Family",
    "TooManyItems",
    "TrainingInput",
    "load_family",
    "make_family",
]


@runtime_checkable
class Family(Protocol):
    """What a recommender family offers the trainer, the publisher and ``privrec eval``."""

    name: str
    """``"als"``, ``"ease"`` or ``"itemknn"``: the key of :data:`FAMILIES`."""

    def fit(self, data: TrainingInput) -> None:
        """Train on every interaction in ``data``, replacing what was learnt before."""
        ...

    def fold_in(self, histories: Mapping[str, Mapping[str, float]]) -> dict[str, int]:
        """Replace (or add) users' histories ``{pseudonym: {content_id: confidence}}`` without a retrain.

        Returns the number of known titles kept per user; unknown titles wait for the next fit.
        """
        ...

    def recommend(self, pseudonym: str, n: int = 10, *, explain: bool = True) -> list[Recommendation]:
        """Top ``n`` unseen titles with their reasons; ``[]`` for an unknown user."""
        ...

    def recommend_ids(self, pseudonyms: Iterable[str], n: int = 10) -> dict[str, list[str]]:
        """Top ``n`` unseen content ids per known user, without reasons (evaluation)."""
        ...

    def explain(self, pseudonym: str, content_id: str, top: int = 3) -> list[tuple[str, float]]:
        """Up to ``top`` history titles with a positive share of ``content_id``'s score, largest first."""
        ...

    def remove_users(self, pseudonyms: Iterable[str]) -> int:
        """Erase users (history row and any per-user state); returns how many were known."""
        ...

    def save(self, directory: Path) -> Path:
        """Write the fitted model to ``directory`` (replaced whole); :func:`load_family` reads it."""
        ...

    # -- what the trainer publishes --------------------------------------------------

    @property
    def version(self) -> str:
        """Set by :meth:`fit`: sortable by training time (:func:`pipeline.recs.model.new_version`)."""
        ...

    @property
    def metrics(self) -> dict[str, Any]:
        """Evaluation figures; the trainer adds to them before publishing (they go into :meth:`meta`)."""
        ...

    @property
    def n_users(self) -> int: ...

    @property
    def n_items(self) -> int: ...

    def __contains__(self, pseudonym: object) -> bool: ...

    def meta(self) -> dict[str, Any]:
        """JSON-ready metadata (``family``, version, training time, sizes, settings, metrics)."""
        ...

    def recommend_all(
        self, n: int | None = None, *, recent_days: float | None = ..., explain: bool = True
    ) -> dict[str, UserRecs]:
        """Every user's ``full`` list and the ``limited`` one (recent history only; ``[]`` when ``None``)."""
        ...

    def popular(self, n: int = 100, *, min_users: int = 1) -> list[PopularItem]:
        """Titles watched by the most distinct users (at least ``min_users``); no per-user data."""
        ...

    def fold_in_records(self, histories: Mapping[str, Iterable[Mapping[str, Any] | Any]]) -> dict[str, int]:
        """:meth:`fold_in` from users' complete ``interaction.v1`` windows, weighed as in training."""
        ...


FAMILIES: dict[str, type[AlsFamily] | type[EaseFamily] | type[ItemKnnFamily]] = {
    "als": AlsFamily,
    "ease": EaseFamily,
    "itemknn": ItemKnnFamily,
}


def make_family(name: str, settings: TrainerSettings) -> Family:
    """An unfitted family by name.

    Raises:
        ConfigError: ``name`` is not one of :data:`FAMILIES`.
    """
    cls = FAMILIES.get(name)
    if cls is None:
        raise ConfigError("trainer.families", f"unknown family {name!r}; expected one of {sorted(FAMILIES)}")
    return cls(settings)


def load_family(directory: Path) -> Family:
    """Read any family written by :meth:`Family.save` (an ALS artefact has no ``family`` key)."""
    meta = json.loads((directory / META).read_text(encoding="utf-8"))
    name = meta.get("family", "als")
    cls = FAMILIES.get(name)
    if cls is None:
        raise ValueError(f"{directory}: unknown model family {name!r}")
    return cls.load(directory)
