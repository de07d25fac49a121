"""Measure the whole pipeline against the raw-ratings baseline, without Kafka.

What ``privrec eval`` (and the choice of defaults in
:mod:`pipeline.recs.confidence`) rests on:

1. split the ratings per user by time (newest ``holdout_fraction`` held out);
2. replay the **training** ratings as playback sessions
   (:func:`pipeline.sources.ratings_to_sessions`), merged into one stream in
   event-time order, keep only the fields that survive redaction (the raw user
   id stands in for the pseudonym), and fold them into hourly windows with the
   production window engine (:class:`pipeline.windows.PartitionWindows`, which
   the tests hold equal to :func:`tests.support.windows_reference.expected_interactions`;
   the reference itself is quadratic and too slow for 800k events);
3. train our model on the windows and the baseline on the raw training ratings;
4. score both by NDCG@10 / precision@10 on the held-out titles.

Our model only sees watch time, plays and completion; the baseline sees the
star ratings themselves.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, NamedTuple

from pipeline.recs.als import train
from pipeline.recs.baseline import baseline_eval
from pipeline.recs.evaluate import evaluate, temporal_split
from pipeline.recs.matrix import InteractionStore
from pipeline.settings import TrainerSettings
from pipeline.sources import Rating, order_by_time, ratings_to_sessions
from pipeline.windows import PartitionWindows, WindowSpec

__all__ = ["Simulation", "prepare_simulation", "score_settings", "simulate_pipeline_eval", "sweep"]

_CHUNK = 10_000


class _Redacted(NamedTuple):
    """The five fields of a redacted event the window engine reads."""

    user: str
    content_id: str
    event_type: str
    watched_ms: int
    event_time: int


@dataclass(frozen=True, slots=True)
class Simulation:
    """A replayed training stream and its held-out titles, reusable across settings."""

    store: InteractionStore
    heldout: dict[str, set[str]]
    baseline: dict[str, float | int]
    stats: dict[str, Any]


def _redacted(sessions: Iterable[list[dict[str, Any]]]) -> Iterator[_Redacted]:
    for event in order_by_time(sessions):
        yield _Redacted(
            event["user_id"],
            event["content_id"],
            event["event_type"],
            event["watched_ms"],
            event["event_time"],
        )


def windows_from_ratings(
    ratings: Sequence[Rating], *, seed: int, spec: WindowSpec | None = None
) -> tuple[InteractionStore, dict[str, int]]:
    """Replay ``ratings`` as sessions through the window engine into a store; plus counters."""
    engine = PartitionWindows(spec or WindowSpec(), clock=lambda: 0)
    store = InteractionStore()
    events = _redacted(ratings_to_sessions(ratings, seed=seed))
    n_events = 0
    while chunk := list(islice(events, _CHUNK)):
        n_events += len(chunk)
        store.add_many(engine.add(chunk, now_wall_ms=0).closed)
    store.add_many(engine.close_all().closed)
    return store, {"events": n_events, "windows": len(store), "late": engine.late_total}


def prepare_simulation(
    ratings: Sequence[Rating], *, holdout_fraction: float = 0.2, seed: int = 7, model_seed: int = 42
) -> Simulation:
    """Split, replay the training part into windows, and score the baseline once."""
    started = time.perf_counter()
    split = temporal_split(ratings, holdout_fraction)
    store, stats = windows_from_ratings(split.train, seed=seed)
    replay_s = time.perf_counter() - started
    baseline = baseline_eval(split.train, split.heldout, seed=model_seed)
    summary: dict[str, Any] = dict(stats)
    summary.update(
        ratings=len(ratings),
        train_ratings=len(split.train),
        heldout_users=len(split.heldout),
        replay_s=replay_s,
    )
    return Simulation(store, split.heldout, baseline, summary)


def score_settings(sim: Simulation, settings: TrainerSettings) -> dict[str, Any]:
    """Train on the simulation's windows with ``settings``; ours vs baseline NDCG@10."""
    started = time.perf_counter()
    ours = evaluate(train(sim.store, settings), sim.heldout)
    base = float(sim.baseline["ndcg_at_10"])
    return {
        "ndcg_at_10": ours["ndcg_at_10"],
        "precision_at_10": ours["precision_at_10"],
        "users": ours["users"],
        "baseline_ndcg_at_10": base,
        "baseline_precision_at_10": sim.baseline["precision_at_10"],
        "ratio": ours["ndcg_at_10"] / base if base else float("nan"),
        "train_eval_s": time.perf_counter() - started,
    }


def simulate_pipeline_eval(
    ratings: Sequence[Rating], settings: TrainerSettings | None = None, *, seed: int = 7
) -> dict[str, Any]:
    """The full comparison for one setting; see the module docstring.

    Returns ``ndcg_at_10``, ``precision_at_10``, ``users``, the baseline's two
    scores, ``ratio`` (ours / baseline NDCG@10) and replay counters.
    """
    settings = settings or TrainerSettings()
    sim = prepare_simulation(
        ratings, holdout_fraction=settings.holdout_fraction, seed=seed, model_seed=settings.seed
    )
    return {**score_settings(sim, settings), **sim.stats}


def sweep(
    sim: Simulation, grid: Iterable[dict[str, Any]], base: TrainerSettings | None = None
) -> list[dict[str, Any]]:
    """:func:`score_settings` for each override dict of ``grid``, applied to ``base``."""
    base = base or TrainerSettings()
    return [{**overrides, **score_settings(sim, base.model_copy(update=overrides))} for overrides in grid]
