"""Popularity-bias mitigation at read time: an xQuAD re-rank over head and tail titles.

ALS, like most collaborative filters, recommends what is already popular;
the audit measures it (popularity lift, Gini of exposure, tail share). With
``serving.rerank = xquad`` the reader re-orders each viewer's published
candidates (``trainer.top_n``, 50 by default) before cutting to ``n``,
following xQuAD as adapted to popularity by Abdollahpouri, Burke and Mobasher
("Managing Popularity Bias in Recommender Systems with Personalized
Re-ranking", FLAIRS 2019): greedily, the next title maximises::

    (1 − λ) · rel(i)  +  λ · P(c(i) | u) · (1 − 1/|C_c|) ^ k_c

where ``rel`` is the model's score min-max scaled over the candidates, ``c(i)``
is the title's category (head: on the version's popular list; tail: every
other title), ``P(c|u) = 1/2`` (equal target exposure for head and tail: the
"fair" variant, because the reader does not hold the viewer's history),
``|C_c|`` is the number of candidates of that category and ``k_c`` how many of
them are already chosen (the smooth coverage term: each pick of a category
makes the next one less needed). λ = ``serving.rerank_lambda``. Why this and
not calibrated popularity (Abdollahpouri et al. 2021): calibration needs each
viewer's history profile at read time, which the cache does not hold; xQuAD
needs only the candidates and the popular list, both already read. It keeps
the reader's API and adds no Redis round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pipeline.recs.types import Recommendation

__all__ = ["Rerank", "xquad"]

Mode = Literal["none", "xquad"]


@dataclass(frozen=True, slots=True)
class Rerank:
    """The read-time re-rank policy (``serving.rerank``, ``serving.rerank_lambda``)."""

    mode: Mode = "none"
    lam: float = 0.5

    @property
    def active(self) -> bool:
        return self.mode != "none" and self.lam > 0


def xquad(
    candidates: Sequence[Recommendation], head: frozenset[str] | set[str], n: int, lam: float
) -> list[Recommendation]:
    """The first ``n`` of ``candidates`` re-ranked by xQuAD over head/tail (see the module docstring).

    Deterministic: ties keep the candidates' order. With ``lam == 0`` it is the
    input order; items are only re-ordered, never invented or dropped below ``n``.
    """
    pool = list(candidates)
    if n <= 0 or not pool:
        return []
    if lam <= 0:
        return pool[:n]
    scores = [r.score for r in pool]
    lo, hi = min(scores), max(scores)
    span = hi - lo
    rel = [(s - lo) / span if span > 0 else 1.0 for s in scores]
    is_head = [r.content_id in head for r in pool]
    size = {True: sum(is_head), False: len(pool) - sum(is_head)}
    chosen = {True: 0, False: 0}
    left = list(range(len(pool)))
    out: list[Recommendation] = []
    while left and len(out) < n:
        best, best_value = left[0], -1.0
        for i in left:
            c = is_head[i]
            cover = 0.5 * (1.0 - 1.0 / size[c]) ** chosen[c]
            value = (1.0 - lam) * rel[i] + lam * cover
            if value > best_value:
                best, best_value = i, value
        left.remove(best)
        chosen[is_head[best]] += 1
        out.append(pool[best])
    return out
