"""Self-tuning per deployment: choose the family and its setting on a validation split of the training data.

Fixed defaults are chosen on someone else's data; a deployment's data is its
own. Before a full retrain the trainer hands its store to :func:`tune`, which
carves a per-user temporal validation split from it (:func:`validation_split`).
``privrec eval`` removes its holdout before the replay, so no choice ever sees
a title its reported figure is scored on.

Search: `Optuna <https://optuna.org>`_'s TPE sampler (seeded) over the
enabled families (``trainer.families``), the confidence transform
(``weighting`` binary/log/linear/bm25, ``alpha``, the watch-time unit, the
completion bonus, recency off or its half-life in titles), and per family its
own knobs (ALS: factors, regularization, iterations; EASE: λ; ItemKNN: K). The
first trial is always the current setting, so the choice is never worse than
the fixed defaults on validation; the next are the recency probes (the
setting in force with recency at two half-lives), then the sampler's; the
space itself is :mod:`pipeline.recs.search_space`. The
validation split holds out the titles each viewer *started* last, ordered as
the stream saw them (:meth:`Pairs.start_order`), as ``privrec eval`` holds out
each viewer's newest ratings. The setting in force is replaced only by one at
least ``trainer.tune_min_gain`` better there: the validation split is smaller
than the data the model is finally fitted on, and small validation gains
were measured not to carry over (README, Tuning). The search stops at
``trainer.tune_trials`` trials or when the next trial would overrun
``trainer.tune_budget_s`` (judged by the slowest trial so far); above
``trainer.tune_max_users`` users it runs on a seeded sample of them. With a
seed and enough budget for every trial, the choice is deterministic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.recs._order import newest_per_user
from pipeline.recs.confidence import confidence
from pipeline.recs.evaluate import evaluate
from pipeline.recs.matrix import InteractionStore
from pipeline.recs.pairs import Pairs
from pipeline.recs.search_space import current_setting, recency_probes, suggest, tell
from pipeline.settings import TrainerSettings

__all__ = [
    "MIN_VALIDATION_USERS",
    "TUNED_FIELDS",
    "TuneResult",
    "apply_setting",
    "sample_users",
    "tune",
    "validation_split",
]

log = logging.getLogger(__name__)

TUNED_FIELDS = (
    "weighting",
    "alpha",
    "watched_unit_ms",
    "completion_bonus",
    "recency_half_life_titles",
    "factors",
    "regularization",
    "iterations",
    "ease_lambda",
    "knn_k",
)
"""The trainer settings the tuner may change; everything else is operations and stays."""

MIN_VALIDATION_USERS = 20
"""Below this many validation users a score is noise: the current setting is kept untuned."""


@dataclass(frozen=True, slots=True)
class TuneResult:
    """What a tuning round chose, and what it cost (no user data)."""

    family: str
    setting: dict[str, Any]
    """Overrides of :class:`TrainerSettings` (a subset of :data:`TUNED_FIELDS`)."""
    validation_ndcg_at_10: float | None
    """The chosen setting's NDCG@10 on the validation split; None when nothing was tried."""
    trials: int
    seconds: float
    users: int = 0
    """Users the search ran on (after sampling)."""
    reason: str = ""
    """Why the search stopped (``trials``, ``budget``) or did not run."""
    default_ndcg_at_10: float | None = None
    """The setting in force before tuning, on the same split (the first trial)."""
    history: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (without the per-trial history)."""
        return {
            "family": self.family,
            "setting": dict(self.setting),
            "validation_ndcg_at_10": self.validation_ndcg_at_10,
            "default_ndcg_at_10": self.default_ndcg_at_10,
            "trials": self.trials,
            "seconds": self.seconds,
            "users": self.users,
            "reason": self.reason,
        }


def apply_setting(settings: TrainerSettings, result: TuneResult | None) -> TrainerSettings:
    """``settings`` with the tuned setting applied (unchanged for None)."""
    if result is None or not result.setting:
        return settings
    return settings.model_copy(update={k: v for k, v in result.setting.items() if k in TUNED_FIELDS})


def sample_users(
    pairs: Pairs, heldout: Mapping[str, set[str]], max_users: int, seed: int
) -> tuple[Pairs, dict[str, set[str]]]:
    """At most ``max_users`` users (a seeded sample), their pairs re-indexed; titles keep their columns."""
    n_users = len(pairs.user_ids)
    if n_users <= max_users:
        return pairs, dict(heldout)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n_users, size=max_users, replace=False))
    remap = np.full(n_users, -1, np.int64)
    remap[chosen] = np.arange(max_users)
    keep = remap[pairs.user] >= 0
    user_ids = [pairs.user_ids[i] for i in chosen.tolist()]
    sub = pairs.subset(keep, user=remap[pairs.user[keep]].astype(np.int32), user_ids=user_ids)
    wanted = set(user_ids)
    return sub, {u: items for u, items in heldout.items() if u in wanted}


def validation_split(pairs: Pairs, fraction: float) -> tuple[Pairs, dict[str, set[str]]]:
    """Per user with two titles or more, the ``fraction`` of *titles* they started last, held out whole.

    Titles, not windows: a title whose later windows were held out while its
    first stayed in training would be "already seen" and drop out, leaving a
    validation set of re-watches. Started last: ``privrec eval``'s holdout is
    each viewer's newest ratings, i.e. the titles they came to last, and a
    recommender's job is the next title. The order is :meth:`Pairs.start_order`
    (the first window's hour, then the order the stream closed that hour's
    windows in, which is the order of their first events), so ties within an
    hour follow what the viewer did. A shuffle or the title id as tie-break
    (earlier versions) held out a different, arbitrary set each run and ranked
    settings unlike the holdout does (README, Tuning).
    """
    held = newest_per_user(pairs.user, pairs.start_order(), len(pairs.user_ids), fraction)
    heldout: dict[str, set[str]] = {}
    for u, i in zip(pairs.user[held].tolist(), pairs.item[held].tolist(), strict=True):
        heldout.setdefault(pairs.user_ids[u], set()).add(pairs.item_ids[i])
    keep = ~held
    train = pairs.subset(keep)
    return train, heldout


def _score(pairs: Pairs, heldout: Mapping[str, set[str]], family: str, settings: TrainerSettings) -> float:
    from pipeline.recs.family import make_family

    matrix = pairs.to_csr(confidence(pairs, settings))
    model = make_family(family, settings)
    model.fit((matrix, pairs.user_ids, pairs.item_ids))
    return float(evaluate(model, heldout, 10)["ndcg_at_10"])


def tune(
    store: InteractionStore,
    settings: TrainerSettings,
    *,
    families: Sequence[str] | None = None,
    budget_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TuneResult:
    """Choose a family and setting on a validation split carved from ``store`` (see the module docstring).

    ``store`` must be training data only: the caller has already removed
    whatever it evaluates on. Families, budget, trial cap and user cap come
    from ``settings`` unless given.
    """
    import optuna

    started = clock()
    families = list(families or settings.families)
    budget = settings.tune_budget_s if budget_s is None else budget_s
    first = families[0]

    def result(reason: str, **kw: Any) -> TuneResult:
        kw.setdefault("family", first)
        kw.setdefault("setting", current_setting(settings, first))
        kw.setdefault("validation_ndcg_at_10", None)
        kw.setdefault("trials", 0)
        return TuneResult(seconds=round(clock() - started, 3), reason=reason, **kw)

    if budget <= 0 or settings.tune_trials < 1:
        return result("tuning off")
    if not len(store):
        return result("too little data")
    pairs, heldout = validation_split(store.pairs(), settings.holdout_fraction)
    pairs, heldout = sample_users(pairs, heldout, settings.tune_max_users, settings.seed)
    if len(heldout) < MIN_VALIDATION_USERS or len(pairs) == 0:
        return result("too little data", users=len(heldout))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=settings.seed, n_startup_trials=8)
    )
    slowest = 0.0
    stop_reason = "trials"
    scores: list[float] = []

    def attempt(family: str, setting: dict[str, Any]) -> float:
        nonlocal slowest
        t0 = clock()
        try:
            score = _score(pairs, heldout, family, settings.model_copy(update=setting))
        except Exception as exc:  # a family refusing the data (EASE over its item cap): not a choice
            log.info("tune: %s trial failed (%s)", family, type(exc).__name__)
            score = -1.0
        slowest = max(slowest, clock() - t0)
        scores.append(score)
        return score

    # the setting in force first, outside the sampler: tuning never does worse on validation
    best_family, best_setting = first, current_setting(settings, first)
    best_score = attempt(best_family, best_setting)
    # then the recency probes, outside the sampler too: (score, order, family, setting)
    tried: list[tuple[float, int, str, dict[str, Any]]] = []
    for probe in recency_probes(best_setting):
        if len(scores) >= settings.tune_trials or clock() - started + slowest > budget:
            break
        tried.append((attempt(first, probe), -len(scores), first, probe))

    def objective(trial: Any) -> float:
        family, setting = suggest(trial, families)
        trial.set_user_attr("setting", setting)
        trial.set_user_attr("family", family)
        return attempt(family, setting)

    def budget_left(study: Any, _trial: Any) -> None:
        nonlocal stop_reason
        if clock() - started + slowest > budget:
            stop_reason = "budget"
            study.stop()

    for score, _, family, probe in tried:  # the sampler learns from the probes too, where it can
        tell(study, families, family, probe, score)
    left = settings.tune_trials - len(scores)
    if left > 0 and clock() - started + slowest <= budget:
        study.optimize(objective, n_trials=left, callbacks=[budget_left], gc_after_trial=False)
    elif left > 0:
        stop_reason = "budget"
    offset = len(scores) - len(study.trials)
    tried += [
        (float(t.value), -(offset + t.number), t.user_attrs["family"], dict(t.user_attrs["setting"]))
        for t in study.trials
        if t.value is not None and not t.user_attrs.get("probe")
    ]
    if tried:
        top_score, _, top_family, top_setting = max(tried, key=lambda d: d[:2])
        if best_score <= 0 or top_score > best_score * (1.0 + settings.tune_min_gain):
            best_family, best_setting = top_family, top_setting
            best_score = top_score
        elif top_score > best_score:
            gain = top_score / best_score - 1.0
            stop_reason += f"; setting in force kept (best +{gain:.1%} < {settings.tune_min_gain:.0%})"
    if best_score < 0:
        return result("no trial succeeded", trials=len(scores), users=len(heldout), history=scores)
    log.info(
        "tune: %d trials in %.1f s (%s); validation NDCG@10 %.4f",
        len(scores),
        clock() - started,
        stop_reason,
        best_score,
    )
    return result(
        stop_reason,
        family=best_family,
        setting=best_setting,
        validation_ndcg_at_10=round(float(best_score), 5),
        default_ndcg_at_10=round(scores[0], 5) if scores[0] >= 0 else None,
        trials=len(scores),
        users=len(heldout),
        history=scores,
    )
