"""The release: Laplace noise on bounded counts and a threshold for δ, through OpenDP.

Mechanism: OpenDP's ``make_laplace_threshold`` (Rogers 2023, "A Unifying
Privacy Analysis Framework for Unknown Domain Algorithms in Differential
Privacy", arXiv:2309.09170), a measurement on a map ``title -> count`` under
the ``l01inf_distance`` metric. It adds discrete Laplace noise of scale ``b``
to every count and releases only the titles whose noisy count reaches the
threshold ``τ``: the set of titles is itself data (a title watched by one viewer
must not appear just because it exists), so choosing which titles to show
costs δ (*DP partition selection*, Desfontaines, Voss, Gipson, Mandayam 2022,
"Differentially private partition selection", PoPETs 2022(1)).

One viewer added or removed changes at most ``k`` counts (``k`` =
``dp.max_titles_per_viewer_day``, after :mod:`pipeline.dp.bounding`), each by
at most 1: ``d_in = (l0=k, l1=k, l∞=1)``.

* ``scale b = k / ε``: Laplace on an L1-sensitivity-``k`` vector is ε-DP over
  the titles both neighbours share.
* Threshold: a title only the added viewer watched has true count 1, and it
  appears when ``1 + Lap(b) ≥ τ``, i.e. with probability ``½·exp(-(τ-1)/b)``.
  Over the viewer's ``k`` titles the total must stay below δ:
  ``1 - (1 - ½·exp(-(τ-1)/b))^k ≤ δ``, so
  ``τ = 1 + b·ln(1 / (2·(1 - (1 - δ)^(1/k))))`` (≈ ``1 + b·ln(k / 2δ)``; the
  Laplace threshold of Desfontaines et al., §3, with per-viewer L0 bound ``k``).
  :func:`plan` starts from that formula and takes the smallest integer ``τ``
  whose (ε, δ) **as OpenDP's privacy map computes it** is within the budget, so
  the guarantee is the library's, and the formula is only the starting point.

At ε = 1, δ = 1e-6, k = 10: b = 10, τ = 155 (formula: 155.2; a title needs about 155 bounded
viewers that day to be likely shown).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["MECHANISM", "Plan", "plan", "release_counts", "threshold_formula"]

MECHANISM = "opendp.make_laplace_threshold"


@dataclass(frozen=True, slots=True)
class Plan:
    """The parameters of one release and what OpenDP's privacy map says it costs."""

    epsilon: float
    delta: float
    max_titles: int
    scale: float
    threshold: int
    epsilon_used: float
    delta_used: float
    mechanism: str = MECHANISM


def threshold_formula(scale: float, delta: float, max_titles: int) -> float:
    """``τ = 1 + b·ln(1 / (2·(1 - (1 - δ)^(1/k))))``: see the module docstring."""
    per_title = -math.expm1(math.log1p(-delta) / max_titles)  # 1 - (1-δ)^(1/k), precise for tiny δ
    return 1.0 + scale * math.log(1.0 / (2.0 * per_title))


def _opendp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


@lru_cache(maxsize=64)
def _measurement(scale: float, threshold: int) -> Any:
    dp = _opendp()
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int))
    metric = dp.l01inf_distance(dp.absolute_distance(T=int))
    return dp.m.make_laplace_threshold(domain, metric, scale=float(scale), threshold=int(threshold))


def _cost(scale: float, threshold: int, max_titles: int) -> tuple[float, float]:
    eps, delta = _measurement(scale, threshold).map((max_titles, max_titles, 1))
    return float(eps), float(delta)


@lru_cache(maxsize=64)
def plan(epsilon: float, delta: float, max_titles: int) -> Plan:
    """Scale and threshold for a release spending at most (``epsilon``, ``delta``).

    Raises:
        ValueError: no threshold up to twice the formula's fits (cannot happen for sane inputs).
    """
    if epsilon <= 0 or not 0 < delta < 1 or max_titles < 1:
        raise ValueError("need epsilon > 0, 0 < delta < 1 and max_titles >= 1")
    scale = max_titles / epsilon
    start = max(1, math.ceil(threshold_formula(scale, delta, max_titles)) - 2)
    for tau in range(start, 2 * start + 10):
        eps_used, delta_used = _cost(scale, tau, max_titles)
        if eps_used <= epsilon * (1 + 1e-9) and delta_used <= delta:
            return Plan(epsilon, delta, max_titles, scale, tau, eps_used, delta_used)
    raise ValueError("no threshold fits the budget")


def release_counts(counts: Mapping[str, int], p: Plan) -> dict[str, int]:
    """The noisy counts of the titles that pass the threshold (OpenDP draws the noise).

    ``counts`` must already be bounded (:mod:`pipeline.dp.bounding`) by ``p.max_titles``.
    """
    if not counts:
        return {}
    out = _measurement(p.scale, p.threshold)(dict(counts))
    return {str(k): int(v) for k, v in out.items()}
