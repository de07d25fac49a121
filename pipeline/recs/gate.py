"""The quality gate: what goes live after a retrain, decided from validation figures only.

A candidate is published only if it beats popularity on the validation split
(a model that cannot is worse than no model: it spends the viewers' data for
nothing) and is not clearly worse than the live model. Otherwise the live model
stays; when there is none (or the live version is itself popularity), the
popular list is served, labelled ``popular`` in responses and in ``privrec status``.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

__all__ = ["GateDecision", "publish_gate", "quality_gate"]

Outcome = Literal["publish", "keep_live", "serve_popular"]


class GateDecision(NamedTuple):
    """Whether to publish, and why (with the numbers, for the trainer's log and metrics).

    ``outcome`` says what serves next: the candidate, the live model, or popularity.
    """

    publish: bool
    reason: str
    outcome: Outcome = "publish"


def quality_gate(candidate_ndcg: float, live_ndcg: float | None, margin: float) -> GateDecision:
    """Publish unless ``candidate < live * (1 - margin)``.

    ``live_ndcg`` is ``None`` when nothing is published yet: the first model
    always goes out (a cold start beats no recommendations). A candidate whose
    score is not a finite number is refused.

    Examples
    --------
    >>> quality_gate(0.30, 0.40, 0.05).publish
    False
    >>> quality_gate(0.39, 0.40, 0.05).reason
    'candidate NDCG@10 0.3900 >= 0.3800 (live 0.4000 - 5.0%)'
    """
    if margin < 0.0:
        raise ValueError("margin must be >= 0")
    if not math.isfinite(candidate_ndcg):
        return GateDecision(False, f"candidate NDCG@10 is {candidate_ndcg!r}, not a number", "keep_live")
    if live_ndcg is None:
        return GateDecision(True, f"no live model; candidate NDCG@10 {candidate_ndcg:.4f}")
    floor = live_ndcg * (1.0 - margin)
    publish = candidate_ndcg >= floor
    reason = (
        f"candidate NDCG@10 {candidate_ndcg:.4f} {'>=' if publish else '<'} {floor:.4f}"
        f" (live {live_ndcg:.4f} - {margin:.1%})"
    )
    return GateDecision(publish, reason, "publish" if publish else "keep_live")


def publish_gate(
    candidate_ndcg: float, popularity_ndcg: float | None, live_ndcg: float | None, margin: float
) -> GateDecision:
    """The stricter gate: beat popularity (strictly), then :func:`quality_gate` against the live model.

    ``live_ndcg`` is ``None`` when no model is live (a popularity-only version
    counts as none: it is refreshed rather than kept). ``popularity_ndcg`` is
    ``None`` when the popularity test is off (``trainer.gate_popularity``).

    Examples
    --------
    >>> publish_gate(0.10, 0.12, None, 0.05).outcome
    'serve_popular'
    >>> publish_gate(0.10, 0.12, 0.30, 0.05).outcome
    'keep_live'
    >>> publish_gate(0.20, 0.12, 0.30, 0.05).outcome
    'keep_live'
    >>> publish_gate(0.29, 0.12, 0.30, 0.05).outcome
    'publish'
    """
    if margin < 0.0:
        raise ValueError("margin must be >= 0")
    fallback: Outcome = "serve_popular" if live_ndcg is None else "keep_live"
    if not math.isfinite(candidate_ndcg):
        return GateDecision(False, f"candidate NDCG@10 is {candidate_ndcg!r}, not a number", fallback)
    if popularity_ndcg is None:
        return quality_gate(candidate_ndcg, live_ndcg, margin)
    if not candidate_ndcg > popularity_ndcg:
        stays = "serving popularity" if live_ndcg is None else "the live model stays"
        reason = f"candidate NDCG@10 {candidate_ndcg:.4f} <= popularity {popularity_ndcg:.4f}; {stays}"
        return GateDecision(False, reason, fallback)
    decision = quality_gate(candidate_ndcg, live_ndcg, margin)
    return decision._replace(reason=f"{decision.reason}; popularity {popularity_ndcg:.4f}")
