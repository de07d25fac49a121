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

Each side runs ``repeats`` times (default: 5 up to 1M, 1 from 5M on),
alternating which side goes first, and the fastest run of each side counts:
on a shared machine a single fit of the same solver on the same matrix varies
by ±30% or more, which would otherwise swamp the difference measured.
``samples`` lists every run's wall seconds.

``tune`` is timed apart, once per size after the timed runs: the trainer's
self-tuning (:func:`pipeline.recs.tune.tune`) on the same store within
``trainer.tune_budget_s`` — ``seconds`` (``tune_seconds``) must stay within the
budget at every size, ``trials`` says how many settings it afforded. The
synthetic set has no taste structure, so its validation NDCG means nothing.

``ratio`` is privrec's best total seconds over implicit's best fit seconds:
the price of the store and the bookkeeping around the same solver
(``median_ratio``: the same with medians). ``cpu_ratio`` is the same with
process CPU seconds (``cpu_s``, all threads), which another process's load
disturbs much less than wall time. ``max_rss_mb`` is the process's peak
resident memory so far (it only grows across sizes).

With ``gpu=True`` each size also gets ``devices``: the same ALS fit
(:func:`pipeline.recs.als.fit_factors`) on the CPU and on the GPU, on the
matrix with one interaction per user held out, each side's fit seconds and
hit rate at 10 on the held-out interactions (so a faster fit that learned
less shows), and ``gpu_speedup`` (CPU seconds over GPU seconds, after one
untimed GPU warm-up fit that pays for CUDA's start-up).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["DEFAULT_SIZES", "bench_train", "default_repeats", "device_comparison", "synthetic_columns"]

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


def default_repeats(n: int) -> int:
    """Timed repeats per side at size ``n``: 5 up to 1M, 1 from 5M on (a 10M run takes minutes)."""
    return max(1, min(5, 5_000_000 // max(n, 1)))


def _time_ours(columns: dict[str, np.ndarray], settings: Any) -> tuple[dict[str, float], Any, int]:
    """``({store_s, train_s, total_s, cpu_s}, model matrix, windows)`` of one store build + train."""
    from pipeline.recs import InteractionStore, train

    cpu = time.process_time()
    t0 = time.perf_counter()
    store = InteractionStore()
    store.add_arrays(**columns)
    windows = len(store)
    t1 = time.perf_counter()
    model = train(store, settings)
    t2 = time.perf_counter()
    cpu = time.process_time() - cpu
    seconds = {"store_s": t1 - t0, "train_s": t2 - t1, "total_s": t2 - t0, "cpu_s": cpu}
    return seconds, model.matrix, windows


def _time_implicit(matrix: Any, settings: Any) -> dict[str, float]:
    """``{fit_s, cpu_s}`` of a bare ``AlternatingLeastSquares.fit`` on ``matrix`` (construction not timed)."""
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(
            factors=settings.factors,
            regularization=settings.regularization,
            iterations=settings.iterations,
            num_threads=settings.threads,
            random_state=settings.seed,
            use_gpu=False,
        )
        cpu = time.process_time()
        t0 = time.perf_counter()
        als.fit(matrix, show_progress=False)
        t1 = time.perf_counter()
        return {"fit_s": t1 - t0, "cpu_s": time.process_time() - cpu}


def _leave_one_out(matrix: Any, seed: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """``(train matrix, users, held-out items)``: one random entry of each user with ≥ 2 removed."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    csr = sp.csr_matrix(matrix, copy=True)
    counts = np.diff(csr.indptr)
    users = np.flatnonzero(counts >= 2)
    picks = csr.indptr[users] + (rng.random(len(users)) * counts[users]).astype(np.int64)
    held = csr.indices[picks].copy()
    csr.data[picks] = 0.0
    csr.eliminate_zeros()
    return csr, users, held


def _hit_rate(
    user_factors: np.ndarray, item_factors: np.ndarray, seen: Any, users: np.ndarray, held: np.ndarray
) -> float:
    """Share of ``users`` whose held-out item is in their top 10 of unseen items."""
    hits = 0
    for start in range(0, len(users), 4096):
        batch = users[start : start + 4096]
        scores = user_factors[batch] @ item_factors.T
        rows = seen[batch].tocoo()
        scores[rows.row, rows.col] = -np.inf
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        hits += int((top == held[start : start + 4096, None]).any(axis=1).sum())
    return hits / max(len(users), 1)


def device_comparison(matrix: Any, settings: Any, seed: int = 7) -> dict[str, Any]:
    """The same ALS fit on the CPU and on the GPU: seconds and hit rate at 10 (leave one out)."""
    from pipeline.recs.als import fit_factors

    train, users, held = _leave_one_out(matrix, seed)
    fit_factors(train, settings, device="gpu")  # warm-up: CUDA context and kernels
    sides: dict[str, Any] = {}
    for device in ("cpu", "gpu"):
        t0 = time.perf_counter()
        user_factors, item_factors = fit_factors(train, settings, device=device)
        seconds = time.perf_counter() - t0
        hit_rate = _hit_rate(user_factors, item_factors, train, users, held)
        sides[device] = {"fit_s": round(seconds, 3), "hit_rate_at_10": round(hit_rate, 4)}
    sides["users_held_out"] = len(users)
    sides["gpu_speedup"] = round(sides["cpu"]["fit_s"] / max(sides["gpu"]["fit_s"], 1e-9), 2)
    return sides


def _one(n: int, settings: Any, seed: int, repeats: int, gpu: bool = False) -> dict[str, Any]:
    """Both sides ``repeats`` times, alternating which goes first; the fastest run of each counts."""
    columns = synthetic_columns(n, seed)
    columns_for_tune = dict(columns)  # the arrays themselves, not copies
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    matrix: Any = None
    windows = 0
    for k in range(repeats):
        if k % 2:  # odd repeats: implicit first, on the (identical) matrix of the previous run
            theirs.append(_time_implicit(matrix, settings))
        seconds, matrix, windows = _time_ours(columns, settings)
        ours.append(seconds)
        if k == repeats - 1:
            columns.clear()  # the input is not needed for the last implicit fit
        if k % 2 == 0:
            theirs.append(_time_implicit(matrix, settings))
    best = min(ours, key=lambda run: run["total_s"])
    fastest = min(theirs, key=lambda run: run["fit_s"])
    totals = [run["total_s"] for run in ours]
    fits = [run["fit_s"] for run in theirs]
    cpu_ratio = min(run["cpu_s"] for run in ours) / min(run["cpu_s"] for run in theirs)
    devices = {"devices": device_comparison(matrix, settings, seed)} if gpu else {}
    out = {
        "interactions": n,
        "windows": windows,
        "users": matrix.shape[0],
        "items": matrix.shape[1],
        "nnz": int(matrix.nnz),
        "privrec": {name: round(value, 3) for name, value in best.items()},
        "implicit": {name: round(value, 3) for name, value in fastest.items()},
        "ratio": round(best["total_s"] / fastest["fit_s"], 3),
        "median_ratio": round(float(np.median(totals) / np.median(fits)), 3),
        "cpu_ratio": round(cpu_ratio, 3),
        "repeats": repeats,
        "samples": {"privrec_total_s": _rounded(totals), "implicit_fit_s": _rounded(fits)},
        "seconds_per_million": round(best["total_s"] / n * 1e6, 3),
        "max_rss_mb": _max_rss_mb(),
        **devices,
    }
    tuned = _time_tune(columns_for_tune, settings)
    out.update(tune=tuned, tune_seconds=tuned["seconds"], tune_trials=tuned["trials"])
    return out


def _time_tune(columns: dict[str, np.ndarray], settings: Any) -> dict[str, Any]:
    """Self-tuning on a fresh store of ``columns``: seconds, trials, budget, why it stopped."""
    from pipeline.recs import InteractionStore
    from pipeline.recs.tune import tune

    store = InteractionStore()
    store.add_arrays(**columns)
    columns.clear()
    t0 = time.perf_counter()
    result = tune(store, settings)
    return {
        "seconds": round(time.perf_counter() - t0, 3),
        "budget_s": settings.tune_budget_s,
        "trials": result.trials,
        "users": result.users,
        "stopped": result.reason,
        "within_budget": result.seconds <= settings.tune_budget_s,
    }


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(v, 3) for v in values]


def bench_train(
    interactions: Sequence[int] = DEFAULT_SIZES,
    *,
    settings: Any = None,
    seed: int = 7,
    repeats: int | None = None,
    gpu: bool = False,
) -> dict[str, Any]:
    """Time both trainers for each size in ``interactions``; JSON-ready results.

    ``settings`` is a :class:`~pipeline.settings.TrainerSettings` (default: the defaults);
    ``repeats`` runs per side and size (default: :func:`default_repeats`); ``gpu`` adds
    the CPU-vs-GPU comparison (:func:`device_comparison`).

    Raises:
        ConfigError: ``gpu`` and ``implicit`` has no usable GPU.
    """
    from pipeline.recs.device import resolve_device
    from pipeline.settings import TrainerSettings

    settings = settings or TrainerSettings()
    if gpu:
        resolve_device("gpu")  # refuse before minutes of CPU timing
    settings = settings.model_copy(update={"device": "cpu"})  # the timed sides compare CPU with CPU
    return {
        "bench": "train",
        "cpus": os.cpu_count(),
        "settings": {k: getattr(settings, k) for k in ("factors", "regularization", "iterations", "threads")},
        "runs": [_one(n, settings, seed, repeats or default_repeats(n), gpu) for n in interactions],
    }
