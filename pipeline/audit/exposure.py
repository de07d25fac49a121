"""Catalogue-side figures of a set of recommendation lists: coverage, Gini, ARP, novelty, personalisation.

Pure functions over plain mappings (viewer → ordered content ids), so every
figure of the audit can be checked against a hand computation. Definitions
follow Microsoft Recommenders' diversity metrics
(``recommenders/evaluation/python_evaluation.py``: catalog coverage, novelty)
and Elliot's bias metrics (ARP, APLT, Gini); the appendix of the HTML report
and the README give the formulas.

``popularity`` everywhere is φ(i): the number of viewers whose history holds
title i (Elliot's ARP uses the number of interactions of i; a viewer's
history holds a title once).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "arp",
    "coverage_at_k",
    "exposure_counts",
    "gini",
    "item_popularity",
    "novelty",
    "personalisation_at_k",
    "popularity_lift",
]

Lists = Mapping[str, Sequence[str]]


def item_popularity(histories: Lists) -> dict[str, int]:
    """φ(i): viewers whose history holds title i (each viewer counts once per title)."""
    counts: Counter[str] = Counter()
    for titles in histories.values():
        counts.update(set(titles))
    return dict(counts)


def coverage_at_k(recs: Lists, catalogue: Iterable[str], k: int = 10) -> float:
    """Share of the catalogue in at least one viewer's top-k: |∪ top_k(u)| / |I|."""
    items = set(catalogue)
    if not items:
        return 0.0
    shown = {i for lst in recs.values() for i in lst[:k]}
    return len(shown & items) / len(items)


def exposure_counts(recs: Lists, catalogue: Iterable[str], k: int = 10) -> dict[str, int]:
    """Top-k slots each catalogue title gets across viewers (0 for titles never shown)."""
    out = dict.fromkeys(catalogue, 0)
    for lst in recs.values():
        for i in lst[:k]:
            if i in out:
                out[i] += 1
    return out


def gini(values: Iterable[float]) -> float:
    """Gini coefficient: 0 when every title gets equal exposure, → 1 when one title gets all.

    ``G = Σ_j (2j − n − 1) · x_(j) / (n · Σ x)``, x sorted ascending, j from 1.
    (Elliot's ``Gini`` reports ``1 − G`` with ``n − 1`` in the denominator, as
    a diversity; the audit reports inequality.)
    """
    xs = sorted(float(v) for v in values)
    n, total = len(xs), sum(xs)
    if n == 0 or total <= 0:
        return 0.0
    return sum((2 * j - n - 1) * x for j, x in enumerate(xs, start=1)) / (n * total)


def arp(lists: Lists, popularity: Mapping[str, int], k: int | None = None) -> float:
    """Average recommendation popularity (Elliot ARP): mean over viewers of the mean φ of their list.

    Viewers with an empty list are skipped. ``k`` cuts each list first.
    """
    means = []
    for lst in lists.values():
        part = lst[:k] if k is not None else lst
        if part:
            means.append(sum(popularity.get(i, 0) for i in part) / len(part))
    return sum(means) / len(means) if means else 0.0


def popularity_lift(recs: Lists, histories: Lists, popularity: Mapping[str, int], k: int = 10) -> float:
    """ARP of the recommendations over ARP of the same viewers' histories (1: no amplification).

    Only viewers with both a list and a history count.
    """
    both = [u for u, lst in recs.items() if lst and histories.get(u)]
    base = arp({u: histories[u] for u in both}, popularity)
    if base <= 0:
        return 0.0
    return arp({u: recs[u] for u in both}, popularity, k) / base


def novelty(recs: Lists, popularity: Mapping[str, int], n_viewers: int, k: int = 10) -> float:
    """Mean self-information of recommended titles: mean over top-k slots of ``−log2(φ(i)/|U|)``.

    φ is floored at 1 (a title no viewer watched counts as watched by one).
    """
    if n_viewers <= 0:
        return 0.0
    bits = [-math.log2(max(popularity.get(i, 0), 1) / n_viewers) for lst in recs.values() for i in lst[:k]]
    return sum(bits) / len(bits) if bits else 0.0


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def personalisation_at_k(recs: Lists, k: int = 10, *, max_pairs: int = 20_000, seed: int = 0) -> float:
    """``1 − mean Jaccard(top_k(u), top_k(v))`` over viewer pairs (u < v).

    Every pair when there are at most ``max_pairs``; else ``max_pairs`` pairs
    drawn uniformly with a fixed seed (an unbiased estimate). 0: everyone gets
    the same list; 1: no two lists share a title. Fewer than two viewers: 0.
    """
    sets = [frozenset(lst[:k]) for _, lst in sorted(recs.items()) if lst]
    n = len(sets)
    if n < 2:
        return 0.0
    total_pairs = n * (n - 1) // 2
    if total_pairs <= max_pairs:
        sims = [_jaccard(sets[a], sets[b]) for a in range(n) for b in range(a + 1, n)]
    else:
        rng = random.Random(seed)
        sims = []
        for _ in range(max_pairs):
            a, b = rng.sample(range(n), 2)
            sims.append(_jaccard(sets[a], sets[b]))
    return 1.0 - sum(sims) / len(sims)
