"""``privrec bench train``: our trainer vs a bare ``implicit`` fit on the same matrix, one run.

For each size N a synthetic interaction set is drawn: about N/50 users (activity
spread evenly), a catalogue of max(1000, N/100) titles picked with a Zipf-like
popularity (weight ∝ 1/rank), windows over 30 days, watch time up to an hour.
The interactions arrive as columns, as a batched consumer decodes them.

* **privrec**: :meth:`InteractionStore.add_arrays` (id interning, dedup), then
  :func:`pipeline.recs.train` (pair aggregation, confidence, CSR, ALS fit,
  model wrapping);
* **implicit**: ``AlternatingLeastSquares.fit`` alone on the finished CSR our
  trainer fitted on, same factors, regularization, iterations, threads and seed.

``ratio`` is privrec's total seconds over implicit's fit seconds: the price of
the store and the bookkeeping around the same solver. ``max_rss_mb`` is the
process's peak resident memory so far (it only grows across sizes).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["DEFAULT_SIZES", "bench_train", "synthetic_columns"]

DEFAULT_SIZES = (100_000, 1_000_000)
HOUR = 3_600_000


def synthetic_columns(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    """``n`` synthetic interaction rows as the columns :meth:`InteractionStore.add_arrays` takes."""
    rng = np.random.default_rng(seed)
    n_users = max(1, n // 50)
    n_items = max(1000, n // 100)
    weights = 1.0 / np.arange(1, n_items + 1)
    items = rng.choice(n_items, size=n, p=weights / weights.sum())
    users = rng.integers(0, n_users, size=n)
    names = np.char.add("p", np.arange(n_users).astype("U9"))
    titles = np.char.add("t", np.arange(n_items).astype("U9"))
    start = rng.integers(0, 30 * 24, size=n) * HOUR
    return {
        "users": names[users],
        "content_ids": titles[items],
        "window_start": start,
        "window_end": start + HOUR,
        "watched_ms": rng.integers(0, HOUR, size=n),
        "plays": rng.integers(0, 3, size=n).astype(np.int32),
        "completed": rng.random(n) < 0.3,
    }


def _max_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024, 1)


def _one(n: int, settings: Any, seed: int) -> dict[str, Any]:
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from pipeline.recs import InteractionStore, train

    columns = synthetic_columns(n, seed)
    t0 = time.perf_counter()
    store = InteractionStore()
    store.add_arrays(**columns)
    windows = len(store)
    t1 = time.perf_counter()
    model = train(store, settings)
    t2 = time.perf_counter()
    del columns
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(
            factors=settings.factors,
            regularization=settings.regularization,
            iterations=settings.iterations,
            num_threads=settings.threads,
            random_state=settings.seed,
            use_gpu=False,
        )
        t3 = time.perf_counter()
        als.fit(model.matrix, show_progress=False)
        t4 = time.perf_counter()
    ours = t2 - t0
    return {
        "interactions": n,
        "windows": windows,
        "users": model.n_users,
        "items": model.n_items,
        "nnz": int(model.matrix.nnz),
        "privrec": {"store_s": round(t1 - t0, 3), "train_s": round(t2 - t1, 3), "total_s": round(ours, 3)},
        "implicit": {"fit_s": round(t4 - t3, 3)},
        "ratio": round(ours / (t4 - t3), 3),
        "seconds_per_million": round(ours / n * 1e6, 3),
        "max_rss_mb": _max_rss_mb(),
    }


def bench_train(
    interactions: Sequence[int] = DEFAULT_SIZES, *, settings: Any = None, seed: int = 7
) -> dict[str, Any]:
    """Time both trainers for each size in ``interactions``; JSON-ready results.

    ``settings`` is a :class:`~pipeline.settings.TrainerSettings` (default: the defaults).
    """
    from pipeline.settings import TrainerSettings

    settings = settings or TrainerSettings()
    return {
        "bench": "train",
        "cpus": os.cpu_count(),
        "settings": {k: getattr(settings, k) for k in ("factors", "regularization", "iterations", "threads")},
        "runs": [_one(n, settings, seed) for n in interactions],
    }
