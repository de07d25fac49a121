"""The quality gate: a freshly trained model replaces the live one only if it is not clearly worse."""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ["GateDecision", "quality_gate"]


class GateDecision(NamedTuple):
    """Whether to publish, and why (with the numbers, for the trainer's log and metrics)."""

    publish: bool
    reason: str


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
        return GateDecision(False, f"candidate NDCG@10 is {candidate_ndcg!r}, not a number")
    if live_ndcg is None:
        return GateDecision(True, f"no live model; candidate NDCG@10 {candidate_ndcg:.4f}")
    floor = live_ndcg * (1.0 - margin)
    publish = candidate_ndcg >= floor
    reason = (
        f"candidate NDCG@10 {candidate_ndcg:.4f} {'>=' if publish else '<'} {floor:.4f}"
        f" (live {live_ndcg:.4f} - {margin:.1%})"
    )
    return GateDecision(publish, reason)
