"""Utility of the DP release: overlap of the released top titles with the exact top titles.

Measured per window (UTC day or ISO week) on (viewer, title, time) plays,
every play counted as analytics-consented: the exact list ranks titles by true
distinct viewers (unbounded), the released one is what :func:`release_counts`
publishes after bounding. ``overlap@n`` = |released top n ∩ exact top n| / n,
averaged over the windows that have at least ``n`` titles.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

from pipeline.dp.bounding import Bounder
from pipeline.dp.release import plan, release_counts

__all__ = ["overlap_at", "utility"]

Window = Literal["day", "week"]


def _window(ts_s: int, window: Window) -> str:
    t = datetime.fromtimestamp(ts_s, tz=UTC)
    if window == "day":
        return t.strftime("%Y-%m-%d")
    year, week, _ = t.isocalendar()
    return f"{year}-W{week:02d}"


def overlap_at(released: list[str], exact: list[str], n: int) -> float:
    return len(set(released[:n]) & set(exact[:n])) / n


def utility(
    plays: Iterable[tuple[str, str, int]],
    *,
    window: Window = "week",
    epsilon: float = 1.0,
    delta: float = 1e-6,
    max_titles: int = 10,
    n: int = 20,
    key: bytes = b"privrec-utility-measurement-key",
) -> dict[str, float | int]:
    """Mean overlap@n of the released and the exact top-n over windows; plus what was released."""
    p = plan(epsilon, delta, max_titles)
    bounder = Bounder(key, max_titles)
    exact: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for user, title, ts in plays:
        w = _window(ts, window)
        bounder.add(w, user, title)
        exact[w][title].add(user)
    overlaps: list[float] = []
    shown: list[int] = []
    for w in bounder.windows():
        truth = sorted(exact[w], key=lambda t: (-len(exact[w][t]), t))
        if len(truth) < n:
            continue
        noisy = release_counts(bounder.counts(w), p)
        released = sorted(noisy, key=lambda t: (-noisy[t], t))
        overlaps.append(overlap_at(released, truth, n))
        shown.append(len(released))
    return {
        "windows": len(overlaps),
        "overlap_at_n": sum(overlaps) / len(overlaps) if overlaps else 0.0,
        "titles_released_mean": sum(shown) / len(shown) if shown else 0.0,
        "threshold": p.threshold,
        "scale": p.scale,
        "n": n,
    }
