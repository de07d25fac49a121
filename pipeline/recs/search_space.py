"""The tuner's search space: each knob's range, how a trial suggests a setting, and the probes.

:func:`pipeline.recs.tune.tune` runs the search; this module says what it
searches. Define-by-run (Optuna): every family has its own knobs, and
recency is a switch plus a half-life. Settings run outside the sampler (the
one in force, :func:`recency_probes`) are told to it with :func:`tell`
where the space can express them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.settings import TrainerSettings

__all__ = [
    "FAMILY_KNOBS",
    "RECENCY_PROBES",
    "current_setting",
    "recency_probes",
    "suggest",
    "tell",
]

_UNITS_MS = (60_000, 180_000, 540_000, 1_620_000)
_FACTORS = (32, 64, 128, 192)
_ALPHA = (0.05, 20.0)
_HALF_LIFE = (2.0, 500.0)
_REG = (0.5, 200.0)
_ITERATIONS = (8, 30)
_EASE_LAMBDA = (5.0, 5000.0)
_KNN_K = (10, 500)

FAMILY_KNOBS = {
    "als": ("factors", "regularization", "iterations"),
    "ease": ("ease_lambda",),
    "itemknn": ("knn_k",),
}
"""Each family's own knobs."""

RECENCY_PROBES = ((10.0, 4.0), (30.0, 2.0))
"""``(half-life in titles, alpha factor)`` of the probes :func:`recency_probes` queues first."""


def current_setting(settings: TrainerSettings, family: str) -> dict[str, Any]:
    """The fields of ``settings`` that define ``family``'s setting (what a trial varies)."""
    names = (
        "weighting",
        "alpha",
        "watched_unit_ms",
        "completion_bonus",
        "recency_half_life_titles",
        *FAMILY_KNOBS.get(family, ()),
    )
    return {name: getattr(settings, name) for name in names}


def suggest(trial: Any, families: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """One point of the search space (define-by-run: each family has its own knobs)."""
    family = trial.suggest_categorical("family", list(families)) if len(families) > 1 else families[0]
    s: dict[str, Any] = {
        "weighting": trial.suggest_categorical("weighting", ["binary", "log", "linear", "bm25"]),
        "alpha": trial.suggest_float("alpha", 0.05, 20.0, log=True),
        "completion_bonus": trial.suggest_float("completion_bonus", 0.0, 3.0),
    }
    if s["weighting"] != "binary":
        s["watched_unit_ms"] = trial.suggest_categorical("watched_unit_ms", list(_UNITS_MS))
    s["recency_half_life_titles"] = (
        trial.suggest_float("recency_half_life_titles", *_HALF_LIFE, log=True)
        if trial.suggest_categorical("recency", [False, True])
        else None
    )
    if family == "als":
        s["factors"] = trial.suggest_categorical("factors", list(_FACTORS))
        s["regularization"] = trial.suggest_float("regularization", *_REG, log=True)
        s["iterations"] = trial.suggest_int("iterations", *_ITERATIONS)
    elif family == "ease":
        s["ease_lambda"] = trial.suggest_float("ease_lambda", *_EASE_LAMBDA, log=True)
    elif family == "itemknn":
        s["knn_k"] = trial.suggest_int("knn_k", *_KNN_K, log=True)
    return family, s


def recency_probes(setting: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The setting in force with recency at :data:`RECENCY_PROBES` half-lives: the first trials after it.

    A one-axis probe the sampler would otherwise reach by luck within a
    time-boxed budget (recency is a categorical switch and a log-scale
    half-life, among ten other knobs). Fading lowers the viewer's mean
    confidence, so each probe also raises ``alpha`` by its factor to keep
    observed titles as far above unobserved ones. Probes run before the
    sampler, like the setting in force, and the sampler is told their
    scores; the validation split decides, as for any trial.
    """
    return [
        dict(setting, recency_half_life_titles=half_life, alpha=_clip(setting["alpha"] * factor, _ALPHA))
        for half_life, factor in RECENCY_PROBES
    ]


def _fixed(family: str, families: Sequence[str], setting: Mapping[str, Any]) -> Any:
    """A ``FixedTrial`` on which `suggest` yields ``setting``; None outside the search space."""
    import optuna

    params: dict[str, Any] = {"family": family} if len(families) > 1 else {}
    params.update({name: setting[name] for name in ("weighting", "alpha", "completion_bonus")})
    if setting["weighting"] != "binary":
        params["watched_unit_ms"] = setting["watched_unit_ms"]
    half_life = setting.get("recency_half_life_titles")
    params["recency"] = half_life is not None
    if half_life is not None:
        params["recency_half_life_titles"] = half_life
    params.update({name: setting[name] for name in FAMILY_KNOBS.get(family, ())})
    trial = optuna.trial.FixedTrial(params)
    try:
        got_family, got = suggest(trial, families)
    except (ValueError, KeyError):  # a value the search cannot suggest (a categorical outside its choices)
        return None
    if got_family != family or any(setting.get(k) != v for k, v in got.items()):
        return None
    return trial


def tell(study: Any, families: Sequence[str], family: str, setting: dict[str, Any], score: float) -> None:
    """Add a trial run outside the sampler to ``study``; skipped when the search space cannot express it."""
    import optuna

    fixed = _fixed(family, families, setting)
    if fixed is None or score < 0:
        return
    try:  # a float outside its range (a setting in force below the searched bounds) is refused here
        trial = optuna.trial.create_trial(
            params=fixed.params,
            distributions=fixed.distributions,
            value=score,
            user_attrs={"family": family, "setting": setting, "probe": True},
        )
    except ValueError:
        return
    study.add_trial(trial)


def _clip(value: float, bounds: tuple[float, float]) -> float:
    return float(min(max(value, bounds[0]), bounds[1]))
